"""A CNN built from a stage spec: conv stages (each optionally pooled), flatten, dense layers, class scores.

The lecture's network is ``conv -> pool -> conv -> pool -> flatten -> dense -> softmax``. Here each stage
is a dict::

    {"channels": 32, "kernel_size": 3, "convs": 1, "activation": "relu", "batchnorm": False,
     "dropout": 0.0, "pool": "max", "pool_size": 2}

(``pool`` is ``"max"``, ``"avg"``, ``"min"`` or ``None``). The network returns logits; the softmax of the
lecture's last layer is applied by the cross-entropy loss in training and by :meth:`CNN.predict_proba`
at prediction time (the fused log-softmax is numerically safer than a softmax layer followed by a log).

``forward_features`` (the conv stages) and ``forward_head`` (flatten + dense) are split as in timm;
``forward_intermediates`` returns every stage's output (feature maps) and ``gradcam_layer`` names the layer
Grad-CAM reads, so ``viz/explain.py`` needs nothing else from the model.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from neuralsight.layers.blocks import ACTIVATIONS, ConvBlock, make_activation
from neuralsight.layers.pool import Pool
from neuralsight.models.registry import register_model

STAGE_KEYS = {"channels", "kernel_size", "convs", "activation", "batchnorm", "dropout", "pool", "pool_size"}

PRESETS: dict[str, dict] = {
    # The lecture's basic CNN: conv, pool, conv, pool, flatten, dense, softmax.
    "lecture": {"stages": [{"channels": 32, "kernel_size": 3, "pool": "max"},
                           {"channels": 64, "kernel_size": 3, "pool": "max"}],
                "dense": [128], "dropout": 0.0},
    # Three BatchNorm stages, small head. Per image it learns more than the lecture CNN, but on the 2-core
    # AMD EPYC it trained at ~3,600 img/s against ~6,200 and reached val 0.920 against 0.929 in 120 s
    # (configs/fashion.toml), so the fashion preset uses the lecture CNN there.
    "fast": {"stages": [{"channels": 32, "kernel_size": 3, "batchnorm": True, "pool": "max"},
                        {"channels": 64, "kernel_size": 3, "batchnorm": True, "pool": "max"},
                        {"channels": 128, "kernel_size": 3, "batchnorm": True, "pool": "max"}],
             "dense": [128], "dropout": 0.25},
    # As accurate as the benchmark can make it: VGG-style double convs, BatchNorm, dropout.
    "best": {"stages": [{"channels": 64, "kernel_size": 3, "convs": 2, "batchnorm": True, "pool": "max"},
                        {"channels": 128, "kernel_size": 3, "convs": 2, "batchnorm": True, "pool": "max",
                         "dropout": 0.1},
                        {"channels": 256, "kernel_size": 3, "convs": 2, "batchnorm": True, "pool": "max",
                         "dropout": 0.2}],
             "dense": [256], "dropout": 0.4},
}


def parse_stage(text: str) -> dict:
    """A stage dict from the compact config form, e.g. ``"c64 k3 n2 bn d0.1 max2"``.

    Tokens: ``cN`` channels (required), ``kN`` kernel size, ``nN`` convs in the stage, ``bn`` BatchNorm,
    ``dP`` dropout, ``max2``/``avg2``/``min2`` pooling with its size, or an activation name (``gelu``).
    """
    import re

    stage: dict = {}
    for tok in text.split():
        if m := re.fullmatch(r"c(\d+)", tok):
            stage["channels"] = int(m[1])
        elif m := re.fullmatch(r"k(\d+)", tok):
            stage["kernel_size"] = int(m[1])
        elif m := re.fullmatch(r"n(\d+)", tok):
            stage["convs"] = int(m[1])
        elif tok == "bn":
            stage["batchnorm"] = True
        elif m := re.fullmatch(r"d(0?\.\d+|0|1)", tok):
            stage["dropout"] = float(m[1])
        elif m := re.fullmatch(r"(max|avg|min)(\d*)", tok):
            stage["pool"] = m[1]
            stage["pool_size"] = int(m[2] or 2)
        elif tok in ACTIVATIONS:
            stage["activation"] = tok
        else:
            raise ValueError(f"stage '{text}': unknown token '{tok}' (expected cN kN nN bn dP max2|avg2|min2 "
                             f"or an activation)")
    if "channels" not in stage:
        raise ValueError(f"stage '{text}' names no channel count; start it with cN, e.g. 'c32 k3 max2'")
    return stage


def preset_kwargs(preset: str) -> dict:
    """A fresh copy of a preset's constructor arguments (``stages``, ``dense``, ``dropout``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown CNN preset {preset!r}; choose from {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[preset])


