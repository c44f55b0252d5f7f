"""An exponential moving average of a model's weights (``train.ema``), for evaluation and the best checkpoint.

After the k-th optimizer step every floating-point parameter and buffer ``w`` updates its average ``a``::

    a <- d_k * a + (1 - d_k) * w,    d_k = min(decay, (1 + k) / (10 + k))

The ramp on ``d_k`` is TensorFlow's ``ExponentialMovingAverage(num_updates=k)``: early on the average
follows the weights instead of remembering the random initialisation (with ``decay = 0.999`` and no ramp,
82 % of the average after 200 steps would still be the initial weights). Buffers (BatchNorm's running
statistics) are averaged like the weights and integer buffers (``num_batches_tracked``) copied, as timm's
``ModelEmaV3`` does. The average is a pure function of the weight trajectory and ``k``, so saving it with
the training state makes a resumed run continue it exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from neuralsight.errors import CheckpointError


def decay_at(decay: float, num_updates: int) -> float:
    """The decay used by the update after ``num_updates`` optimizer steps (``num_updates >= 1``)."""
    return min(decay, (1 + num_updates) / (10 + num_updates))


class ModelEMA:
    """The running average of ``model``'s floating-point parameters and buffers.

    Args:
        model: the plain module (not a DDP or torch.compile wrapper); its tensors are tracked by reference,
            so build the average after the model reached its device and memory format.
        decay: the long-run decay, in (0, 1), e.g. 0.999.
    """

    def __init__(self, model, decay: float):
        import torch

        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        named = list(model.named_parameters()) + list(model.named_buffers())  # tied weights appear once
        self.names = [name for name, _ in named]
        self.targets = [tensor for _, tensor in named]
        with torch.no_grad():
            self.shadow = [tensor.detach().clone() for tensor in self.targets]
        self._float = [i for i, t in enumerate(self.targets) if t.is_floating_point()]
        self._other = [i for i, t in enumerate(self.targets) if not t.is_floating_point()]

    def update(self, num_updates: int) -> None:
        """Fold the model's current weights in; ``num_updates`` counts optimizer steps so far, this one included."""
        import torch

        weight = 1.0 - decay_at(self.decay, num_updates)
        with torch.no_grad():
            if self._float:
                torch._foreach_lerp_([self.shadow[i] for i in self._float],
                                     [self.targets[i].detach() for i in self._float], weight)
            for i in self._other:
                self.shadow[i].copy_(self.targets[i])

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Put the averaged weights into the model for the body of the ``with``, then the trained ones back."""
        import torch

        with torch.no_grad():
            backup = [t.detach().clone() for t in self.targets]
            self.copy_to_model()
        try:
            yield
        finally:
            with torch.no_grad():
                for target, saved in zip(self.targets, backup):
                    target.copy_(saved)

    def copy_to_model(self) -> None:
        import torch

        with torch.no_grad():
            for target, average in zip(self.targets, self.shadow):
                target.copy_(average)

    def state_dict(self) -> dict:
        """``{name: tensor}`` on the CPU, for the training state file."""
        return {name: t.detach().to("cpu", copy=True) for name, t in zip(self.names, self.shadow)}

    def load_state_dict(self, state: dict, where: str = "the training state") -> None:
        import torch

        missing = [n for n in self.names if n not in state]
        wrong = [n for n, t in zip(self.names, self.shadow) if n in state and tuple(state[n].shape) != tuple(t.shape)]
        if missing or wrong or len(state) != len(self.names):
            raise CheckpointError(f"the weight average in {where} does not fit the model: missing {missing[:3]}, "
                                  f"wrong shape {wrong[:3]}", "was the run trained with another model configuration?")
        with torch.no_grad():
            for name, average in zip(self.names, self.shadow):
                average.copy_(state[name])
