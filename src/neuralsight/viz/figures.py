"""Shared figure helpers: headless matplotlib, atomic PNG writes, training curves."""

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


def training_curves(records: list[dict], path: Path, title: str = "") -> Path | None:
    """Train loss and every evaluated metric against the step; None when nothing was logged."""
    train = [r for r in records if r.get("kind") == "train" and "loss" in r]
    evals = [r for r in records if r.get("kind") == "eval"]
    if not train and not evals:
        return None
    skip = {"kind", "step", "epoch", "time"}
    metric_names = sorted({k for r in evals for k, v in r.items() if k not in skip and isinstance(v, (int, float))})
    n = 1 + (1 if metric_names else 0)
    p = plt()
    fig, axes = p.subplots(1, n, figsize=(5.5 * n, 3.6), squeeze=False)
    ax = axes[0, 0]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", color="tab:blue")
    for name in metric_names:
        if "loss" in name:
            pts = [(r["step"], r[name]) for r in evals if name in r]
            ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if metric_names:
        ax2 = axes[0, 1]
        for name in metric_names:
            if "loss" in name:
                continue
            pts = [(r["step"], r[name]) for r in evals if name in r]
            ax2.plot(*zip(*pts, strict=True), marker="o", ms=3, label=name)
        ax2.set_xlabel("step")
        ax2.set_ylabel("metric")
        ax2.grid(alpha=0.3)
        if ax2.lines:
            ax2.legend(fontsize=8)
        else:
            ax2.set_visible(False)
    if title:
        fig.suptitle(title)
    return save(fig, path)