@register_model("cnn")
class CNN(nn.Module):
    """Convolutional classifier from a stage spec: conv stages, flatten, dense layers, class logits.

    Args:
        in_channels: image channels (1 for Fashion-MNIST).
        num_classes: number of classes.
        image_size: ``(H, W)`` of the input; fixes the flattened feature size.
        stages: list of stage dicts (see the module docstring).
        dense: hidden sizes of the dense layers after flattening.
        dropout: dropout before each dense layer.
        activation: default activation of stages and dense layers (see ``layers.blocks.ACTIVATIONS``).
        padding: ``"same"`` (keep size) or ``"valid"`` (a k x k conv loses ``k - 1`` pixels).
        input_mean, input_std: per-channel statistics of the training inputs in [0, 1]; the model
            normalises with them, so a checkpoint carries its own preprocessing.

    Shapes: ``(B, in_channels, H, W) -> (B, num_classes)`` logits.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size=(28, 28),
                 stages: list[dict] | None = None, dense: list[int] | None = None, dropout: float = 0.0,
                 activation: str = "relu", padding: str = "same", input_mean=None, input_std=None):
        super().__init__()
        # Normalisation lives in the model, so a checkpoint carries its own preprocessing:
        # inputs are in [0, 1]; features see (x - mean) / std per channel.
        mean = [0.0] * in_channels if input_mean is None else list(input_mean)
        std = [1.0] * in_channels if input_std is None else list(input_std)
        self.register_buffer("input_mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)
        self.register_buffer("input_std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)
        self.in_channels = in_channels
        self.image_size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        stages = PRESETS["lecture"]["stages"] if stages is None else stages
        dense = [] if dense is None else list(dense)
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        blocks: list[nn.Module] = []
        channels = in_channels
        for i, stage in enumerate(stages):
            unknown = set(stage) - STAGE_KEYS
            if unknown:
                raise ValueError(f"stage {i}: unknown keys {sorted(unknown)}; allowed: {sorted(STAGE_KEYS)}")
            k = int(stage.get("kernel_size", 3))
            layers: list[nn.Module] = []
            for _ in range(int(stage.get("convs", 1))):
                layers.append(ConvBlock(2, channels, int(stage["channels"]), k,
                                        norm="batch" if stage.get("batchnorm", False) else None,
                                        activation=stage.get("activation", activation),
                                        dropout=float(stage.get("dropout", 0.0)), padding=padding))
                channels = int(stage["channels"])
                if padding == "valid":
                    h, w = h - k + 1, w - k + 1
            mode = stage.get("pool")
            if mode:
                size = int(stage.get("pool_size", 2))
                layers.append(Pool(mode, size, spatial_dims=2))
                h, w = h // size, w // size
            if h < 1 or w < 1:
                raise ValueError(f"stage {i} shrinks a {tuple(image_size)} input to nothing; "
                                 f"use fewer pools or padding='same'")
            blocks.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*blocks)
        self.feature_shape = (channels, h, w)
        head: list[nn.Module] = [nn.Flatten()]
        width = channels * h * w
        for hidden in dense:
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            head += [nn.Linear(width, hidden), make_activation(activation)]
            width = hidden
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*head)
        self.num_classes = num_classes

    @classmethod
    def from_preset(cls, preset: str, **kwargs) -> CNN:
        """A :class:`CNN` from a preset (``lecture``, ``fast``, ``best``); ``kwargs`` override its entries.

        Example: ``CNN.from_preset("fast", in_channels=1, num_classes=10, image_size=(28, 28))``.
        """
        return cls(**{**preset_kwargs(preset), **kwargs})

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs in [0, 1] ``(B, C_in, H, W)`` -> what the first stage sees, ``(x - mean) / std``."""
        return (x - self.input_mean) / self.input_std

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every conv stage, ``[(B, C_1, H_1, W_1), ...]``; the last is ``forward_features``."""
        outputs = []
        h = self.normalize(x)
        for stage in self.features:
            h = stage(h)
            outputs.append(h)
        return outputs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.normalize(x))  # (B, C, H', W')

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)  # (B, num_classes)

    @property
    def gradcam_layer(self) -> nn.Module:
        """The layer whose output Grad-CAM weights by its gradients: the last conv stage."""
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, flip_tta: bool = False) -> torch.Tensor:
        """Softmax class probabilities ``(B, num_classes)``: the lecture's softmax output layer.

        ``flip_tta``: the mean of the image's and its mirror image's probabilities (test-time augmentation).
        """
        p = torch.softmax(self.forward(x).float(), dim=-1)
        return (p + torch.softmax(self.forward(x.flip(-1)).float(), dim=-1)) / 2 if flip_tta else p



def layer_summary(model: nn.Module, input_shape: tuple[int, ...]) -> list[dict]:
    """Per-layer table: name, type, output shape, parameters and multiply-accumulates for one input.

    Leaf modules (but ``nn.Identity``) are hooked; MACs are counted for Conv (``out elements * in_ch/groups * prod(kernel)``) and
    Linear (``in * out``); BatchNorm/activations/pooling count 0 (no multiply-accumulate weights).
    """
    rows: list[dict] = []
    hooks = []

    def hook(name):
        def fn(module, inputs, output):
            params = sum(p.numel() for p in module.parameters(recurse=False))
            macs = 0
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                k = 1
                for s in module.kernel_size:
                    k *= s
                macs = output[0].numel() * (module.in_channels // module.groups) * k
            elif isinstance(module, nn.Linear):
                macs = module.in_features * module.out_features
            rows.append({"layer": name, "type": type(module).__name__,
                         "output": "x".join(str(s) for s in output.shape[1:]), "params": params, "macs": macs})
        return fn

    for name, module in model.named_modules():
        # Identity leaves are the switched-off slots of a ConvBlock (no norm, no dropout): not layers.
        if len(list(module.children())) == 0 and not isinstance(module, nn.Identity):
            hooks.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows
