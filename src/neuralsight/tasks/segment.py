"""2D semantic segmentation with U-Net: Oxford-IIIT Pet, medical image/mask folders, or your own folders.

This module holds the segment task: its config, its data (decoded once into a uint8 cache by ``data/images.py``,
held on the device and augmented there), the engine adapter, the final evaluation, ``evaluate``, ``predict`` and
``explain`` (``tasks/explaining.py``) over a saved run, and its report sections. Inference and scoring (pooled confusion matrix) live in
``tasks/segmentation.py``, figures (Input | Training mask | Network output | Error) in ``viz/segment.py``.

Splits: one trains; the held-out one picks the best checkpoint, so it is the validation split (``val``, as 0.1
called it): Oxford-IIIT Pet's official test list, or a split by group of a folder. No test split yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import TrainConfig, bounded, choice
from neuralsight.errors import ConfigError, DataError, UserError
from neuralsight.report.sections import Figure, Section, Table, Text
from neuralsight.tasks.base import Outcome, expand_inputs, failed, register_task
from neuralsight.tasks.explaining import SegmentExplainOptions, explain_segment
from neuralsight.tasks.segmentation import MEAN, STD, class_table, predict_arrays, segment_image

INFO_FILE = "segmentation.json"


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


@dataclass
class PredictOptions:
    tile: int | None = bounded(None, min=0, help="segment at native resolution in windows of this many "
                                                 "pixels (0 or unset: the whole image at the training scale)")
    overlap: float = bounded(0.25, min=0.0, max=0.95, help="share of a window overlapping its neighbour (tile)")


# ---- data ---------------------------------------------------------------------------------------------

@dataclass
class SegData:
    train: object          # data.images.SegArrays
    val: object            # data.images.SegArrays: the held-out split (see the module docstring)
    class_names: list[str]
    val_name: str          # what the held-out split is ("official test split", "validation split by group", ...)
    notes: str


def load_data(cfg: DataConfig) -> SegData:
    """Find, pair, split, decode (cached) and return both splits as uint8 arrays."""
    from neuralsight.data import catalog, images

    if cfg.dataset == "folder":
        if not cfg.data_dir:
            raise ConfigError("data.dataset = 'folder' needs a folder", "pass --data DIR holding images/ and masks/")
        root = Path(cfg.data_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"data folder {root} does not exist", "pass --data DIR holding images/ and masks/")
    else:
        root = catalog.locate(cfg.dataset, cfg.data_dir)
    if images.is_pets_layout(root) and not (root / "masks").is_dir():
        splits = images.pets_pairs(root)
        train_pairs, val_pairs = splits["trainval"], splits["test"]
        spec = images.MaskSpec("trimap" if cfg.mask_mode == "trimap" else "trimap_binary")
        names = ["background", "pet", "border"] if cfg.mask_mode == "trimap" else ["background", "pet"]
        val_name = "official test split"
        notes = (f"Oxford-IIIT Pet ({root}); train on the official trainval list ({len(train_pairs)} images), "
                 f"evaluate on the official test list ({len(val_pairs)}). Mask mode '{cfg.mask_mode}'.")
    else:
        defaults = images.DATASET_DEFAULTS.get(cfg.dataset, {})
        pattern = cfg.group_pattern or defaults.get("group_pattern", "")
        pairs = images.folder_pairs(root, pattern)
        train_pairs, val_pairs = images.split_by_group(pairs, cfg.val_fraction, cfg.split_seed)
        fmt = cfg.mask_format if cfg.mask_format != "auto" else defaults.get("mask_format", "auto")
        spec = images.MaskSpec(fmt, list(cfg.class_names or defaults.get("class_names", [])),
                               [list(c) for c in (cfg.palette or defaults.get("palette", []))])
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
    train = images.decode_pairs(train_pairs, cfg.image_size, spec, workers=2)
    val = images.decode_pairs(val_pairs, cfg.image_size, spec, workers=2)
    if not names:
        top = int(max(a.masks[a.masks != images.IGNORE].max(initial=0) for a in (train, val)))
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


# ---- training -----------------------------------------------------------------------------------------

class SegmentTrain:
    """What the training loop drives (engine/trainer.py ``TrainTask``)."""

    monitor = "miou"
    monitor_mode = "max"
    channels_last = True
    item_unit = "images"

    def __init__(self, cfg: Config, data: SegData, device):
        from neuralsight.data.augment import AugmentConfig
        from neuralsight.data.images import IGNORE
        from neuralsight.engine.losses import SegmentationLoss
        from neuralsight.models import create_model

        self.cfg, self.data, self.device = cfg, data, device
        self.num_classes = len(data.class_names)
        self.train_images, self.train_masks = to_tensors(data.train, device)
        self.val_images, self.val_masks = to_tensors(data.val, device)
        m = cfg.model
        kwargs = {"spatial_dims": 2, "in_channels": 3, "num_classes": self.num_classes, "depth": m.depth,
                  "base_channels": m.base_channels, "up": m.up, "norm": None if m.norm == "none" else m.norm,
                  "dropout": m.dropout}
        self.model, self.model_spec = create_model("unet", **kwargs).to(device), {"name": "unet", "kwargs": kwargs}
        d = cfg.data
        self.augment = AugmentConfig(d.hflip, d.vflip, d.scale, d.rotate, 0.05 if d.scale else 0.0,
                                     d.brightness, d.contrast)
        self.loss_fn = SegmentationLoss(cfg.loss.name, cfg.loss.class_weights or None, cfg.loss.dice_background,
                                        ignore_index=IGNORE)

    def train_size(self) -> int:
        return len(self.train_images)

    def get_batch(self, indices):
        import torch

        from neuralsight.data.augment import augment

        idx = indices.to(self.device)
        images = self.train_images[idx].float() / 255            # (B, 3, S, S)
        masks = self.train_masks[idx].long()                      # (B, S, S)
        images, masks = augment(images, masks, self.augment)
        images = (images - MEAN) / STD
        if self.cfg.train.channels_last and self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        return images, masks

    def training_step(self, model, batch):
        images, masks = batch
        return self.loss_fn(model(images), masks)

    def evaluate(self, model) -> dict[str, float]:
        return predict_arrays(model, self.val_images, self.val_masks, self.num_classes, self.loss_fn,
                              batch_size=max(8, self.cfg.train.batch_size))["metrics"]


# ---- the task -----------------------------------------------------------------------------------------

@register_task
class Segment:
    name = "segment"
    help = "2D U-Net semantic segmentation (Oxford-IIIT Pet, medical image/mask folders)."
    preset = "pets"
    Config = Config
    PredictOptions, ExplainOptions = PredictOptions, SegmentExplainOptions
    splits = ("val",)   # the splits `evaluate` takes (see the module docstring)
    split_note = "its held-out split (for pets the official test list) picks the checkpoint, so it is val"

    def build(self, cfg: Config, env, run) -> SegmentTrain:
        return SegmentTrain(cfg, load_data(cfg.data), env.device)

    def finish(self, cfg: Config, env, run, built: SegmentTrain, fits) -> Outcome:
        import torch

        from neuralsight.viz.figures import batch_grid
        from neuralsight.viz.segment import segment_figures

        data = built.data
        with torch.no_grad(), env.autocast():
            final = predict_arrays(built.model, built.val_images, built.val_masks, built.num_classes, built.loss_fn,
                                   batch_size=max(8, cfg.train.batch_size), keep_predictions=True)
        per_image = final["meter"].per_image()["miou"]
        x, y = (t.cpu() for t in built.get_batch(torch.arange(min(16, built.train_size()))))  # augmented
        batch_grid(x.float().numpy() * STD + MEAN, run.figures / "train_batch.png", y.numpy(), built.num_classes)
        segment_figures(run.figures, data.val.images, data.val.masks, final["pred"].numpy(), data.val.stems,
                        data.class_names, per_image.numpy(), cfg.data.panel_images, data.val_name)
        run.write_json(INFO_FILE, {
            "class_names": data.class_names, "classes": class_table(final["meter"], data.class_names),
            "val_name": data.val_name, "notes": data.notes,
            "background": "mIoU and mean Dice average over all classes including background (class 0); "
                          "fg_iou/fg_dice score every non-background class merged against background.",
            "per_image_miou": {s: float(v) for s, v in zip(data.val.stems, per_image.tolist(), strict=True)},
            "train_images": len(data.train), "val_images": len(data.val), "image_size": cfg.data.image_size})
        metrics = final["metrics"]
        # Pets are scored like smp (pet + border against background); that fact belongs in the catalog entry.
        name = "fg_iou" if cfg.data.dataset == "oxford-pets" else "miou" if built.num_classes > 2 else "fg_dice"
        return Outcome(f"val {name}", metrics[name], "val", val=metrics,
                       extra={"data": {"train": len(data.train), "val": len(data.val), "val_name": data.val_name}})

    def evaluate(self, saved, split: str) -> dict:
        """Metrics of the best checkpoint on the held-out (validation) split, per class and pooled."""
        import torch

        if split != "val":
            raise UserError(f"--split {split} does not apply to a segment run: it holds out one split, which picks "
                            "the best checkpoint and so is the validation split (Oxford-IIIT Pet: the official "
                            "test list)", "use --split val")
        names = self._class_names(saved)
        data = load_data(saved.cfg.data)
        images, masks = to_tensors(data.val, saved.device)
        with torch.no_grad():
            out = predict_arrays(saved.model(), images, masks, len(names))
        per_class = {f"{k}_{row['class']}": row[k] for row in class_table(out["meter"], names) for k in ("iou", "dice")}
        return {**out["metrics"], **per_class, "images": len(data.val)}

    def _class_names(self, saved) -> list[str]:
        info = saved.read_json(INFO_FILE) or {}
        return info.get("class_names") or [f"class{i}" for i in range(saved.model().num_classes)]

    def predict(self, saved, inputs: list[Path], out: Path, options: PredictOptions) -> list[dict]:
        """Per image: ``<stem>_mask.png`` (class indices), ``<stem>_overlay.png`` and the area of each class."""
        import contextlib

        import numpy as np
        import torch

        from neuralsight.data.images import IMAGE_EXTS, open_image
        from neuralsight.engine import progress
        from neuralsight.io import atomic_write_json
        from neuralsight.viz.segment import write_mask_pngs

        if not inputs:
            raise UserError("no input images given", "usage: neuralsight predict RUN IMAGE [IMAGE ...]")
        names, model, out = self._class_names(saved), saved.model(), Path(out)
        rows = []
        for path in expand_inputs(inputs, IMAGE_EXTS):
            try:
                if not path.is_file():
                    raise DataError(f"input {path} does not exist")
                image = open_image(path)
                label = f"segmenting {path} in {options.tile}-pixel tiles"
                with torch.no_grad(), (progress.status(label) if options.tile else contextlib.nullcontext()):
                    mask = segment_image(model, image, saved.cfg.data.image_size, saved.device, options.tile,
                                         options.overlap)
            except DataError as err:
                rows.append(failed(path, err))
                continue
            outputs = write_mask_pngs(out, path.stem, image, mask, len(names))
            counts = np.bincount(mask.ravel(), minlength=len(names))
            rows.append({"input": str(path), "size": [int(image.shape[1]), int(image.shape[0])],
                         "areas": {n: {"pixels": int(counts[i]), "fraction": float(counts[i] / mask.size)}
                                   for i, n in enumerate(names)},
                         "outputs": {k: str(v) for k, v in outputs.items()}})
        good = [r for r in rows if "error" not in r]
        if good:  # the file 0.1 wrote: one record per image, output paths at the top level
            atomic_write_json(out / "predictions.json", [{"input": r["input"], "size": r["size"], **r["outputs"],
                                                          "areas": r["areas"]} for r in good])
        return rows

    def explain(self, saved, inputs: list[Path], out: Path, options: SegmentExplainOptions) -> list[Path]:
        """Grad-CAM and integrated gradients of a class region, the U-Net's feature maps (tasks/explaining.py)."""
        return explain_segment(saved, inputs, out, options, self._class_names(saved),
                               held_out=lambda: load_data(saved.cfg.data).val)

    def report(self, run_dir: Path) -> list[Section]:
        run_dir = Path(run_dir)
        figs, path = run_dir / "figures", run_dir / INFO_FILE
        info = json.loads(path.read_text()) if path.is_file() else {}
        out = [Section("Segmentation: the lecture panel", [
            Text(info.get("notes", ""), muted=True),
            Figure(figs / "panels.png", "Input | Training mask | Network output | Error (red = wrong pixel)")],
            "seg-panel")]
        rows = [[r["class"], r["iou"], r["dice"], r["pixels"], r["share"]] for r in info.get("classes", [])]
        if rows:
            out.append(Section("Per-class metrics", [
                Table(rows, ["class", "IoU", "Dice", "true pixels", "pixel share"], sortable=True),
                Text(f"Evaluated on the {info.get('val_name', '')}, which picks the best checkpoint (the validation "
                     "split); pixels pooled over all images (dataset level). "
                     f"{info.get('background', '')} Pixel accuracy alone misleads: a net predicting only "
                     "background scores the background share.", muted=True)], "seg-classes"))
        return out + [Section("Overlay view", [Figure(figs / "overlay.png", "predicted classes over the input")],
                              "seg-overlay"),
                      Section("Best and worst images", [Figure(figs / "best_worst.png", "by per-image mIoU")],
                              "seg-bestworst")]
