"""3D segmentation of NIfTI volumes with V-Net (or a 3D U-Net): MSD hippocampus by default.

This module holds the segment3d task: its config, its data (every case read once by ``data/volumes.py``,
normalised and kept in memory; training draws foreground-biased patches on the device and augments them there),
the engine adapter (multi-class soft Dice or CE + Dice), the final evaluation, ``evaluate``, ``predict`` and
``explain`` (``tasks/explaining.py``) over a saved run, and its report sections. Sliding-window inference and the
per-case scores (Dice, HD95 in mm, volume difference in mL) live in ``tasks/segmentation.py``; the figures
(orthogonal slices, the Input | Training mask | Output | Error panel, the worst cases) in ``viz/volumes.py``.

Splits (``data/volumes.py`` ``split_cases``): train / val / test by case. Val picks the best checkpoint; test is
scored once, by that checkpoint, after training. Runs written by 0.1 held out one split of cases that picked
the checkpoint: they keep it, as their ``val``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import TrainConfig, bounded, choice
from neuralsight.errors import ConfigError, DataError, UserError
from neuralsight.report.sections import Figure, Section, Table, Text
from neuralsight.tasks.base import Outcome, expand_inputs, failed, register_task
from neuralsight.tasks.explaining import SegmentExplainOptions, explain_segment3d
from neuralsight.tasks.seg_data import load_split, volume_options
from neuralsight.tasks.segmentation import (
    infer_logits,
    save_volume_prediction,
    score_cases,
    summarize_rows,
    two_way_run,
)
from neuralsight.viz.palette import ERROR_KEY

CASES_FILE = "samples/cases.json"


@dataclass
class DataConfig:
    dataset: str = field(default="msd-hippocampus", metadata={"help": "catalog name, or 'folder' with --data"})
    data_dir: str | None = None
    val_fraction: float = bounded(0.15, min=0.0, max=0.9, help="fraction of cases that validate (by case)")
    test_fraction: float = bounded(0.15, min=0.0, max=0.9, help="fraction of cases tested once, at the end")
    split_seed: int = 0
    limit: int = bounded(0, min=0, help="use only the first N cases (0: all)")
    class_names: list[str] = field(default_factory=list)
    normalize: str = choice("zscore", ("zscore", "window", "none"), help="per-volume z-score or CT window")
    window: list[float] = field(default_factory=list)
    target_spacing: list[float] = field(default_factory=list)
    patch_size: list[int] = field(default_factory=lambda: [32, 48, 32])
    foreground_ratio: float = bounded(0.33, min=0.0, max=1.0)
    patches_per_case: int = bounded(1, min=1, help="training items per case and epoch")
    flip_prob: float = bounded(0.5, min=0.0, max=1.0)
    flip_axes: list[int] = field(default_factory=lambda: [0, 1, 2])
    spatial_prob: float = bounded(0.2, min=0.0, max=1.0)
    rotate: float = bounded(15.0, min=0.0, max=45.0, help="max rotation in degrees about each axis")
    scale: float = bounded(0.15, min=0.0, max=0.5)
    intensity_prob: float = bounded(0.5, min=0.0, max=1.0)
    intensity_shift: float = bounded(0.1, min=0.0)
    intensity_scale: float = bounded(0.1, min=0.0)


@dataclass
class ModelConfig:
    name: str = choice("vnet", ("vnet", "unet3d"))
    base_channels: int = bounded(16, min=1)
    depth: int = bounded(3, min=1, max=6)
    kernel_size: int = bounded(5, min=1, max=7, help="V-Net stage convolutions (paper: 5)")
    norm: str = choice("batch", ("batch", "instance", "group", "none"))
    dropout: float = bounded(0.0, min=0.0, max=0.9)
    loss: str = choice("dice_ce", ("dice", "dice_ce"))


@dataclass
class EvalConfig:
    roi_size: list[int] = field(default_factory=list)  # sliding window; empty: the patch size
    overlap: float = bounded(0.5, min=0.0, max=0.95)
    sw_batch_size: int = bounded(4, min=1)
    max_cases: int = bounded(0, min=0, help="validation cases scored during training (0: all)")
    percentile: float = bounded(95.0, min=50.0, max=100.0)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=40, batch_size=4, lr=3e-3,
                                                                   weight_decay=1e-4, channels_last=False))

    def check(self) -> None:
        if len(self.data.patch_size) != 3 or min(self.data.patch_size) < 1:
            raise ConfigError(f"data.patch_size = {self.data.patch_size} must be 3 positive sizes, e.g. [32, 48, 32]")
        m = 2**self.model.depth
        if any(p % m for p in self.data.patch_size):
            raise ConfigError(f"data.patch_size = {self.data.patch_size} must be multiples of 2**model.depth = {m}",
                              f"e.g. {[max(m, round(p / m) * m) for p in self.data.patch_size]}")
        if self.eval.roi_size and len(self.eval.roi_size) != 3:
            raise ConfigError(f"eval.roi_size = {self.eval.roi_size} must be 3 sizes or empty")
        if self.data.normalize == "window" and (len(self.data.window) != 2 or self.data.window[1] <= self.data.window[0]):
            raise ConfigError(f"data.window = {self.data.window} must be [low, high] with high > low "
                              "when data.normalize = 'window'", 'e.g. --set data.window="[-100, 300]"')
        if self.data.target_spacing and (len(self.data.target_spacing) != 3 or min(self.data.target_spacing) <= 0):
            raise ConfigError(f"data.target_spacing = {self.data.target_spacing} must be 3 positive sizes in mm")
        if any(a not in (0, 1, 2) for a in self.data.flip_axes):
            raise ConfigError(f"data.flip_axes = {self.data.flip_axes} may only hold 0, 1, 2")
        if self.model.name == "vnet" and self.model.kernel_size % 2 == 0:
            raise ConfigError(f"model.kernel_size = {self.model.kernel_size} must be odd")


# ---- data ---------------------------------------------------------------------------------------------

def build_model(cfg: Config, in_channels: int, num_classes: int):
    from neuralsight.models import create_model, model_spec

    m = cfg.model
    if m.name == "vnet":
        name, kwargs = "vnet", {"in_channels": in_channels, "num_classes": num_classes,
                                "base_channels": m.base_channels, "depth": m.depth, "kernel_size": m.kernel_size,
                                "norm": m.norm, "dropout": m.dropout}
    else:
        name, kwargs = "unet", {"spatial_dims": 3, "in_channels": in_channels, "num_classes": num_classes,
                                "depth": m.depth, "base_channels": m.base_channels,
                                "norm": None if m.norm == "none" else m.norm, "dropout": m.dropout}
    return create_model(name, **kwargs), model_spec(name, **kwargs)


# ---- training -----------------------------------------------------------------------------------------

class Segment3DTrain:
    """What the training loop drives: patches from in-memory volumes, a loss, validation by case."""

    monitor = "val_dice"
    monitor_mode = "max"
    channels_last = False  # 5-D tensors: torch's channels_last is 4-D only
    item_unit = "patches"

    def __init__(self, cfg: Config, device, train_cases, val_cases, class_names, folder: Path | None = None,
                 load_seconds: float = 0.0, test_cases=()):
        from neuralsight.data.volumes import Augment, PatchSampler
        from neuralsight.engine.losses import SegmentationLoss

        self.cfg, self.device, self.class_names = cfg, device, class_names
        self.train_cases, self.val_cases, self.test_cases = train_cases, val_cases, list(test_cases)
        self.folder, self.load_seconds = folder, load_seconds
        self.sampler = PatchSampler.from_cases(train_cases, cfg.data.patch_size, device, cfg.data.foreground_ratio)
        d = cfg.data
        self.augment = Augment(flip_prob=d.flip_prob, flip_axes=tuple(d.flip_axes), spatial_prob=d.spatial_prob,
                               rotate=d.rotate, scale=d.scale, intensity_prob=d.intensity_prob,
                               intensity_shift=d.intensity_shift, intensity_scale=d.intensity_scale)
        self.model, self.model_spec = build_model(cfg, int(train_cases[0].image.shape[0]), len(class_names))
        self.model.to(device)
        # nnU-Net leaves the background out of the Dice term; cross-entropy still covers it.
        self.loss = SegmentationLoss(cfg.model.loss, include_background=False)
        eval_cases = val_cases[: cfg.eval.max_cases] if cfg.eval.max_cases else val_cases
        self.eval_cases = eval_cases or train_cases[:4]

    def train_size(self) -> int:
        return len(self.train_cases) * self.cfg.data.patches_per_case

    def get_batch(self, indices):
        x, y = self.sampler.sample(indices % len(self.train_cases))  # (B, C, *P), (B, *P)
        return self.augment(x, y)

    def training_step(self, model, batch):
        x, y = batch
        return self.loss(model(x), y)

    def evaluate(self, model) -> dict[str, float]:
        rows, _ = score_cases(model, self.eval_cases, self.cfg, self.device, self.class_names, surface_metrics=False)
        s = summarize_rows(rows, self.class_names)
        return {"val_dice": s["val_dice"], **{f"val_dice_{n}": s[f"dice_{n}"] for n in self.class_names[1:]}}


# ---- the task -----------------------------------------------------------------------------------------

@register_task
class Segment3D:
    name = "segment3d"
    help = "3D V-Net / U-Net segmentation of NIfTI volumes (MSD hippocampus)."
    preset = "hippocampus"
    Config, ExplainOptions = Config, SegmentExplainOptions
    splits = ("test", "val")   # the splits `evaluate` takes (see the module docstring)
    split_note = "val picks the best checkpoint; test is scored once, after training (0.1 runs: val only)"

    def build(self, cfg: Config, env, run) -> Segment3DTrain:
        import time

        t0 = time.perf_counter()
        parts, class_names, folder = load_split(cfg)
        return Segment3DTrain(cfg, env.device, parts.train, parts.val, class_names, folder, time.perf_counter() - t0,
                              parts.test)

    def finish(self, cfg: Config, env, run, built: Segment3DTrain, fits) -> Outcome:
        import time

        from neuralsight.viz.volumes import VolumeView, volume_figures

        names, b = built.class_names, built
        # scored: the test cases; with data.test_fraction = 0 the validation cases, else four training cases
        split, cases = next((k, c) for k, c in (("test", b.test_cases), ("val", b.val_cases),
                                                ("train", b.train_cases[:4])) if c)
        val = summarize_rows(score_cases(b.model, b.val_cases, cfg, env.device, names, env.autocast,
                                         surface_metrics=False)[0], names) if b.val_cases and split != "val" else {}
        t1 = time.perf_counter()
        rows, preds = score_cases(b.model, cases, cfg, env.device, names, env.autocast, keep_predictions=True)
        metrics = {**summarize_rows(rows, names, "val_dice" if split == "val" else "dice"), "cases": len(cases),
                   "volumes_per_second": len(cases) / max(time.perf_counter() - t1, 1e-9),
                   "load_seconds": round(b.load_seconds, 2)}
        run.write_json(CASES_FILE, {"class_names": names, "scored_split": split, "split": {
            k: [c.name for c in getattr(b, f"{k}_cases")] for k in ("train", "val", "test")}, "cases": rows,
            "data": str(b.folder)})
        volume_figures(run.figures, [VolumeView(c.name, c.image[0].numpy(), c.label.numpy(), preds[c.name].numpy(),
                                                r["dice_mean"]) for c, r in zip(cases, rows, strict=True)], names)
        sizes = {k: len(getattr(b, f"{k}_cases")) for k in ("train", "val", "test")}
        return Outcome(f"{split}_dice", metrics["dice" if split != "val" else "val_dice"], split,
                       val=metrics if split == "val" else val, test=metrics if split == "test" else {},
                       extra={"class_names": names, "model": b.model_spec, "data": {**sizes, "unit": "case"},
                              **({"train_metrics": metrics} if split == "train" else {})})

    def evaluate(self, saved, split: str) -> dict:
        """Dice, HD95 and volume errors of the best checkpoint, averaged over the cases of ``split``."""
        legacy = two_way_run(saved)
        if split != "val" and legacy:
            raise UserError(f"--split {split} does not apply to a segment3d run of 0.1: it holds out one split of "
                            "cases, which picks the best checkpoint and so is the validation split",
                            "use --split val, or retrain for a test split")
        parts, names, _ = load_split(saved.cfg, legacy)
        if not parts[split]:
            raise DataError(f"this run holds no {split} cases (data.{split}_fraction = 0)",
                            f"retrain with data.{split}_fraction > 0 to score it")
        rows, _ = score_cases(saved.model(), parts[split], saved.cfg, saved.device, names)
        return {**summarize_rows(rows, names, "val_dice" if split == "val" else "dice"), "cases": len(rows)}

    def _class_names(self, saved, num_classes: int) -> list[str]:
        names = (saved.read_json(CASES_FILE) or {}).get("class_names")
        return names if names and len(names) == num_classes else \
            ["background"] + [f"class {i}" for i in range(1, num_classes)]

    def predict(self, saved, inputs: list[Path], out: Path, options) -> list[dict]:
        """Label volumes: ``<name>_seg.nii.gz`` with the input's affine and header, ``<name>_slices.png``, and each
        structure's volume in mL (also in ``volumes.csv`` and ``volumes.json``); an unreadable file is an error row."""
        from neuralsight.data import volumes as V
        from neuralsight.engine import progress
        from neuralsight.engine.surface import volume_ml
        from neuralsight.io import atomic_write_json, atomic_write_rows

        files = expand_inputs(inputs, V.VOLUME_SUFFIXES, within=("imagesTs", "imagesTr"))
        if not files:
            raise UserError("no volumes given", "pass .nii/.nii.gz/.npy/.npz files or a folder: "
                            "neuralsight predict RUN VOLUME...")
        model, out = saved.model(), Path(out)
        names = self._class_names(saved, int(saved.state()["model"]["kwargs"]["num_classes"]))
        rows, table = [], []
        for path in files:
            try:
                case = V.load_case(path, None, volume_options(saved.cfg))
            except DataError as err:
                rows.append(failed(path, err))
                continue
            with progress.status(f"segmenting {path}"):
                pred = infer_logits(model, case.image.to(saved.device), saved.cfg, saved.device).argmax(0)
            pred, written = save_volume_prediction(out, V.case_name(path), pred, case, names, path.name)
            volumes = {n: round(volume_ml(pred == c, case.source_spacing), 4) for c, n in enumerate(names) if c}
            rows.append({"input": str(path), "volumes_ml": volumes,
                         "outputs": {**written, "volumes_csv": str(out / "volumes.csv")}})
            table.append({"input": str(path), "output": written["segmentation"],
                          **{f"{n}_ml": v for n, v in volumes.items()}})
        if table:  # the files 0.1 wrote, one row per volume
            atomic_write_rows(out / "volumes.csv", table)
            atomic_write_json(out / "volumes.json", table)
        return rows

    def explain(self, saved, inputs: list[Path], out: Path, options: SegmentExplainOptions) -> list[Path]:
        """Grad-CAM and integrated gradients of a structure on orthogonal slices, the net's feature maps."""
        split = "val" if two_way_run(saved) else "test"  # --index counts the test cases (0.1 runs: val)
        return explain_segment3d(saved, inputs, out, options, self._class_names(saved, saved.model().num_classes),
                                 held_out=lambda: load_split(saved.cfg, split == "val")[0][split],
                                 opts=volume_options(saved.cfg))

    def report(self, run_dir: Path) -> list[Section]:
        run_dir = Path(run_dir)
        path, figs = run_dir / CASES_FILE, run_dir / "figures"
        if not path.is_file():
            return [Section("Segmentation", [Text("no evaluation was written (interrupted run?)", muted=True)],
                            "segment3d")]
        data = json.loads(path.read_text())
        names, rows = data["class_names"], data["cases"]
        metrics = summarize_rows(rows, names)  # the means over the scored cases, recomputed from each case
        per_class = [[n, *(metrics.get(f"{k}_{n}", math.nan) for k in ("dice", "hd95", "vol_diff_ml",
                                                                        "vol_absdiff_ml"))] for n in names[1:]]
        cols = ["case", "dice_mean"] + [f"{k}_{n}" for k in ("dice", "hd95", "vol_diff_ml") for n in names[1:]]
        ordered = sorted(rows, key=lambda r: (r.get("dice_mean") is None or math.isnan(r["dice_mean"]),
                                              r.get("dice_mean", 0)))
        worst = ", ".join(f"{r['case']} ({r['dice_mean']:.3f})" for r in ordered[:3])
        return [
            Section("Segmentation quality", [
                Text(f"{len(rows)} {data.get('scored_split', 'val')} volumes from {data.get('data', '')}, split "
                     "by case (" + " / ".join(f"{len(v)} {k}" for k, v in data["split"].items()) + "; the "
                     "validation cases pick the best checkpoint, the test cases are scored once, after training). "
                     "Sliding-window inference with Gaussian blending; HD95 in mm from the voxel spacing."),
                Table(per_class, ["structure", "Dice", "HD95 (mm)", "mean volume diff (mL)",
                                  "mean |volume diff| (mL)"])], "segment3d"),
            Section("Orthogonal slices", [Figure(figs / "orthogonal.png", "axial, coronal and sagittal slices "
                                                 "through each structure of the median case")], "slices"),
            Section("Input | Training mask | Output | Error", [
                Figure(figs / "panel.png", f"best, median and worst case; Error over the image: {ERROR_KEY}"),
                Figure(figs / "worst_cases.png", "the worst cases")], "panel"),
            Section("Per-case Dice", [Text(f"Worst cases: {worst}. Click a column to sort."),
                                      Table([[r.get(c, math.nan) for c in cols] for r in ordered], cols,
                                            sortable=True)], "cases"),
        ]
