"""The lecture's parameter counts: why a dense layer on an image scales badly, and what a CNN's layers cost."""

from __future__ import annotations

from pathlib import Path

from neuralsight.errors import UserError


def fc_vs_conv(size: int = 128, hidden: int = 100, kernel_size: int = 3, channels: int = 1) -> list[dict]:
    """The lecture's comparison: weights (no bias) of a dense layer vs a conv layer on a size x size input."""
    inputs = size * size * channels
    dense = inputs * hidden
    conv_one = kernel_size * kernel_size * channels
    conv_all = conv_one * hidden
    out = size - kernel_size + 1
    return [
        {"layer": f"dense: {size}x{size}x{channels} input -> {hidden} neurons", "weights": dense,
         "note": f"{inputs:,} inputs x {hidden} neurons"},
        {"layer": f"conv {kernel_size}x{kernel_size}, 1 filter", "weights": conv_one,
         "note": f"shared over all positions; output {out}x{out} (valid)"},
        {"layer": f"conv {kernel_size}x{kernel_size}, {hidden} filters", "weights": conv_all,
         "note": f"{dense / conv_all:,.0f}x fewer weights than the dense layer"},
    ]


def model_for(target: str):
    """``(model, input shape, name)`` of a classify run (a path or ``latest``) or a CNN preset."""
    from neuralsight.models.cnn import CNN, PRESETS

    path = Path(target)
    if path.is_dir() or target.startswith("latest"):
        from neuralsight.tasks.base import SavedRun

        saved = SavedRun.open(target, device="cpu")
        model = saved.model()
        if not hasattr(model, "image_size"):
            raise UserError(f"{saved.path} is a {saved.task.name} run; `params` summarises CNN runs")
        return model, (model.in_channels, *model.image_size), f"run {saved.path.name}"
    if target in PRESETS:
        model = CNN.from_preset(target, in_channels=1, num_classes=10, image_size=[28, 28])
        return model, (1, 28, 28), f"CNN preset '{target}' (Fashion-MNIST input)"
    raise UserError(f"'{target}' is neither a run directory nor a CNN preset",
                    f"presets: {', '.join(PRESETS)}; runs: see `neuralsight runs`")
