"""3D segmentation figures: orthogonal slices through each structure, the lecture's Input | Training mask |
Output | Error panel on central axial slices (a legend names the classes and the Error panel's false positives
and false negatives, drawn over the image), the worst cases, and the slice view ``predict`` writes beside a
predicted NIfTI (:func:`prediction_slices`).

Every function takes plain arrays: a :class:`VolumeView` per case holds its name, the first image channel
``(D, H, W)``, the true and predicted labels ``(D, H, W)`` and its mean foreground Dice. Class colours come
from :mod:`neuralsight.viz.palette`, as in 2D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from neuralsight.viz.figures import plt, save
from neuralsight.viz.palette import FALSE_NEGATIVE, FALSE_POSITIVE, class_legend, error_map, error_rgba, rgba

VIEWS = (("axial", 2), ("coronal", 1), ("sagittal", 0))


@dataclass
class VolumeView:
    name: str
    image: object      # float (D, H, W), the first channel
    truth: object      # int (D, H, W)
    pred: object       # int (D, H, W)
    dice: float = math.nan


def _slice(volume, axis: int, index: int):
    import numpy as np

    return np.take(np.asarray(volume), index, axis=axis).T  # rows: the later axis, shown with origin lower


def orthogonal_figure(view: VolumeView, class_names: list[str], path: Path) -> Path:
    """Axial, coronal and sagittal slices through each structure's centre: prediction filled, truth outlined."""
    import numpy as np

    pyplot = plt()
    image, truth, pred = np.asarray(view.image), np.asarray(view.truth), np.asarray(view.pred)
    structures = [c for c in range(1, len(class_names)) if (truth == c).any() or (pred == c).any()] or [1]
    fig, axes = pyplot.subplots(len(structures), 3, figsize=(10, 3.2 * len(structures)), squeeze=False)
    for row, c in enumerate(structures):
        mask = (truth == c) if (truth == c).any() else (pred == c)
        centre = np.argwhere(mask).mean(0).round().astype(int) if mask.any() else np.array(truth.shape) // 2
        for col, (name, axis) in enumerate(VIEWS):
            ax = axes[row, col]
            ax.imshow(_slice(image, axis, centre[axis]), cmap="gray", origin="lower")
            ax.imshow(rgba(_slice(pred, axis, centre[axis])), origin="lower")
            t = _slice(truth == c, axis, centre[axis]).astype(float)
            if t.any() and t.min() != t.max():
                ax.contour(t, levels=[0.5], colors="yellow", linewidths=0.8, origin="lower")
            ax.set_title(f"{class_names[c]} · {name} {centre[axis]}", fontsize=9)
            ax.axis("off")
    fig.suptitle(f"{view.name}: prediction (filled) vs truth (yellow outline)", fontsize=10)
    return save(fig, path)


def volume_panel(views: list[VolumeView], class_names: list[str], title: str):
    """The lecture's Input | Training mask | Output | Error panel on each case's central structure slice, with a
    legend naming every class and both error colours. Returns the matplotlib figure (unsaved)."""
    import numpy as np

    pyplot = plt()
    fig, axes = pyplot.subplots(len(views), 4, figsize=(10, 2.6 * len(views)), squeeze=False)
    for i, view in enumerate(views):
        truth, pred = np.asarray(view.truth), np.asarray(view.pred)
        fg = np.argwhere(truth > 0)
        z = int(fg[:, 2].mean().round()) if len(fg) else truth.shape[2] // 2
        img = _slice(view.image, 2, z)
        t, o = _slice(truth, 2, z), _slice(pred, 2, z)
        codes = error_map(t, o, ignore=None)
        layers = [None, rgba(t), rgba(o), error_rgba(codes)]
        for j, name in enumerate(("Input", "Training mask", "Output", "Error")):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", origin="lower")
            if layers[j] is not None:
                ax.imshow(layers[j], origin="lower")
            label = name if i == 0 else ""
            if j == 0:
                label = f"{view.name}\nDice {view.dice:.3f}" + (f"\n{name}" if i == 0 else "")
            if j == 3:
                label = (f"{name if i == 0 else 'errors'}: {int((codes == FALSE_POSITIVE).sum())} FP, "
                         f"{int((codes == FALSE_NEGATIVE).sum())} FN px")
            ax.set_title(label, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=10)
    handles, labels = class_legend(class_names, pyplot)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 6),
               fontsize=8, title="masks: classes · Error panel, over the image: error kinds", title_fontsize=8)
    return fig


def panel_figure(views: list[VolumeView], class_names: list[str], path: Path, title: str) -> Path:
    """:func:`volume_panel` saved as ``path``."""
    return save(volume_panel(views, class_names, title), path)


def prediction_slices(image, pred, class_names: list[str], path: Path, title: str) -> Path:
    """Axial, coronal and sagittal slices through the predicted structures' centre (the volume's centre when
    nothing is predicted): the image in grey, each class in its colour, a legend naming them."""
    import numpy as np

    pyplot = plt()
    image, pred = np.asarray(image), np.asarray(pred)
    fg = np.argwhere(pred > 0)
    centre = fg.mean(0).round().astype(int) if len(fg) else np.array(pred.shape) // 2
    fig, axes = pyplot.subplots(1, 3, figsize=(10, 3.4), squeeze=False)
    for ax, (name, axis) in zip(axes[0], VIEWS, strict=True):
        ax.imshow(_slice(image, axis, centre[axis]), cmap="gray", origin="lower")
        ax.imshow(rgba(_slice(pred, axis, centre[axis])), origin="lower")
        ax.set_title(f"{name} {centre[axis]}", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{title}: predicted labels", fontsize=10)
    handles, labels = class_legend(class_names, pyplot, errors=False)
    fig.legend(handles[1:], labels[1:], loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=max(1, len(labels) - 1),
               fontsize=8)
    return save(fig, path)


def volume_figures(folder: Path, views: list[VolumeView], class_names: list[str]) -> list[Path]:
    """``orthogonal.png`` (median case), ``panel.png`` (best, median, worst) and ``worst_cases.png``."""
    order = sorted(range(len(views)), key=lambda i: (math.isnan(views[i].dice), views[i].dice))
    median = views[order[len(order) // 2]]
    worst = [views[i] for i in order[:3]]
    best = views[order[-1]]
    out = [orthogonal_figure(median, class_names, Path(folder) / "orthogonal.png")]
    picks = [best, median] + [v for v in worst if v.name not in (best.name, median.name)][:1]
    out.append(panel_figure(picks, class_names, Path(folder) / "panel.png",
                            "Input | Training mask | Output | Error (best, median, worst case; central axial slice)"))
    out.append(panel_figure(worst, class_names, Path(folder) / "worst_cases.png",
                            "the three worst validation cases"))
    return out
