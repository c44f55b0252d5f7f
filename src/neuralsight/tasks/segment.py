"""2D semantic segmentation with U-Net: Oxford-IIIT Pet, medical image/mask folders, or your own folders.

Data are decoded once into a uint8 cache (``data/images.py``), held as tensors on the device and augmented
there (``data/augment.py``). The model is ``models/unet.py``; the loss is CE, Dice or CE+Dice
(``engine/losses.py``); metrics come from a confusion matrix (``engine/metrics.py``). Figures follow the
lecture: Input | Training mask | Network output | Error.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import TrainConfig, bounded, choice
from neuralsight.errors import ConfigError, DataError, UserError

PRESET = "pets"
# Class colours for overlays and masks: background transparent/black, then distinct hues.
COLOURS = [(0, 0, 0), (255, 140, 0), (30, 144, 255), (220, 20, 60), (50, 205, 50), (186, 85, 211),
           (255, 215, 0), (0, 206, 209), (255, 105, 180), (139, 69, 19)]
MEAN, STD = 0.5, 0.25  # fixed intensity normalisation of [0, 1] images


@dataclass
class DataConfig:
    dataset: str = "oxford-pets"
    data_dir: str | None = None
    image_size: int = bounded(128, min=16, max=2048, help="training size: longer side resized to this, padded square")
    mask_mode: str = choice("trimap", ("trimap", "binary"), help="Oxford-IIIT Pet: 3 trimap classes or pet vs background")
    mask_format: str = choice("auto", ("auto", "binary", "index", "palette"), help="image/mask folders")
    class_names: list[str] = field(default_factory=list)
    palette: list[list[int]] = field(default_factory=list)
    group_pattern: str = bounded("", help="regex; its first group is the source id kept on one side of the split")
    val_fraction: float = bounded(0.15, min=0.01, max=0.9)
    split_seed: int = 0
    max_train: int = bounded(0, min=0, help="use at most this many training images (0: all)")
    max_val: int = bounded(0, min=0, help="use at most this many validation images (0: all)")
    hflip: float = bounded(0.5, min=0, max=1)
    vflip: float = bounded(0.0, min=0, max=1)
    scale: float = bounded(0.25, min=0, max=0.9)
    rotate: float = bounded(10.0, min=0, max=180)
    brightness: float = bounded(0.15, min=0, max=1)
    contrast: float = bounded(0.15, min=0, max=1)
    panel_images: int = bounded(6, min=1, max=32)


@dataclass
class ModelConfig:
    depth: int = bounded(4, min=1, max=7)
    base_channels: int = bounded(32, min=1, max=256)
    up: str = choice("transpose", ("transpose", "bilinear"))
    norm: str = choice("batch", ("batch", "instance", "group", "none"))
    dropout: float = bounded(0.0, min=0, max=0.9)


@dataclass
class LossConfig:
    name: str = choice("dice_ce", ("ce", "dice", "dice_ce"))
    class_weights: list[float] = field(default_factory=list)
    dice_background: bool = True


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=30, batch_size=16, lr=2e-3,
                                                                   weight_decay=1e-4))

    def check(self) -> None:
        if self.loss.class_weights and self.data.class_names and \
                len(self.loss.class_weights) != len(self.data.class_names):
            raise ConfigError(f"loss.class_weights has {len(self.loss.class_weights)} entries but data.class_names "
                              f"has {len(self.data.class_names)}", "give one weight per class")
        if self.data.palette and self.data.class_names and len(self.data.palette) != len(self.data.class_names):
            raise ConfigError(f"data.palette has {len(self.data.palette)} colours but data.class_names has "
                              f"{len(self.data.class_names)} names", "give one [r, g, b] per class")


# ----------------------------------------------------------------------------------------------- data
@dataclass
class SegData:
    train: object          # SegArrays
    val: object            # SegArrays
    class_names: list[str]
    val_name: str          # what the validation split is ("test split", "validation (by volume)", ...)
    notes: str


def mask_spec(cfg: DataConfig):
    from neuralsight.data.images import DATASET_DEFAULTS, MaskSpec

    defaults = DATASET_DEFAULTS.get(cfg.dataset, {})
    fmt = cfg.mask_format if cfg.mask_format != "auto" else defaults.get("mask_format", "auto")
    return MaskSpec(fmt, list(cfg.class_names or defaults.get("class_names", [])),
                    [list(c) for c in (cfg.palette or defaults.get("palette", []))])


def load_data(cfg: DataConfig) -> SegData:
    """Find, pair, split, decode (cached) and return both splits as uint8 arrays."""
    from neuralsight.data import catalog
    from neuralsight.data import images as I

    if cfg.dataset == "folder":
        if not cfg.data_dir:
            raise ConfigError("data.dataset = 'folder' needs a folder", "pass --data DIR holding images/ and masks/")
        root = Path(cfg.data_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"data folder {root} does not exist", "pass --data DIR holding images/ and masks/")
    else:
        root = catalog.locate(cfg.dataset, cfg.data_dir)
    size = cfg.image_size
    if I.is_pets_layout(root) and not (root / "masks").is_dir():
        splits = I.pets_pairs(root)
        train_pairs, val_pairs = splits["trainval"], splits["test"]
        spec = I.MaskSpec("trimap" if cfg.mask_mode == "trimap" else "trimap_binary")
        names = ["background", "pet", "border"] if cfg.mask_mode == "trimap" else ["background", "pet"]
        val_name = "official test split"
        notes = (f"Oxford-IIIT Pet ({root}); train on the official trainval list ({len(train_pairs)} images), "
                 f"evaluate on the official test list ({len(val_pairs)}). Mask mode '{cfg.mask_mode}'.")
    else:
        from neuralsight.data.images import DATASET_DEFAULTS

        pattern = cfg.group_pattern or DATASET_DEFAULTS.get(cfg.dataset, {}).get("group_pattern", "")
        pairs = I.folder_pairs(root, pattern)
        train_pairs, val_pairs = I.split_by_group(pairs, cfg.val_fraction, cfg.split_seed)
        spec = mask_spec(cfg)
        names = spec.class_names
        groups = len({p.group for p in pairs})
        val_name = "validation split by group" if pattern else "validation split by file"
        notes = (f"{root}: {len(pairs)} image/mask pairs in {groups} groups"
                 + (f" (group = first match of '{pattern}' in the file name)" if pattern else "")
                 + f"; {len(train_pairs)} train / {len(val_pairs)} validation, no group on both sides.")
    if cfg.max_train:
        train_pairs = _spread(train_pairs, cfg.max_train)
    if cfg.max_val:
        val_pairs = _spread(val_pairs, cfg.max_val)
    train = I.decode_pairs(train_pairs, size, spec, workers=2)
    val = I.decode_pairs(val_pairs, size, spec, workers=2)
    if not names:
        top = int(max(train.masks[train.masks != I.IGNORE].max(initial=0), val.masks[val.masks != I.IGNORE].max(initial=0)))
        names = ["background"] + [f"class{i}" for i in range(1, max(top, 1) + 1)]
    return SegData(train, val, list(names), val_name, notes)


def _spread(items: list, n: int) -> list:
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


def normalize(images_uint8):
    return (images_uint8.float() / 255 - MEAN) / STD


def build_model(cfg: Config, num_classes: int):
    from neuralsight.models import create_model

    kwargs = {"spatial_dims": 2, "in_channels": 3, "num_classes": num_classes, "depth": cfg.model.depth,
              "base_channels": cfg.model.base_channels, "up": cfg.model.up,
              "norm": None if cfg.model.norm == "none" else cfg.model.norm, "dropout": cfg.model.dropout}
    return create_model("unet", **kwargs), {"name": "unet", "kwargs": kwargs}


# ----------------------------------------------------------------------------------------------- task
class SegmentTask:
    """The object the training loop drives (see ``engine.trainer.TrainTask``)."""

    monitor = "miou"
    monitor_mode = "max"
    channels_last = True

    def __init__(self, cfg: Config, data: SegData, env):
        from neuralsight.data.augment import AugmentConfig
        from neuralsight.engine.losses import SegmentationLoss

        self.cfg, self.data, self.env = cfg, data, env
        self.device = env.device
        self.num_classes = len(data.class_names)
        self.train_images, self.train_masks = to_tensors(data.train, env.device)
        self.val_images, self.val_masks = to_tensors(data.val, env.device)
        self.model, self.model_spec = build_model(cfg, self.num_classes)
        self.model.to(env.device)
        d = cfg.data
        self.augment = AugmentConfig(d.hflip, d.vflip, d.scale, d.rotate, 0.05 if d.scale else 0.0,
                                     d.brightness, d.contrast)
        weights = cfg.loss.class_weights or None
        from neuralsight.data.images import IGNORE

        self.loss_fn = SegmentationLoss(cfg.loss.name, weights, cfg.loss.dice_background, ignore_index=IGNORE)

    def train_size(self) -> int:
        return len(self.train_images)

    def get_batch(self, indices):
        from neuralsight.data.augment import augment

        idx = indices.to(self.device)
        images = self.train_images[idx].float() / 255            # (B, 3, S, S)
        masks = self.train_masks[idx].long()                      # (B, S, S)
        images, masks = augment(images, masks, self.augment)
        images = (images - MEAN) / STD
        if self.cfg.train.channels_last and self.device.type == "cuda":
            import torch

            images = images.contiguous(memory_format=torch.channels_last)
        return images, masks

    def training_step(self, model, batch):
        images, masks = batch
        return self.loss_fn(model(images), masks)

    def evaluate(self, model) -> dict[str, float]:
        out = predict_arrays(model, self.val_images, self.val_masks, self.num_classes, self.loss_fn,
                             batch_size=max(8, self.cfg.train.batch_size))
        return out["metrics"]


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
    out = {"miou": metrics["miou"], "mdice": metrics["mdice"], "pixel_acc": metrics["pixel_acc"],
           "miou_per_image": metrics["miou_per_image"]}
    fg = merged.compute() if merged is not None else metrics
    out["fg_iou"], out["fg_dice"] = fg["iou_1"], fg["dice_1"]
    if loss_fn is not None:
        out["val_loss"] = total_loss / max(1, len(images))
    return {"metrics": out, "meter": meter, "pred": torch.cat(preds) if preds else None}


# ----------------------------------------------------------------------------------------------- train
def train(cfg: Config, env, run, resume: bool = False) -> dict:
    import torch

    from neuralsight import runner
    from neuralsight.config import to_dict
    from neuralsight.engine import checkpoint as ckpt
    from neuralsight.engine.trainer import fit

    data = load_data(cfg.data)
    task = SegmentTask(cfg, data, env)
    result = fit(task, env, cfg.train, run, to_dict(cfg), resume=resume)
    ckpt.load_weights(task.model, run.checkpoints, "best", device=env.device)
    model = task.model.eval()
    with torch.no_grad(), env.autocast():
        final = predict_arrays(model, task.val_images, task.val_masks, task.num_classes, task.loss_fn,
                               batch_size=max(8, cfg.train.batch_size), keep_predictions=True)
    metrics = final["metrics"]
    table = class_table(final["meter"], data.class_names)
    per_image = final["meter"].per_image()["miou"]
    if run.writer:
        write_figures(run.figures, data, final["pred"], per_image, cfg.data.panel_images)
        run.write_json("segmentation.json", {
            "class_names": data.class_names, "classes": table, "val_name": data.val_name, "notes": data.notes,
            "background": "mIoU and mean Dice average over all classes including background (class 0); "
                          "fg_iou/fg_dice score every non-background class merged against background.",
            "per_image_miou": {s: float(v) for s, v in zip(data.val.stems, per_image.tolist(), strict=True)},
            "train_images": len(data.train), "val_images": len(data.val), "image_size": cfg.data.image_size})
    headline = ("fg_iou", metrics["fg_iou"]) if cfg.data.dataset == "oxford-pets" else \
        ("miou", metrics["miou"]) if task.num_classes > 2 else ("fg_dice", metrics["fg_dice"])
    return {"headline": {"name": f"val {headline[0]}", "value": headline[1]}, "metrics": metrics,
            "fit": runner.fit_summary(result), "interrupted": result.interrupted,
            "data": {"train": len(data.train), "val": len(data.val), "val_name": data.val_name}}


def class_table(meter, class_names: list[str]) -> list[dict]:
    from neuralsight.engine.metrics import dice_per_class, iou_per_class

    iou, dice = iou_per_class(meter.total), dice_per_class(meter.total)
    counts = meter.total.sum(1)
    total = max(1, int(counts.sum()))
    return [{"class": n, "iou": float(iou[i]), "dice": float(dice[i]), "pixels": int(counts[i]),
             "share": int(counts[i]) / total} for i, n in enumerate(class_names)]


# ----------------------------------------------------------------------------------------------- figures
def colourize(mask, num_classes: int):
    """Class indices ``(H, W)`` -> RGB uint8 ``(H, W, 3)``; ignored pixels grey."""
    import numpy as np

    lut = np.zeros((256, 3), dtype=np.uint8)
    for i in range(num_classes):
        lut[i] = COLOURS[i % len(COLOURS)] if i else (40, 40, 40)
    lut[255] = (128, 128, 128)
    return lut[np.asarray(mask)]


def overlay(image, mask, num_classes: int, alpha: float = 0.45):
    """Blend class colours over an RGB uint8 image; background stays untouched."""
    import numpy as np

    col = colourize(mask, num_classes).astype(np.float32)
    fg = (np.asarray(mask) > 0) & (np.asarray(mask) < 255)
    out = image.astype(np.float32)
    out[fg] = (1 - alpha) * out[fg] + alpha * col[fg]
    return out.clip(0, 255).astype(np.uint8)


def _valid_box(mask):
    """Crop of the non-padded region (padding is IGNORE at the bottom/right)."""
    import numpy as np

    valid = np.asarray(mask) != 255
    rows, cols = np.nonzero(valid.any(1))[0], np.nonzero(valid.any(0))[0]
    if len(rows) == 0:
        return slice(None), slice(None)
    return slice(0, rows[-1] + 1), slice(0, cols[-1] + 1)


def write_figures(folder: Path, data: SegData, pred, per_image, n_panels: int) -> list[Path]:
    """The lecture panel, overlay view, and best/worst images, as PNGs in ``folder``."""
    import numpy as np

    from neuralsight.viz.figures import plt, save

    p = plt()
    val, c = data.val, len(data.class_names)
    pred = pred.numpy()
    n = min(n_panels, len(val))
    picks = np.linspace(0, len(val) - 1, n).round().astype(int) if n else []
    written = []

    def row(axes, i, title_suffix=""):
        rs, cs = _valid_box(val.masks[i])
        img, gt, pr = val.images[i][rs, cs], val.masks[i][rs, cs], pred[i][rs, cs]
        err = (pr != gt) & (gt != 255)
        panels = [(img, "Input"), (colourize(gt, c), "Training mask"), (colourize(pr, c), "Network output"),
                  (np.where(err[..., None], np.array([230, 30, 30], np.uint8), (img * 0.35).astype(np.uint8)),
                   f"Error ({err.mean() * 100:.1f}% px)")]
        for ax, (im, t) in zip(axes, panels, strict=True):
            ax.imshow(im)
            ax.set_title(t + (title_suffix if t == "Input" else ""), fontsize=8)
            ax.axis("off")

    fig, axes = p.subplots(n, 4, figsize=(9, 2.3 * n), squeeze=False)
    for r, i in enumerate(picks):
        row(axes[r], i, f" {val.stems[i]}")
    fig.suptitle(f"{data.val_name}: Input | Training mask | Network output | Error", fontsize=10)
    written.append(save(fig, folder / "panels.png"))

    cols = min(4, max(1, n))
    rows_n = (n + cols - 1) // cols
    fig, axes = p.subplots(rows_n, cols, figsize=(2.6 * cols, 2.6 * rows_n), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, i in enumerate(picks):
        rs, cs = _valid_box(val.masks[i])
        axes.ravel()[k].imshow(overlay(val.images[i][rs, cs], pred[i][rs, cs], c))
        axes.ravel()[k].set_title(val.stems[i], fontsize=8)
    handles = [p.Rectangle((0, 0), 1, 1, color=np.array(COLOURS[j % len(COLOURS)]) / 255)
               for j in range(1, c)]
    fig.legend(handles, data.class_names[1:], loc="lower center", ncol=max(1, c - 1), fontsize=8)
    written.append(save(fig, folder / "overlay.png"))

    scores = np.nan_to_num(np.asarray(per_image, dtype=float), nan=-1)
    order = np.argsort(scores)
    k = min(3, len(order) // 2) or min(1, len(order))
    chosen = [(i, "best") for i in order[::-1][:k]] + [(i, "worst") for i in order[:k]]
    fig, axes = p.subplots(len(chosen), 4, figsize=(9, 2.3 * len(chosen)), squeeze=False)
    for r, (i, tag) in enumerate(chosen):
        row(axes[r], i, f" [{tag}, mIoU {scores[i]:.2f}]")
    fig.suptitle("best and worst validation images by per-image mIoU", fontsize=10)
    written.append(save(fig, folder / "best_worst.png"))
    return written


def report_sections(run_dir: Path) -> list:
    from neuralsight.report.html import Section, esc, figure, table

    run_dir = Path(run_dir)
    fig = run_dir / "figures"
    info_path = run_dir / "segmentation.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    out = [Section("Segmentation: the lecture panel",
                   f"<p class=\"muted\">{esc(info.get('notes', ''))}</p>"
                   + figure(fig / "panels.png", "Input | Training mask | Network output | Error (red = wrong pixel)"),
                   "seg-panel")]
    rows = [[r["class"], r["iou"], r["dice"], r["pixels"], r["share"]] for r in info.get("classes", [])]
    if rows:
        out.append(Section("Per-class metrics",
                           table(rows, ["class", "IoU", "Dice", "true pixels", "pixel share"], sortable=True)
                           + f"<p class=\"muted\">Evaluated on the {esc(info.get('val_name', ''))}, pixels pooled "
                             f"over all images (dataset level). {esc(info.get('background', ''))} Pixel accuracy "
                             "alone misleads: a net predicting only background scores the background share.</p>",
                           "seg-classes"))
    out.append(Section("Overlay view", figure(fig / "overlay.png", "predicted classes over the input"), "seg-overlay"))
    out.append(Section("Best and worst images", figure(fig / "best_worst.png", "by per-image mIoU"), "seg-bestworst"))
    return out


# ----------------------------------------------------------------------------------------------- saved runs
def load_run(run_dir: Path, device: str = "auto"):
    """Config, model (best weights, eval mode) and device of a saved segment run."""
    from neuralsight import config as C
    from neuralsight.engine import checkpoint as ckpt
    from neuralsight.engine.device import resolve_device
    from neuralsight.models import create_model

    run_dir = Path(run_dir)
    data = C.load_toml(run_dir / "config.toml")
    data.pop("task", None)
    cfg = C.from_dict(Config, data)
    state = ckpt.read_state(run_dir / "checkpoints", "best")
    dev = resolve_device(device)
    model = create_model(state["model"]["name"], **state["model"]["kwargs"])
    ckpt.load_weights(model, run_dir / "checkpoints", "best", device=dev)
    info_path = run_dir / "segmentation.json"
    names = json.loads(info_path.read_text())["class_names"] if info_path.is_file() else \
        [f"class{i}" for i in range(model.num_classes)]
    return cfg, model.to(dev).eval(), dev, names


def evaluate(run_dir: Path, opts: dict) -> dict:
    """Metrics of the best checkpoint on the run's held-out split (pets: the official test list)."""
    import torch

    cfg, model, dev, names = load_run(run_dir, opts.get("device") or "auto")
    if opts.get("data_dir"):
        cfg.data.data_dir = str(opts["data_dir"])
    data = load_data(cfg.data)
    images, masks = to_tensors(data.val, dev)
    with torch.no_grad():
        out = predict_arrays(model, images, masks, len(names))
    metrics = dict(out["metrics"])
    for row in class_table(out["meter"], names):
        metrics[f"iou_{row['class']}"] = row["iou"]
        metrics[f"dice_{row['class']}"] = row["dice"]
    metrics["images"] = len(data.val)
    return metrics


