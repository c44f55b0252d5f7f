"""2D segmentation figures: the lecture panel (Input | Training mask | Network output | Error, with a legend
naming the classes and the Error panel's false positives and false negatives over the image), the overlay view,
the best and worst images by per-image mIoU, and ``predict``'s mask and overlay PNGs.

Every function takes plain arrays: images uint8 ``(N, S, S, 3)``, masks and predictions uint8 ``(N, S, S)``
with :data:`~neuralsight.viz.palette.IGNORE` on the padding, file stems and class names. Colours come from
:mod:`neuralsight.viz.palette`.
"""

from __future__ import annotations

from pathlib import Path

from neuralsight.viz.figures import plt, save
from neuralsight.viz.palette import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    IGNORE,
    class_legend,
    colourize,
    error_map,
    error_rgba,
    legend_handles,
    overlay,
)


def valid_box(mask) -> tuple[slice, slice]:
    """The crop of the unpadded region (training images are padded with IGNORE at the bottom and right)."""
    import numpy as np

    valid = np.asarray(mask) != IGNORE
    rows, cols = np.nonzero(valid.any(1))[0], np.nonzero(valid.any(0))[0]
    if len(rows) == 0:
        return slice(None), slice(None)
    return slice(0, rows[-1] + 1), slice(0, cols[-1] + 1)


def _panel_row(axes, image, mask, pred, num_classes: int, suffix: str = "") -> None:
    """One row of the lecture panel, cropped to the unpadded region; errors drawn over the dimmed image."""
    rs, cs = valid_box(mask)
    img, gt, pr = image[rs, cs], mask[rs, cs], pred[rs, cs]
    codes = error_map(gt, pr)
    valid = max(1, int((gt != IGNORE).sum()))
    fp, fn = (codes == FALSE_POSITIVE).sum() / valid, (codes == FALSE_NEGATIVE).sum() / valid
    panels = [(img, "Input" + suffix), (colourize(gt, num_classes), "Training mask"),
              (colourize(pr, num_classes), "Network output"),
              (img.mean(-1) * 0.6, f"Error ({fp * 100:.1f}% FP, {fn * 100:.1f}% FN)")]
    for ax, (im, title) in zip(axes, panels, strict=True):
        ax.imshow(im, **({"cmap": "gray", "vmin": 0, "vmax": 255} if im.ndim == 2 else {}))
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    axes[3].imshow(error_rgba(codes))


def lecture_panel(rows: list[tuple], class_names: list[str], title: str):
    """The Input | Training mask | Network output | Error figure, one row per ``(image, mask, pred, suffix)``,
    with a legend naming every class and both error colours. Returns the matplotlib figure (unsaved)."""
    pyplot = plt()
    fig, axes = pyplot.subplots(len(rows), 4, figsize=(9, 2.3 * len(rows)), squeeze=False)
    for r, (image, mask, pred, suffix) in enumerate(rows):
        _panel_row(axes[r], image, mask, pred, len(class_names), suffix)
    fig.suptitle(title, fontsize=10)
    handles, labels = class_legend(class_names, pyplot)
    # Below the axes (upper edge at the figure's bottom); the saved PNG's tight box takes it in.
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 6),
               fontsize=8, title="masks: classes · Error panel, over the image: error kinds", title_fontsize=8)
    return fig


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

    fig = lecture_panel([(images[i], masks[i], preds[i], f" {stems[i]}") for i in picks], class_names,
                        f"{split_name}: Input | Training mask | Network output | Error")
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
    fig = lecture_panel([(images[i], masks[i], preds[i], f" [{tag}, mIoU {scores[i]:.2f}]") for i, tag in chosen],
                        class_names, "best and worst validation images by per-image mIoU")
    written.append(save(fig, Path(folder) / "best_worst.png"))
    return written


def write_mask_pngs(out: Path, stem: str, image, mask, num_classes: int) -> dict[str, Path]:
    """``predict``'s files for one image: ``<stem>_mask.png`` (a palette PNG: pixel values are the class
    indices, the palette their colours) and ``<stem>_overlay.png`` (class colours over the RGB uint8 ``image``);
    returns ``{"mask", "overlay"}`` paths."""
    from neuralsight.viz.figures import save_image
    from neuralsight.viz.palette import save_label_png

    outputs = {"mask": Path(out) / f"{stem}_mask.png", "overlay": Path(out) / f"{stem}_overlay.png"}
    save_label_png(outputs["mask"], mask)
    save_image(outputs["overlay"], overlay(image, mask, num_classes))
    return outputs
