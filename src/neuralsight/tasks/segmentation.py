"""Applying segmentation nets and scoring them: what the segment (2D) and segment3d tasks and the benchmarks share.

2D: :func:`segment_image` labels one RGB image at its own size (resized like the training data, or scaled to the
training images' pixel scale, :func:`native_side`, and segmented in sliding windows); :func:`predict_arrays` scores a split of uint8 tensors from a pooled confusion
matrix (dataset-level IoU and Dice, per-image means beside them, and foreground merged against background);
:func:`class_table` is its per-class table. 3D: :func:`infer_logits` runs Gaussian-blended sliding windows over
a volume; :func:`score_cases` gives per-case Dice, HD95 (mm) and volume difference (mL); :func:`summarize_rows`
averages them over cases; :func:`save_volume_prediction` writes what ``predict`` gives for a volume (NIfTI labels
and a slice view).
"""

from __future__ import annotations

import math
from typing import Any

MEAN, STD = 0.5, 0.25  # fixed intensity normalisation of the 2D task's [0, 1] images


def normalize(images_uint8):
    """uint8 images -> float inputs of the 2D U-Net."""
    return (images_uint8.float() / 255 - MEAN) / STD


# ---- 2D -------------------------------------------------------------------------------------------------

def spread(items: list, n: int) -> list:
    """``n`` items evenly spread over the list (deterministic, covers every part of it)."""
    if n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def to_tensors(arrays, device):
    """uint8 arrays -> device tensors: images ``(N, 3, S, S)`` uint8, masks ``(N, S, S)`` uint8."""
    import torch

    images = torch.from_numpy(arrays.images).permute(0, 3, 1, 2).contiguous().to(device)  # (N, 3, S, S)
    masks = torch.from_numpy(arrays.masks).to(device)                                       # (N, S, S)
    return images, masks


def two_way_run(saved) -> bool:
    """True for a run written by 0.1, which held out one split (its ``val``) and no test split: its
    config.toml has no ``data.test_fraction``."""
    from neuralsight.config import load_toml  # tomllib, or tomli before Python 3.11

    path = saved.path / "config.toml"
    data = load_toml(path).get("data", {}) if path.is_file() else {}
    return "test_fraction" not in data


def headline_metric(dataset: str, num_classes: int) -> str:
    """The metric a 2D run is judged by: its catalog entry's (pets: ``fg_iou``, as smp scores the binary merge),
    else ``miou`` with more than two classes and ``fg_dice`` for one foreground class."""
    from neuralsight.data.catalog import CATALOG

    entry = CATALOG.get(dataset)
    if entry is not None and entry.task == "segment" and entry.headline_metric:
        return entry.headline_metric
    return "miou" if num_classes > 2 else "fg_dice"


def predict_arrays(model, images, masks, num_classes: int, loss_fn=None, batch_size: int = 16,
                   keep_predictions: bool = False) -> dict:
    """Run ``model`` over uint8 ``images (N, 3, S, S)`` and score against ``masks (N, S, S)``.

    Returns ``{"metrics": {...}, "meter": SegmentationMeter, "pred": uint8 (N, S, S) or None}``.
    """
    import torch

    from neuralsight.data.images import IGNORE
    from neuralsight.engine.metrics import SegmentationMeter

    meter = SegmentationMeter(num_classes, ignore_index=IGNORE)
    merged = SegmentationMeter(2, ignore_index=IGNORE) if num_classes > 2 else None
    total_loss, preds = 0.0, []
    for i in range(0, len(images), batch_size):
        x = normalize(images[i:i + batch_size])                   # (b, 3, S, S)
        y = masks[i:i + batch_size].long()                        # (b, S, S)
        logits = model(x).float()                                 # (b, C, S, S)
        if loss_fn is not None:
            total_loss += float(loss_fn(logits, y)) * len(x)
        pred = logits.argmax(1)                                   # (b, S, S)
        meter.update(pred, y)
        if merged is not None:
            # Foreground vs background (all non-zero classes merged), as smp evaluates binary pets.
            merged.update((pred > 0).long(), torch.where(y == IGNORE, y, (y > 0).long()))
        if keep_predictions:
            preds.append(pred.to(torch.uint8).cpu())
    metrics = meter.compute()
    out = {k: metrics[k] for k in ("miou", "mdice", "pixel_acc", "miou_per_image")}
    fg = merged.compute() if merged is not None else metrics
    out["fg_iou"], out["fg_dice"] = fg["iou_1"], fg["dice_1"]
    if loss_fn is not None:
        out["val_loss"] = total_loss / max(1, len(images))
    return {"metrics": out, "meter": meter, "pred": torch.cat(preds) if preds else None}