def _expand_inputs(inputs: list[Path]) -> list[Path]:
    from neuralsight.data.images import IMAGE_EXTS

    files = []
    for p in inputs:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS))
        else:
            files.append(p)
    return files


def segment_image(model, image, image_size: int, num_classes: int, device, tile: int | None = None,
                  overlap: float = 0.25, sw_batch_size: int = 4):
    """Class-index mask ``(H, W)`` uint8 for an RGB uint8 image ``(H, W, 3)`` at its own size.

    Without ``tile`` the image is resized like the training data (longer side = ``image_size``), segmented
    in one pass, and the logits resized back. With ``tile`` the image is segmented at its native resolution
    by sliding windows of ``tile`` pixels (bounded memory: one batch of windows on the device, the
    accumulator on the CPU), as for a large X-ray whose detail would be lost by shrinking.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from neuralsight.data.images import fit_size
    from neuralsight.engine.sliding import sliding_window_inference

    h, w = image.shape[:2]
    x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).unsqueeze(0)          # (1, 3, H, W) uint8
    if tile:
        def predictor(windows):
            return model(normalize(windows))

        logits = sliding_window_inference(x, (tile, tile), predictor, overlap=overlap,
                                          sw_batch_size=sw_batch_size, device=device, output_device="cpu")
        return logits[0].argmax(0).to(torch.uint8).numpy()                                   # (H, W)
    fh, fw = fit_size(h, w, image_size)
    small = F.interpolate(x.float(), size=(fh, fw), mode="bilinear", antialias=True, align_corners=False)
    logits = model(((small / 255 - MEAN) / STD).to(device)).float().cpu()                    # (1, C, fh, fw)
    logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)       # (1, C, H, W)
    return logits[0].argmax(0).to(torch.uint8).numpy()


def predict(run_dir: Path, inputs: list[Path], opts: dict) -> int:
    """Write ``<stem>_mask.png`` (class indices), ``<stem>_overlay.png`` and per-class areas per input.

    Corrupt or unreadable files are reported one by one; the others are still processed. Returns 1 if
    any input failed, else 0.
    """
    import numpy as np
    import torch
    from PIL import Image

    from neuralsight.data.images import open_image
    from neuralsight.io import atomic_path, atomic_write_json

    if not inputs:
        raise UserError("no input images given", "usage: neuralsight predict RUN IMAGE [IMAGE ...]")
    cfg, model, dev, names = load_run(run_dir, opts.get("device") or "auto")
    out_dir = Path(opts.get("out") or Path(run_dir) / "predictions")
    tile = opts.get("tile")
    overlap = float(opts.get("overlap", 0.25))
    results, failed = [], 0
    for path in _expand_inputs(inputs):
        try:
            if not path.is_file():
                raise DataError(f"input {path} does not exist")
            image = open_image(path)
            with torch.no_grad():
                mask = segment_image(model, image, cfg.data.image_size, len(names), dev, tile, overlap)
        except DataError as err:
            failed += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        with atomic_path(out_dir / f"{path.stem}_mask.png") as tmp:
            Image.fromarray(mask, mode="L").save(tmp, format="PNG")
        with atomic_path(out_dir / f"{path.stem}_overlay.png") as tmp:
            Image.fromarray(overlay(image, mask, len(names))).save(tmp, format="PNG")
        counts = np.bincount(mask.ravel(), minlength=len(names))
        areas = {n: {"pixels": int(counts[i]), "fraction": float(counts[i] / mask.size)} for i, n in enumerate(names)}
        results.append({"input": str(path), "size": [int(image.shape[1]), int(image.shape[0])],
                        "mask": str(out_dir / f"{path.stem}_mask.png"),
                        "overlay": str(out_dir / f"{path.stem}_overlay.png"), "areas": areas})
    if results:
        atomic_write_json(out_dir / "predictions.json", results)
    if opts.get("json"):
        print(json.dumps({"results": results, "failed": failed}, indent=2))
    else:
        for r in results:
            parts = ", ".join(f"{n} {a['fraction'] * 100:.1f}%" for n, a in r["areas"].items())
            print(f"{r['input']} ({r['size'][0]}x{r['size'][1]}): {parts} -> {r['mask']}")
    if failed:
        print(f"{failed} of {failed + len(results)} inputs failed", file=sys.stderr)
    return 1 if failed else 0
