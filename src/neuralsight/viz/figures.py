"""Shared figure helpers: headless matplotlib, atomic PNG writes (figures and plain RGB arrays), training curves,
a training batch grid."""

from __future__ import annotations

import os
from pathlib import Path


def plt():
    """pyplot with the headless Agg backend (no display needed)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as pyplot

    return pyplot


def save(fig, path: Path, dpi: int = 110) -> Path:
    """Write a figure atomically as PNG and close it."""
    from neuralsight.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt().close(fig)
    return path


def save_image(path: Path, rgb) -> Path:
    """Write an RGB uint8 array ``(H, W, 3)`` atomically as PNG."""
    from PIL import Image

    from neuralsight.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    return path


TRAIN_COLOUR = "tab:blue"
# Validation series never take the training loss's blue: losses in warm colours, other metrics in the rest.
LOSS_COLOURS = ("tab:orange", "tab:red", "tab:brown", "tab:pink")
METRIC_COLOURS = ("tab:green", "tab:purple", "tab:olive", "tab:cyan", "tab:gray", "tab:orange", "tab:red")


def _marker_size(n_points: int) -> float:
    """Markers that stay visible when a quick run has evaluated once or twice."""
    return 7.0 if n_points <= 3 else 3.0


def _plot_series(ax, evals: list[dict], names: list[str], colours: tuple[str, ...]) -> None:
    for i, name in enumerate(names):
        pts = [(r["step"], r[name]) for r in evals if name in r]
        steps, values = zip(*pts, strict=True)
        ax.plot(steps, values, marker="o", ms=_marker_size(len(pts)), lw=1.5, color=colours[i % len(colours)],
                label=name)
        if len(pts) == 1:  # one evaluation: say its value, so the chart is not an empty frame with a dot
            ax.annotate(f"{values[0]:.4g}", (steps[0], values[0]), xytext=(-8, 8), textcoords="offset points",
                        ha="right", fontsize=8, color=colours[i % len(colours)])


def training_curves(records: list[dict], path: Path, title: str = "") -> Path | None:
    """Train loss (blue) and every validation metric (other colours, markers) against the step.

    Left: the training loss and the validation losses; right: the other validation metrics. A run that
    evaluated once draws that point large and labelled. None when nothing was logged.
    """
    train = [r for r in records if r.get("kind") == "train" and "loss" in r]
    evals = [r for r in records if r.get("kind") == "eval"]
    if not train and not evals:
        return None
    skip = {"kind", "step", "epoch", "time"}
    metric_names = sorted({k for r in evals for k, v in r.items() if k not in skip and isinstance(v, (int, float))})
    losses = [n for n in metric_names if "loss" in n]
    others = [n for n in metric_names if "loss" not in n]
    n = 1 + (1 if others else 0)
    p = plt()
    fig, axes = p.subplots(1, n, figsize=(5.5 * n, 3.6), squeeze=False)
    ax = axes[0, 0]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", color=TRAIN_COLOUR,
                lw=1.2, marker="o" if len(train) <= 3 else None, ms=_marker_size(len(train)))
    _plot_series(ax, evals, losses, LOSS_COLOURS)
    ax.margins(x=0.08, y=0.12)  # a point on the last step (a quick run's one evaluation) stays off the frame
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("loss: train and validation", fontsize=9)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    if others:
        ax2 = axes[0, 1]
        _plot_series(ax2, evals, others, METRIC_COLOURS)
        ax2.margins(x=0.08, y=0.12)
        ax2.set_xlabel("step")
        ax2.set_ylabel("metric")
        ax2.set_title("validation metrics", fontsize=9)
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def grid_axes(n: int, cols: int, cell: float, top: float):
    """A figure of ``n`` tick-less panels, ``cols`` per row, each ``cell`` inches (plus ``top`` for titles);
    the unused panels of the last row hidden. Returns ``(fig, the n axes)``."""
    import math

    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt().subplots(rows, cols, figsize=(cell * cols, cell * rows + top), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
    return fig, list(axes.flat)[:n]


def batch_grid(images, path: Path, masks=None, num_classes: int = 0, title: str = "", cols: int = 8) -> Path:
    """A training batch as the network saw it: ``images (B, C, H, W)`` floats in [0, 1] (grey when C == 1),
    with ``masks (B, H, W)`` class indices blended over them in class colours when given."""

    import numpy as np

    from neuralsight.viz.palette import overlay

    images = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    n = len(images)
    fig, axes = grid_axes(n, cols, 1.6, 0.4)
    for k, ax in enumerate(axes):
        img = images[k].transpose(1, 2, 0)
        if masks is not None:
            rgb = (np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img) * 255
            ax.imshow(overlay(rgb.astype(np.uint8), masks[k], num_classes))
        else:
            ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=1)
    fig.suptitle(title or f"a training batch after augmentation ({n} items)", fontsize=10)
    fig.tight_layout()
    return save(fig, path)