def class_table(meter, class_names: list[str]) -> list[dict]:
    """Per class: pooled IoU and Dice, true pixels and their share."""
    from neuralsight.engine.metrics import dice_per_class, iou_per_class

    iou, dice = iou_per_class(meter.total), dice_per_class(meter.total)
    counts = meter.total.sum(1)
    total = max(1, int(counts.sum()))
    return [{"class": n, "iou": float(iou[i]), "dice": float(dice[i]), "pixels": int(counts[i]),
             "share": int(counts[i]) / total} for i, n in enumerate(class_names)]


def native_side(sizes) -> int | None:
    """Median longer side of the training images as stored, ``(height, width)`` each: with ``image_size`` it gives
    the pixel scale the net was trained at (``image_size / native_side``)."""
    import statistics

    sides = [max(int(h), int(w)) for h, w in sizes]
    return int(statistics.median(sides)) if sides else None


def min_tile(image_size: int) -> int:
    """Smallest ``tile`` taken: a quarter of the training field (16 px at least); a smaller window shows the net
    too little of an object to label it as in training."""
    return max(16, image_size // 4)


def segment_image(model, image, image_size: int, device, tile: int | None = None, overlap: float = 0.25,
                  sw_batch_size: int = 4, native_side: int | None = None):
    """Class-index mask ``(H, W)`` uint8 for an RGB uint8 image ``(H, W, 3)`` at its own size.

    Without ``tile`` the image is resized like the training data (longer side = ``image_size``), segmented
    in one pass, and the logits resized back. With ``tile`` the image is first scaled to the pixel scale the net
    was trained at, by ``image_size / native_side`` (``native_side``: the training images' median longer side as
    stored, which the run records; the image's own longer side when unknown), then segmented by sliding windows
    of ``tile`` pixels (bounded memory: one batch of windows on the device, the accumulator on the CPU), and the
    label map resized back (nearest). So a large image (a mosaic, an X-ray bigger than the training ones) keeps
    the detail a whole-image pass would shrink away, and each object still looks to the net as it did in training.

    Raises:
        UserError: ``tile`` below :func:`min_tile`.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from neuralsight.data.images import fit_size
    from neuralsight.engine.sliding import sliding_window_inference
    from neuralsight.errors import UserError

    h, w = image.shape[:2]
    x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).unsqueeze(0)          # (1, 3, H, W) uint8
    if tile:
        if tile < min_tile(image_size):
            raise UserError(f"--tile {tile} is too small for a net trained on {image_size}-pixel images: expected "
                            f"at least {min_tile(image_size)} pixels", f"use --tile {image_size} (or leave it out)")
        scale = image_size / (native_side or max(h, w))
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        scaled = x.float() if (sh, sw) == (h, w) else F.interpolate(
            x.float(), size=(sh, sw), mode="bilinear", antialias=True, align_corners=False)  # (1, 3, sh, sw)
        logits = sliding_window_inference(scaled, (tile, tile), lambda windows: model(normalize(windows)),
                                          overlap=overlap, sw_batch_size=sw_batch_size, device=device,
                                          output_device="cpu")                               # (1, C, sh, sw)
        labels = logits.argmax(1, keepdim=True).float()                                     # (1, 1, sh, sw)
        return F.interpolate(labels, size=(h, w), mode="nearest")[0, 0].to(torch.uint8).numpy()  # (H, W)
    fh, fw = fit_size(h, w, image_size)
    small = F.interpolate(x.float(), size=(fh, fw), mode="bilinear", antialias=True, align_corners=False)
    logits = model(((small / 255 - MEAN) / STD).to(device)).float().cpu()                    # (1, C, fh, fw)
    logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)       # (1, C, H, W)
    return logits[0].argmax(0).to(torch.uint8).numpy()


# ---- 3D -------------------------------------------------------------------------------------------------
# ``cfg`` below is a segment3d ``Config``: its ``eval`` section and ``data.patch_size`` (the default window).

def infer_logits(model, image, cfg, device, autocast=None):
    """Sliding-window logits ``(C_out, D, H, W)`` (CPU, float32) for one normalised image ``(C, D, H, W)``."""
    import contextlib

    import torch

    from neuralsight.engine.sliding import sliding_window_inference

    ctx = autocast if autocast is not None else contextlib.nullcontext
    with torch.no_grad(), ctx():
        out = sliding_window_inference(image[None], list(cfg.eval.roi_size or cfg.data.patch_size), model,
                                       overlap=cfg.eval.overlap, sw_batch_size=cfg.eval.sw_batch_size,
                                       device=device, output_device="cpu")
    return out[0]  # (C_out, D, H, W)


def save_volume_prediction(out, name: str, pred, case, class_names: list[str], title: str) -> tuple[Any, dict]:
    """Write one predicted label volume: ``<name>_seg.nii.gz`` on the file's own grid (its affine and header)
    and ``<name>_slices.png`` (axial, coronal and sagittal slices of the labels over the image, as the network
    saw it). ``pred`` is ``(D, H, W)`` on the network's grid; returns it on the file's grid and the paths."""
    from pathlib import Path

    import torch.nn.functional as F

    from neuralsight.data.volumes import write_label_nifti
    from neuralsight.viz.volumes import prediction_slices

    out = Path(out)
    slices = prediction_slices(case.image[0].cpu().numpy(), pred.cpu().numpy(), class_names,
                               out / f"{name}_slices.png", title)
    if tuple(pred.shape) != tuple(case.source_shape):  # resampled: back to the file's own grid
        pred = F.interpolate(pred[None, None].float(), size=list(case.source_shape), mode="nearest")[0, 0].long()
    target = write_label_nifti(out / f"{name}_seg.nii.gz", pred.cpu().numpy(), case.source_affine, case.header)
    return pred, {"segmentation": str(target), "slices": str(slices)}


def score_cases(model, cases, cfg, device, class_names, autocast=None, surface_metrics: bool = True,
                keep_predictions: bool = False):
    """Per-case metrics (Dice, HD95 mm, volume difference mL) and, optionally, the predicted labels."""
    from neuralsight.engine.metrics import confusion_matrix, dice_per_class
    from neuralsight.engine.surface import hausdorff, volume_ml

    num_classes = len(class_names)
    rows, preds = [], {}
    for case in cases:
        pred = infer_logits(model, case.image, cfg, device, autocast).argmax(0)  # (D, H, W)
        target = case.label.long()
        dice = dice_per_class(confusion_matrix(pred, target, num_classes))  # (C,)
        row: dict[str, Any] = {"case": case.name}
        for c in range(1, num_classes):
            name = class_names[c]
            row[f"dice_{name}"] = float(dice[c])
            p, t = pred == c, target == c
            if surface_metrics:
                row[f"hd95_{name}"] = hausdorff(p, t, case.spacing, cfg.eval.percentile)
            vp, vt = volume_ml(p, case.spacing), volume_ml(t, case.spacing)
            row[f"vol_true_ml_{name}"] = vt
            row[f"vol_diff_ml_{name}"] = vp - vt
        fg = [row[f"dice_{class_names[c]}"] for c in range(1, num_classes)]
        fg = [v for v in fg if not math.isnan(v)]
        row["dice_mean"] = sum(fg) / len(fg) if fg else math.nan
        rows.append(row)
        if keep_predictions:
            preds[case.name] = pred
    return rows, preds


def summarize_rows(rows: list[dict], class_names: list[str], mean_key: str = "val_dice") -> dict:
    """Means over cases (NaN-aware) of every numeric column; ``mean_key`` (``val_dice`` when the rows are
    validation cases, ``dice`` for test cases) is the mean foreground Dice."""
    out: dict[str, float] = {}
    if not rows:
        return out
    keys = [k for k in rows[0] if k != "case"]
    for k in keys:
        vals = [r[k] for r in rows if isinstance(r.get(k), (int, float)) and not math.isnan(r[k])]
        out[k] = sum(vals) / len(vals) if vals else math.nan
    for name in class_names[1:]:
        k = f"vol_diff_ml_{name}"
        vals = [abs(r[k]) for r in rows if k in r]
        if vals:
            out[f"vol_absdiff_ml_{name}"] = sum(vals) / len(vals)
    out[mean_key] = out.pop("dice_mean", math.nan)
    return out
