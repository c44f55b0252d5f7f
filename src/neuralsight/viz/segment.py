"""2D segmentation figures: the lecture panel (Input | Training mask | Network output | Error), the overlay
view, the best and worst images by per-image mIoU, and ``predict``'s mask and overlay PNGs.

Every function takes plain arrays: images uint8 ``(N, S, S, 3)``, masks and predictions uint8 ``(N, S, S)``
with :data:`~neuralsight.viz.palette.IGNORE` on the padding, file stems and class names. Colours come from
:mod:`neuralsight.viz.palette`.
"""

from __future__ import annotations

from pathlib import Path

from neuralsight.viz.figures import plt, save
from neuralsight.viz.palette import IGNORE, colourize, legend_handles, overlay

ERROR_COLOUR = (230, 30, 30)


def valid_box(mask) -> tuple[slice, slice]:
    """The crop of the unpadded region (training images are padded with IGNORE at the bottom and right)."""
    import numpy as np

    valid = np.asarray(mask) != IGNORE
    rows, cols = np.nonzero(valid.any(1))[0], np.nonzero(valid.any(0))[0]
    if len(rows) == 0:
        return slice(None), slice(None)
    return slice(0, rows[-1] + 1), slice(0, cols[-1] + 1)


def _panel_row(axes, image, mask, pred, num_classes: int, suffix: str = "") -> None:
    """One row of the lecture panel, cropped to the unpadded region."""
    import numpy as np

    rs, cs = valid_box(mask)
    img, gt, pr = image[rs, cs], mask[rs, cs], pred[rs, cs]
    err = (pr != gt) & (gt != IGNORE)
    panels = [(img, "Input" + suffix), (colourize(gt, num_classes), "Training mask"),
              (colourize(pr, num_classes), "Network output"),
              (np.where(err[..., None], np.array(ERROR_COLOUR, np.uint8), (img * 0.35).astype(np.uint8)),
               f"Error ({err.mean() * 100:.1f}% px)")]
    for ax, (im, title) in zip(axes, panels, strict=True):
        ax.imshow(im)
        ax.set_title(title, fontsize=8)
        ax.axis("off")


def segment_figures(folder: Path, images, masks, preds, stems: list[str], class_names: list[str], per_image,
                    n_panels: int, split_name: str) -> list[Path]:
    """``panels.png``, ``overlay.png`` and ``best_worst.png`` in ``folder``.

    Args:
        images: uint8 ``(N, S, S, 3)``; masks, preds: uint8 ``(N, S, S)``; per_image: mIoU ``(N,)`` (NaN allowed).
        n_panels: images in the panel and the overlay view, spread evenly over the split.
        split_name: what the images are, for the title (e.g. "official test split").
    """
    import numpy as np

    pyplot = plt()
    preds = np.asarray(preds)
    c = len(class_names)
    n = min(n_panels, len(stems))
    picks = np.linspace(0, len(stems) - 1, n).round().astype(int) if n else []
    written = []

    fig, axes = pyplot.subplots(n, 4, figsize=(9, 2.3 * n), squeeze=False)
    for r, i in enumerate(picks):
        _panel_row(axes[r], images[i], masks[i], preds[i], c, f" {stems[i]}")
    fig.suptitle(f"{split_name}: Input | Training mask | Network output | Error", fontsize=10)
    written.append(save(fig, Path(folder) / "panels.png"))

    cols = min(4, max(1, n))
    rows_n = (n + cols - 1) // cols
    fig, axes = pyplot.subplots(rows_n, cols, figsize=(2.6 * cols, 2.6 * rows_n), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, i in enumerate(picks):
        rs, cs = valid_box(masks[i])
        axes.ravel()[k].imshow(overlay(images[i][rs, cs], preds[i][rs, cs], c))
        axes.ravel()[k].set_title(stems[i], fontsize=8)
    fig.legend(legend_handles(class_names, pyplot), class_names[1:], loc="lower center", ncol=max(1, c - 1),
               fontsize=8)
    written.append(save(fig, Path(folder) / "overlay.png"))

    scores = np.nan_to_num(np.asarray(per_image, dtype=float), nan=-1)
    order = np.argsort(scores)
    k = min(3, len(order) // 2) or min(1, len(order))
    chosen = [(i, "best") for i in order[::-1][:k]] + [(i, "worst") for i in order[:k]]
    fig, axes = pyplot.subplots(len(chosen), 4, figsize=(9, 2.3 * len(chosen)), squeeze=False)
    for r, (i, tag) in enumerate(chosen):
        _panel_row(axes[r], images[i], masks[i], preds[i], c, f" [{tag}, mIoU {scores[i]:.2f}]")
    fig.suptitle("best and worst validation images by per-image mIoU", fontsize=10)
    written.append(save(fig, Path(folder) / "best_worst.png"))
    return written


def write_mask_pngs(out: Path, stem: str, image, mask, num_classes: int) -> dict[str, Path]:
    """``predict``'s files for one image: ``<stem>_mask.png`` (class indices as grey levels) and
    ``<stem>_overlay.png`` (class colours over the RGB uint8 ``image``); returns ``{"mask", "overlay"}`` paths."""
    from PIL import Image

    from neuralsight.io import atomic_path

    outputs = {"mask": Path(out) / f"{stem}_mask.png", "overlay": Path(out) / f"{stem}_overlay.png"}
    with atomic_path(outputs["mask"]) as tmp:
        Image.fromarray(mask, mode="L").save(tmp, format="PNG")
    with atomic_path(outputs["overlay"]) as tmp:
        Image.fromarray(overlay(image, mask, num_classes)).save(tmp, format="PNG")
    return outputs
