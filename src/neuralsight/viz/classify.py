"""Classification figures: confusion matrix, the lecture's prediction gallery, top losses, filter panels."""

from __future__ import annotations

from pathlib import Path

from neuralsight.viz.figures import plt, save


def _show(ax, image) -> None:
    """Draw a ``(C, H, W)`` uint8/float image (grey when C == 1)."""
    import numpy as np

    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        arr = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
    ax.set_xticks([])
    ax.set_yticks([])


def confusion_matrix(counts, classes: list[str], path: Path) -> Path:
    """Counts (left) and row-normalised recall (right) heat maps with the numbers written in."""
    import numpy as np

    counts = np.asarray(counts)
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    p = plt()
    n = len(classes)
    size = max(5.0, 0.55 * n + 2)
    fig, axes = p.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, data, title, fmt in ((axes[0], counts, "counts", "d"), (axes[1], norm, "normalised by true class", ".2f")):
        im = ax.imshow(data, cmap="Blues")
        ax.set_title(title)
        ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if n <= 20:
            top = data.max() if data.max() > 0 else 1
            for i in range(n):
                for j in range(n):
                    v = data[i, j]
                    ax.text(j, i, format(int(v) if fmt == "d" else v, fmt), ha="center", va="center", fontsize=6,
                            color="white" if v > top * 0.6 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save(fig, path)


def gallery(images, labels, preds, probs, classes: list[str], path: Path, title: str = "", cols: int = 6) -> Path:
    """The lecture's gallery: each image with ``predicted (probability)`` and the truth; green right, red wrong."""
    import math

    n = len(images)
    rows = max(1, math.ceil(n / cols))
    p = plt()
    fig, axes = p.subplots(rows, cols, figsize=(cols * 1.9, rows * 2.45), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        _show(ax, images[k])
        ok = int(preds[k]) == int(labels[k])
        ax.set_title(f"{classes[int(preds[k])]} {100 * float(probs[k]):.0f}%\n(true: {classes[int(labels[k])]})",
                     fontsize=7, color="green" if ok else "red")
        for spine in ax.spines.values():
            spine.set_edgecolor("green" if ok else "red")
            spine.set_linewidth(2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def top_losses(images, labels, preds, probs, losses, classes: list[str], path: Path, cols: int = 6) -> Path:
    """The test images the model got most wrong: ``predicted / true / loss / probability of the truth``."""
    import math

    n = len(images)
    rows = max(1, math.ceil(n / cols))
    p = plt()
    fig, axes = p.subplots(rows, cols, figsize=(cols * 2.0, rows * 2.3), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        _show(ax, images[k])
        ax.set_title(f"{classes[int(preds[k])]} / {classes[int(labels[k])]}\nloss {float(losses[k]):.2f} "
                     f"p(true) {float(probs[k]):.2f}", fontsize=7, color="red" if preds[k] != labels[k] else "green")
    fig.suptitle("top losses: predicted / true")
    fig.tight_layout()
    return save(fig, path)


def classify_figures(fig_dir: Path, images, labels, out: dict, confusion, classes: list[str], seed: int = 0,
                     prefix: str = "") -> dict:
    """Confusion matrix, prediction gallery and top losses of one split as PNGs (``prefix`` + name).

    Args:
        images: uint8 ``(N, C, H, W)``; labels: int ``(N,)``.
        out: ``prob (N, K)``, ``pred (N,)``, ``loss (N,)`` arrays; confusion: ``(K, K)`` counts.

    Returns:
        ``{"confusion", "gallery", "top_losses"}`` -> paths.
    """
    import numpy as np
    import torch

    fig_dir = Path(fig_dir)
    paths = {"confusion": confusion_matrix(confusion, classes, fig_dir / f"{prefix}confusion_matrix.png")}
    n = len(labels)
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: min(18, n)].numpy()
    prob, pred, loss = (np.asarray(out[k]) for k in ("prob", "pred", "loss"))
    paths["gallery"] = gallery(images[pick], labels[pick], pred[pick], prob.max(-1)[pick], classes,
                               fig_dir / f"{prefix}gallery.png",
                               title=f"{prefix or 'test_'}predictions (green: right, red: wrong)".replace("_", " "))
    worst = np.argsort(-loss, kind="stable")[: min(18, n)]
    paths["top_losses"] = top_losses(images[worst], labels[worst], pred[worst], prob[worst, labels[worst]],
                                     loss[worst], classes, fig_dir / f"{prefix}top_losses.png")
    return paths
