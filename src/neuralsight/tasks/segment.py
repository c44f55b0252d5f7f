"""2D semantic segmentation with U-Net: Oxford-IIIT Pet, medical image/mask folders, or your own folders.

This module holds the segment task: its config, its data (decoded once into a uint8 cache by ``data/images.py``,
held on the device and augmented there), the engine adapter, the final evaluation, ``evaluate``, ``predict``
and ``explain`` (``tasks/explaining.py``) over a saved run, and its report sections. Inference and scoring live
in ``tasks/segmentation.py``, figures (Input | Training mask | Network output | Error) in ``viz/segment.py``.

Splits (``data/images.py`` ``split_segmentation``): train / val / test. Val picks the best checkpoint; test is
scored once, by that checkpoint, after training. Oxford-IIIT Pet: the official test list is test, val is carved
from trainval (stratified by breed); folders: split by group (volume, photo, radiograph). Runs written by 0.1
held out one split (the pets test list) that picked the checkpoint: they keep it, as their ``val``.
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
from neuralsight.tasks.seg_data import SegData, load_data  # noqa: F401 - SegData: the task's data, re-exported
from neuralsight.tasks.segmentation import (
    MEAN,
    STD,
    class_table,
    headline_metric,
    native_side,
    predict_arrays,
    segment_image,
    to_tensors,
    two_way_run,
)
from neuralsight.viz.palette import ERROR_KEY

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
    val_fraction: float = bounded(0.15, min=0.01, max=0.9, help="share of trainval (pets) or of the groups")
    test_fraction: float = bounded(0.15, min=0.0, max=0.9, help="share of the groups tested (pets: official list)")
    split_seed: int = 0
    max_train: int = bounded(0, min=0, help="use at most this many training images (0: all)")
    max_val: int = bounded(0, min=0, help="use at most this many validation images (0: all)")
    max_test: int = bounded(0, min=0, help="use at most this many test images (0: all)")
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
    tile: int | None = bounded(None, min=0, help="segment in windows of this many pixels at the training "
                                                 "images' pixel scale (0 or unset: the whole image at once)")
    overlap: float = bounded(0.25, min=0.0, max=0.95, help="share of a window overlapping its neighbour (tile)")


# ---- data ---------------------------------------------------------------------------------------------

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
    demo_presets = ("pets", "dental-xray")  # the lecture's cats and dogs, and its teeth on radiographs
    Config = Config
    PredictOptions, ExplainOptions = PredictOptions, SegmentExplainOptions
    splits = ("test", "val")   # the splits `evaluate` takes (see the module docstring)
    split_note = "val picks the best checkpoint; test is scored once, after training (0.1 runs: val only)"

    def build(self, cfg: Config, env, run) -> SegmentTrain:
        return SegmentTrain(cfg, load_data(cfg.data), env.device)

    def finish(self, cfg: Config, env, run, built: SegmentTrain, fits) -> Outcome:
        import torch

        from neuralsight.viz.figures import batch_grid
        from neuralsight.viz.segment import segment_figures

        data, batch = built.data, max(8, cfg.train.batch_size)
        with torch.no_grad(), env.autocast():
            val = predict_arrays(built.model, built.val_images, built.val_masks, built.num_classes, built.loss_fn,
                                 batch_size=batch)["metrics"]
            test_images, test_masks = to_tensors(data.test, env.device)
            final = predict_arrays(built.model, test_images, test_masks, built.num_classes, batch_size=batch,
                                   keep_predictions=True)
        per_image = final["meter"].per_image()["miou"]
        x, y = (t.cpu() for t in built.get_batch(torch.arange(min(16, built.train_size()))))  # augmented
        batch_grid(x.float().numpy() * STD + MEAN, run.figures / "train_batch.png", y.numpy(), built.num_classes)
        segment_figures(run.figures, data.test.images, data.test.masks, final["pred"].numpy(), data.test.stems,
                        data.class_names, per_image.numpy(), cfg.data.panel_images, "test split")
        run.write_json(INFO_FILE, {
            "class_names": data.class_names, "classes": class_table(final["meter"], data.class_names),
            "split": data.split, "scored_split": "test", "notes": data.notes,
            "background": "mIoU and mean Dice average over all classes including background (class 0); "
                          "fg_iou/fg_dice score every non-background class merged against background.",
            "per_image_miou": {s: float(v) for s, v in zip(data.test.stems, per_image.tolist(), strict=True)},
            "train_images": len(data.train), "val_images": len(data.val), "test_images": len(data.test),
            "image_size": cfg.data.image_size,
            "native_side": native_side(data.train.sizes)})  # predict --tile segments at this scale
        test = final["metrics"]
        name = headline_metric(cfg.data.dataset, built.num_classes)
        return Outcome(f"test {name}", test[name], "test", val=val, test=test,
                       extra={"data": {**data.split["sizes"], "unit": data.split["unit"], "split": data.notes}})

    def evaluate(self, saved, split: str) -> dict:
        """Metrics of the best checkpoint on ``split`` (test or val), per class and pooled."""
        import torch

        legacy = two_way_run(saved)
        if split != "val" and legacy:
            raise UserError(f"--split {split} does not apply to a segment run of 0.1: it holds out one split, "
                            "which picks the best checkpoint and so is the validation split (Oxford-IIIT Pet: the "
                            "official test list)", "use --split val, or retrain for a test split")
        names = self._class_names(saved)
        arrays = getattr(load_data(saved.cfg.data, legacy, (split,)), split)
        images, masks = to_tensors(arrays, saved.device)
        with torch.no_grad():
            out = predict_arrays(saved.model(), images, masks, len(names))
        per_class = {f"{k}_{row['class']}": row[k] for row in class_table(out["meter"], names) for k in ("iou", "dice")}
        return {**out["metrics"], **per_class, "images": len(arrays)}

    def _class_names(self, saved) -> list[str]:
        info = saved.read_json(INFO_FILE) or {}
        return info.get("class_names") or [f"class{i}" for i in range(saved.model().num_classes)]

    def predict(self, saved, inputs: list[Path], out: Path, options: PredictOptions) -> list[dict]:
        """Per image: ``<stem>_mask.png`` (palette PNG of class indices), ``<stem>_overlay.png``, each class's area."""
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
        rows, native = [], (saved.read_json(INFO_FILE) or {}).get("native_side")  # the training images' scale
        for path in expand_inputs(inputs, IMAGE_EXTS):
            try:
                if not path.is_file():
                    raise DataError(f"input {path} does not exist")
                image = open_image(path)
                label = f"segmenting {path} in {options.tile}-pixel tiles"
                with torch.no_grad(), (progress.status(label) if options.tile else contextlib.nullcontext()):
                    mask = segment_image(model, image, saved.cfg.data.image_size, saved.device, options.tile,
                                         options.overlap, native_side=native)
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
        split = "val" if two_way_run(saved) else "test"  # --index counts the test images (0.1 runs: val)
        return explain_segment(saved, inputs, out, options, self._class_names(saved),
                               held_out=lambda: (split, getattr(load_data(saved.cfg.data, split == "val", (split,)),
                                                                split)))

    def report(self, run_dir: Path) -> list[Section]:
        run_dir = Path(run_dir)
        figs, path = run_dir / "figures", run_dir / INFO_FILE
        info = json.loads(path.read_text()) if path.is_file() else {}
        out = [Section("Segmentation: the lecture panel", [
            Text(info.get("notes", ""), muted=True),
            Figure(figs / "panels.png", f"Input | Training mask | Network output | Error ({ERROR_KEY})")],
            "seg-panel")]
        rows = [[r["class"], r["iou"], r["dice"], r["pixels"], r["share"]] for r in info.get("classes", [])]
        if rows:
            out.append(Section("Per-class metrics", [
                Table(rows, ["class", "IoU", "Dice", "true pixels", "pixel share"], sortable=True),
                Text(("Scored once on the test split, by the checkpoint the validation split picked"
                      if "split" in info else f"Evaluated on the {info.get('val_name', '')}, which picked the best "
                      "checkpoint (a 0.1 run: the validation split)") + "; pixels pooled over all images. "
                     f"{info.get('background', '')} Pixel accuracy alone misleads: a net predicting only "
                     "background scores the background share.", muted=True)], "seg-classes"))
        return out + [Section("Overlay view", [Figure(figs / "overlay.png", "predicted classes over the input")],
                              "seg-overlay"),
                      Section("Best and worst images", [Figure(figs / "best_worst.png", "by per-image mIoU")],
                              "seg-bestworst")]
