"""Why position matters: a feed-forward net, an LSTM and a 1D CNN on the same pattern-detection task.

The task, fully specified (``PositionSpec``):

- a sequence of ``length`` steps of Gaussian noise (std ``noise``);
- positives contain the pattern ``+1 -1 +1 +1`` (``PATTERN`` times ``amplitude``) added at some position;
  negatives contain the same four values reversed (``+1 +1 -1 +1``), a distractor with the same energy,
  so a model has to recognise the shape, not just notice "something is there";
- training places the pattern or distractor only at the first ``train_positions`` positions;
- testing places them at every position, so accuracy by position shows what each model learned.

A feed-forward net gives each input position its own weights; positions it never saw the pattern at keep
weights that were trained only on noise, so it fails there. A convolution shares one detector across all
positions (with global max pooling the answer does not depend on where), and an LSTM applies the same
cell at every step, so both carry what they learned to unseen positions.

Training is a few hundred full-batch Adam steps per model (seconds on a CPU), small enough to run
inside the forecast report and in tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PATTERN = (1.0, -1.0, 1.0, 1.0)
DISTRACTOR = tuple(reversed(PATTERN))
MODELS = ("ffn", "lstm", "cnn")


@dataclass
class PositionSpec:
    length: int = 24
    train_positions: int = 8    # pattern starts at 0 .. train_positions - 1 during training
    amplitude: float = 1.0
    noise: float = 0.3
    train_size: int = 384
    test_per_position: int = 48
    hidden_size: int = 16
    steps: int = 200
    lr: float = 2e-2
    seed: int = 0


def make_batch(spec: PositionSpec, n: int, positions, generator):
    """``n`` sequences (half positives) with the pattern or distractor starting at ``positions``.

    Args:
        positions: (n,) LongTensor of start positions.

    Returns:
        x (n, length) float, y (n,) float in {0, 1}.
    """
    import torch

    p = len(PATTERN)
    x = spec.noise * torch.randn(n, spec.length, generator=generator)               # (n, L)
    y = (torch.arange(n) % 2 == 0).float()                                           # (n,)
    shapes = torch.where(y[:, None] > 0, torch.tensor(PATTERN), torch.tensor(DISTRACTOR))  # (n, P)
    cols = positions[:, None] + torch.arange(p)[None, :]                             # (n, P)
    x.scatter_add_(1, cols, spec.amplitude * shapes)
    return x, y


def build_model(kind: str, spec: PositionSpec):
    """The three contenders (``models/position.py``), each about the same size. Input (B, L) -> logit (B,)."""
    import torch

    from neuralsight.models import create_model

    kwargs = {"ffn": {"length": spec.length, "hidden_size": spec.hidden_size},
              "lstm": {"hidden_size": spec.hidden_size},
              "cnn": {"hidden_size": spec.hidden_size, "pattern_length": len(PATTERN)}}
    if kind not in kwargs:
        raise ValueError(f"unknown model {kind!r}; use one of {MODELS}")
    torch.manual_seed(spec.seed * 101 + MODELS.index(kind))
    return create_model(f"position_{kind}", **kwargs[kind])


def run_experiment(spec: PositionSpec, device="cpu") -> dict:
    """Train every model on the training positions; measure accuracy at every start position.

    Returns:
        ``{"spec": ..., "positions": [...], "train_positions": n, "accuracy": {model: [acc per position]},
        "seen": {model: mean acc at trained positions}, "unseen": {model: mean acc elsewhere}}``.
    """
    import torch
    from torch import nn

    p = len(PATTERN)
    n_pos = spec.length - p + 1
    if not 0 < spec.train_positions < n_pos:
        raise ValueError(f"train_positions must be in 1..{n_pos - 1}")
    g = torch.Generator().manual_seed(spec.seed)
    pos_train = torch.randint(0, spec.train_positions, (spec.train_size,), generator=g)
    x_train, y_train = make_batch(spec, spec.train_size, pos_train, g)
    pos_test = torch.arange(n_pos).repeat_interleave(spec.test_per_position)
    x_test, y_test = make_batch(spec, len(pos_test), pos_test, g)
    x_train, y_train, x_test = x_train.to(device), y_train.to(device), x_test.to(device)

    accuracy: dict[str, list[float]] = {}
    for kind in MODELS:
        model = build_model(kind, spec).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
        loss_fn = nn.BCEWithLogitsLoss()
        for _ in range(spec.steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train), y_train)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            correct = ((model(x_test) > 0).float().cpu() == y_test).float()        # (N,)
        accuracy[kind] = correct.view(n_pos, spec.test_per_position).mean(dim=1).tolist()
    seen = {k: sum(v[: spec.train_positions]) / spec.train_positions for k, v in accuracy.items()}
    unseen = {k: sum(v[spec.train_positions:]) / (n_pos - spec.train_positions) for k, v in accuracy.items()}
    return {"spec": asdict(spec), "positions": list(range(n_pos)), "train_positions": spec.train_positions,
            "accuracy": accuracy, "seen": seen, "unseen": unseen}
