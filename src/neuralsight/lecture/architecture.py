"""The encoder-decoder idea measured on the real classes: every stage's feature-map shape in U-Net and V-Net.

Forward hooks record each stage's output while a batch of one goes through the network on PyTorch's ``meta``
device (shapes without arithmetic: instant and memory-free, whatever the volume size). The figure draws the U:
the encoder halves the size and doubles the channels, the decoder doubles the size back, and the skip
connections carry each encoder level to the decoder level of the same size.
"""

from __future__ import annotations


def _record(model, x, names: dict) -> dict:
    """Output shapes ``{name: (C, *S)}`` of the modules in ``names`` (module -> name) for input ``x``."""
    import torch

    shapes: dict = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: shapes.__setitem__(n, tuple(out.shape[1:])))
             for m, n in names.items()]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    shapes["output"] = tuple(out.shape[1:])
    return shapes


def _padded(spatial, multiple: int) -> tuple[int, ...]:
    return tuple(s + (-s) % multiple for s in spatial)


def unet_stages(in_channels: int = 3, num_classes: int = 3, spatial: tuple[int, ...] = (128, 128),
                **kwargs) -> dict:
    """Stage shapes of :class:`~neuralsight.models.unet.UNet` on one input of size ``spatial``.

    Returns:
        ``{"model": "U-Net", "input": (C, *S), "padded": (C, *S') , "levels": [{"level", "encoder", "up",
        "decoder"}], "output": (K, *S), "parameters": int, "down": ..., "up": ...}``; level ``depth`` is the
        bottleneck (no decoder); ``up`` is the transposed convolution's output before the skip is concatenated.
    """
    import torch

    from neuralsight.models.unet import UNet

    with torch.device("meta"):
        model = UNet(spatial_dims=len(spatial), in_channels=in_channels, num_classes=num_classes, **kwargs).eval()
        names = {model.stem: "enc0", model.head: "head"}
        names.update({down: f"enc{i + 1}" for i, down in enumerate(model.downs)})
        for k, up in enumerate(model.ups):          # ups[0] is the deepest decoder level
            level = model.depth - 1 - k
            names[up] = f"dec{level}"
            names[up.up] = f"up{level}"
        shapes = _record(model, torch.zeros(1, in_channels, *spatial), names)
    levels = [{"level": i, "encoder": shapes[f"enc{i}"], "up": shapes.get(f"up{i}"), "decoder": shapes.get(f"dec{i}")}
              for i in range(model.depth + 1)]
    return {"model": "U-Net", "input": (in_channels, *spatial), "padded": (in_channels, *_padded(spatial, 2**model.depth)),
            "levels": levels, "output": shapes["output"], "head": shapes["head"],
            "parameters": sum(p.numel() for p in model.parameters()),
            "down": "max pool 2 + 2 convs", "up": "transposed conv 2x2 stride 2",
            "skip": "copy and concatenate"}


def vnet_stages(in_channels: int = 1, num_classes: int = 3, spatial: tuple[int, int, int] = (32, 48, 32),
                **kwargs) -> dict:
    """Stage shapes of :class:`~neuralsight.models.vnet.VNet` on one volume of size ``spatial`` (D, H, W).

    Returns the same layout as :func:`unet_stages`; ``down`` is V-Net's strided 2x2x2 convolution.
    """
    import torch

    from neuralsight.models.vnet import VNet

    with torch.device("meta"):
        model = VNet(in_channels=in_channels, num_classes=num_classes, **kwargs).eval()
        names = {model.stem: "enc0", model.head: "head"}
        names.update({stage: f"enc{i + 1}" for i, stage in enumerate(model.encoder)})
        for k, (up, stage) in enumerate(zip(model.up, model.decoder, strict=True)):
            level = model.depth - 1 - k
            names[up] = f"up{level}"
            names[stage] = f"dec{level}"
        shapes = _record(model, torch.zeros(1, in_channels, *spatial), names)
    levels = [{"level": i, "encoder": shapes[f"enc{i}"], "up": shapes.get(f"up{i}"), "decoder": shapes.get(f"dec{i}")}
              for i in range(model.depth + 1)]
    return {"model": "V-Net", "input": (in_channels, *spatial), "padded": (in_channels, *_padded(spatial, 2**model.depth)),
            "levels": levels, "output": shapes["output"], "head": shapes["head"],
            "parameters": sum(p.numel() for p in model.parameters()),
            "down": "strided conv 2x2x2", "up": "transposed conv 2x2x2",
            "skip": "copy and concatenate"}
