"""3D segmentation of NIfTI volumes with V-Net (or a 3D U-Net): MSD hippocampus by default.

Data: every case is read once (data/volumes.py), normalised and kept in memory as tensors; training
draws foreground-biased patches on the device and augments them there. Loss: multi-class soft Dice or
CE + Dice (engine/losses.py). Validation runs sliding-window inference with Gaussian blending
(engine/sliding.py) on whole validation volumes and reports per-class Dice (engine/metrics.py), HD95 in
mm and volume difference (engine/surface.py), per class and per case. Figures: orthogonal slices
through each structure, the lecture's Input | Training mask | Output | Error panel, and the worst cases.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuralsight.config import TrainConfig, bounded, choice
from neuralsight.errors import ConfigError, DataError, UserError

PRESET = "hippocampus"
HIPPOCAMPUS_NAMES = ["background", "anterior", "posterior"]


@dataclass
class DataConfig:
    dataset: str = field(default="msd-hippocampus", metadata={"help": "catalog name, or 'folder' with --data"})
    data_dir: str | None = None
    val_fraction: float = bounded(0.2, min=0.0, max=0.9, help="fraction of cases held out (by case)")
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


# --- data ------------------------------------------------------------------------------------------------


def volume_options(cfg: Config):
    from neuralsight.data.volumes import VolumeOptions

    return VolumeOptions(normalize=cfg.data.normalize, window=list(cfg.data.window) or None,
                         target_spacing=list(cfg.data.target_spacing) or None)


def dataset_folder(cfg: Config, data_dir=None) -> Path:
    from neuralsight.data import catalog

    data_dir = data_dir or cfg.data.data_dir
    if cfg.data.dataset == "folder":
        if not data_dir:
            raise DataError("data.dataset = 'folder' needs a folder", "pass --data DIR (imagesTr/ + labelsTr/)")
        return Path(data_dir)
    return catalog.locate(cfg.data.dataset, data_dir)


def split_cases(names: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """A fixed split by case: sorted names, permuted by ``seed``; the last ``val_fraction`` validate."""
    import torch

    names = sorted(names)
    perm = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = int(round(len(names) * val_fraction)) if val_fraction > 0 else 0
    if len(names) > 1:
        n_val = min(max(n_val, 1 if val_fraction > 0 else 0), len(names) - 1)
    val = sorted(names[i] for i in perm[len(names) - n_val:]) if n_val else []
    train = sorted(names[i] for i in perm[: len(names) - n_val])
    return train, val


def load_split(cfg: Config, data_dir=None):
    """``(train_cases, val_cases, class_names, folder)`` for the config's dataset and split."""
    from neuralsight.data.volumes import label_names, load_cases

    folder = dataset_folder(cfg, data_dir)
    cases = load_cases(folder, volume_options(cfg), limit=cfg.data.limit or None)
    if len(cases) < 2:
        raise DataError(f"{folder} holds {len(cases)} labelled case(s)", "need at least 2 (train and validation)")
    train_names, val_names = split_cases([c.name for c in cases], cfg.data.val_fraction, cfg.data.split_seed)
    by_name = {c.name: c for c in cases}
    num_classes = max(2, 1 + max(int(c.label.max()) for c in cases))
    names = list(cfg.data.class_names)
    if not names:
        names = label_names(folder, num_classes)
        if cfg.data.dataset == "msd-hippocampus" and not (folder / "dataset.json").is_file() and num_classes == 3:
            names = list(HIPPOCAMPUS_NAMES)
    if len(names) < num_classes:
        raise ConfigError(f"data.class_names has {len(names)} names but the labels hold {num_classes} classes")
    return [by_name[n] for n in train_names], [by_name[n] for n in val_names], names[:num_classes], folder


def build_model(cfg: Config, in_channels: int, num_classes: int):
    from neuralsight.models import create_model, model_spec

    m = cfg.model
    if m.name == "vnet":
        kwargs = {"in_channels": in_channels, "num_classes": num_classes, "base_channels": m.base_channels,
                  "depth": m.depth, "kernel_size": m.kernel_size, "norm": m.norm, "dropout": m.dropout}
        name = "vnet"
    else:
        kwargs = {"spatial_dims": 3, "in_channels": in_channels, "num_classes": num_classes, "depth": m.depth,
                  "base_channels": m.base_channels, "norm": None if m.norm == "none" else m.norm,
                  "dropout": m.dropout}
        name = "unet"
    return create_model(name, **kwargs), model_spec(name, **kwargs)


# --- inference and metrics -------------------------------------------------------------------------------


def roi_size(cfg: Config) -> list[int]:
    return list(cfg.eval.roi_size or cfg.data.patch_size)


def infer_logits(model, image, cfg: Config, device, autocast=None):
    """Sliding-window logits ``(C_out, D, H, W)`` (CPU, float32) for one normalised image ``(C, D, H, W)``."""
    import contextlib

    import torch

    from neuralsight.engine.sliding import sliding_window_inference

    ctx = autocast if autocast is not None else contextlib.nullcontext
    with torch.no_grad(), ctx():
        out = sliding_window_inference(image[None], roi_size(cfg), model, overlap=cfg.eval.overlap,
                                       sw_batch_size=cfg.eval.sw_batch_size, device=device,
                                       output_device="cpu")
    return out[0]  # (C_out, D, H, W)


def score_cases(model, cases, cfg: Config, device, class_names, autocast=None, surface_metrics: bool = True,
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


def summarize_rows(rows: list[dict], class_names: list[str]) -> dict:
    """Means over cases (NaN-aware) of every numeric column; ``val_dice`` is the mean foreground Dice."""
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
    out["val_dice"] = out.pop("dice_mean", math.nan)
    return out


# --- the training task -----------------------------------------------------------------------------------


class Segment3DTask:
    """What engine.trainer.fit needs: patches from in-memory volumes, a loss, validation by case."""

    monitor = "val_dice"
    monitor_mode = "max"
    channels_last = False  # 5-D tensors: torch's channels_last is 4-D only

    def __init__(self, cfg: Config, env, train_cases, val_cases, class_names):
        import torch

        from neuralsight.data.volumes import Augment, PatchSampler
        from neuralsight.engine.losses import SegmentationLoss

        self.cfg, self.env = cfg, env
        self.device = env.device
        self.class_names = class_names
        self.train_cases, self.val_cases = train_cases, val_cases
        self.sampler = PatchSampler.from_cases(train_cases, cfg.data.patch_size, env.device,
                                               cfg.data.foreground_ratio)
        d = cfg.data
        self.augment = Augment(flip_prob=d.flip_prob, flip_axes=tuple(d.flip_axes), spatial_prob=d.spatial_prob,
                               rotate=d.rotate, scale=d.scale, intensity_prob=d.intensity_prob,
                               intensity_shift=d.intensity_shift, intensity_scale=d.intensity_scale)
        in_channels = int(train_cases[0].image.shape[0])
        self.model, self.model_spec = build_model(cfg, in_channels, len(class_names))
        self.model.to(env.device)
        # nnU-Net leaves the background out of the Dice term; cross-entropy still covers it.
        self.loss = SegmentationLoss(cfg.model.loss, include_background=False)
        eval_cases = val_cases[: cfg.eval.max_cases] if cfg.eval.max_cases else val_cases
        self.eval_cases = eval_cases or train_cases[:4]
        self._torch = torch

    def train_size(self) -> int:
        return len(self.train_cases) * self.cfg.data.patches_per_case

    def get_batch(self, indices):
        x, y = self.sampler.sample(indices % len(self.train_cases))  # (B, C, *P), (B, *P)
        return self.augment(x, y)

    def training_step(self, model, batch):
        x, y = batch
        return self.loss(model(x), y)

    def evaluate(self, model) -> dict[str, float]:
        rows, _ = score_cases(model, self.eval_cases, self.cfg, self.device, self.class_names,
                              surface_metrics=False)
        s = summarize_rows(rows, self.class_names)
        out = {"val_dice": s["val_dice"]}
        out.update({f"val_dice_{n}": s[f"dice_{n}"] for n in self.class_names[1:]})
        return out


def train(cfg: Config, env, run, resume: bool = False) -> dict:
    import time

    from neuralsight import runner
    from neuralsight.config import to_dict
    from neuralsight.engine import checkpoint as ckpt
    from neuralsight.engine.trainer import fit

    t0 = time.perf_counter()
    train_cases, val_cases, class_names, folder = load_split(cfg)
    load_seconds = time.perf_counter() - t0
    task = Segment3DTask(cfg, env, train_cases, val_cases, class_names)
    result = fit(task, env, cfg.train, run, {"task": "segment3d", **to_dict(cfg)}, resume=resume)
    summary: dict[str, Any] = {"fit": runner.fit_summary(result), "interrupted": result.interrupted}
    if not run.writer:
        return summary
    ckpt.load_weights(task.model, run.checkpoints, "best", device=env.device)
    task.model.eval()
    cases = val_cases or train_cases[:4]
    t1 = time.perf_counter()
    rows, preds = score_cases(task.model, cases, cfg, env.device, class_names, env.autocast,
                              keep_predictions=True)
    infer_seconds = time.perf_counter() - t1
    metrics = summarize_rows(rows, class_names)
    metrics["val_cases"] = len(cases)
    metrics["volumes_per_second"] = len(cases) / max(infer_seconds, 1e-9)
    metrics["load_seconds"] = round(load_seconds, 2)
    run.write_json("samples/cases.json", {"class_names": class_names, "split": {
        "train": [c.name for c in train_cases], "val": [c.name for c in val_cases]}, "cases": rows,
        "data": str(folder)})
    write_figures(run.figures, cases, preds, rows, class_names)
    summary.update({"headline": {"name": "val_dice", "value": metrics["val_dice"]}, "metrics": metrics,
                    "class_names": class_names, "model": task.model_spec})
    return summary


# --- figures ---------------------------------------------------------------------------------------------

VIEWS = (("axial", 2), ("coronal", 1), ("sagittal", 0))
COLORS = [(0, 0, 0, 0), (0.1, 0.8, 0.2, 0.55), (1.0, 0.3, 0.1, 0.55), (0.2, 0.4, 1.0, 0.55),
          (0.9, 0.9, 0.1, 0.55), (0.8, 0.2, 0.9, 0.55)]


def _slice(vol, axis: int, index: int):
    import numpy as np

    return np.take(np.asarray(vol), index, axis=axis).T  # rows: the later axis, shown with origin lower


def _overlay(label2d):
    import numpy as np

    rgba = np.zeros((*label2d.shape, 4))
    for c in range(1, int(label2d.max(initial=0)) + 1):
        rgba[label2d == c] = COLORS[c % len(COLORS)] if c < len(COLORS) else (0.5, 0.5, 0.5, 0.5)
    return rgba


def orthogonal_figure(case, pred, class_names, path: Path) -> Path:
    """Axial, coronal and sagittal slices through each structure's centre: prediction filled, truth outlined."""
    import numpy as np

    from neuralsight.viz.figures import plt, save

    p = plt()
    image = case.image[0].numpy()
    truth = case.label.numpy()
    pred = np.asarray(pred)
    structures = [c for c in range(1, len(class_names)) if (truth == c).any() or (pred == c).any()] or [1]
    fig, axes = p.subplots(len(structures), 3, figsize=(10, 3.2 * len(structures)), squeeze=False)
    for row, c in enumerate(structures):
        mask = (truth == c) if (truth == c).any() else (pred == c)
        centre = np.argwhere(mask).mean(0).round().astype(int) if mask.any() else np.array(truth.shape) // 2
        for col, (view, axis) in enumerate(VIEWS):
            ax = axes[row, col]
            ax.imshow(_slice(image, axis, centre[axis]), cmap="gray", origin="lower")
            ax.imshow(_overlay(_slice(pred, axis, centre[axis])), origin="lower")
            t = _slice(truth == c, axis, centre[axis]).astype(float)
            if t.any() and t.min() != t.max():
                ax.contour(t, levels=[0.5], colors="yellow", linewidths=0.8, origin="lower")
            ax.set_title(f"{class_names[c]} · {view} {centre[axis]}", fontsize=9)
            ax.axis("off")
    fig.suptitle(f"{case.name}: prediction (filled) vs truth (yellow outline)", fontsize=10)
    return save(fig, path)


def panel_figure(cases, preds, rows, class_names, path: Path, title: str) -> Path:
    """The lecture's Input | Training mask | Output | Error panel on each case's central structure slice."""
    import numpy as np

    from neuralsight.viz.figures import plt, save

    p = plt()
    fig, axes = p.subplots(len(cases), 4, figsize=(10, 2.6 * len(cases)), squeeze=False)
    by_name = {r["case"]: r for r in rows}
    for i, case in enumerate(cases):
        truth = case.label.numpy()
        pred = np.asarray(preds[case.name])
        fg = np.argwhere(truth > 0)
        z = int(fg[:, 2].mean().round()) if len(fg) else truth.shape[2] // 2
        img = _slice(case.image[0].numpy(), 2, z)
        t, o = _slice(truth, 2, z), _slice(pred, 2, z)
        err = (t != o).astype(float)
        panels = [("Input", img, "gray"), ("Training mask", t, None), ("Output", o, None), ("Error", err, "Reds")]
        for j, (name, data, cmap) in enumerate(panels):
            ax = axes[i, j]
            if cmap is None:
                ax.imshow(img, cmap="gray", origin="lower")
                ax.imshow(_overlay(data), origin="lower")
            else:
                ax.imshow(data, cmap=cmap, origin="lower", vmin=0 if name == "Error" else None,
                          vmax=1 if name == "Error" else None)
            label = name if i == 0 else ""
            if j == 0:
                d = by_name.get(case.name, {}).get("dice_mean", math.nan)
                label = f"{case.name}\nDice {d:.3f}" + (f"\n{name}" if i == 0 else "")
            if j == 3:
                label = f"{name if i == 0 else 'errors'}: {int(err.sum())} px"
            ax.set_title(label, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def write_figures(folder: Path, cases, preds, rows, class_names) -> list[Path]:
    order = sorted(range(len(rows)), key=lambda i: (math.isnan(rows[i]["dice_mean"]), rows[i]["dice_mean"]))
    median = cases[order[len(order) // 2]]
    worst = [cases[i] for i in order[:3]]
    best = cases[order[-1]]
    out = [orthogonal_figure(median, preds[median.name], class_names, Path(folder) / "orthogonal.png")]
    picks = [best, median] + [c for c in worst if c.name not in (best.name, median.name)][:1]
    out.append(panel_figure(picks, preds, rows, class_names, Path(folder) / "panel.png",
                            "Input | Training mask | Output | Error (best, median, worst case; central axial slice)"))
    out.append(panel_figure(worst, preds, rows, class_names, Path(folder) / "worst_cases.png",
                            "the three worst validation cases"))
    return out


# --- report ----------------------------------------------------------------------------------------------


def report_sections(run_dir: Path) -> list:
    from neuralsight.report.html import Section, esc, figure, read_summary, table

    run_dir = Path(run_dir)
    path = run_dir / "samples" / "cases.json"
    if not path.is_file():
        return [Section("Segmentation", '<p class="muted">no evaluation was written (interrupted run?)</p>',
                        "segment3d")]
    data = json.loads(path.read_text())
    names, rows = data["class_names"], data["cases"]
    summary = read_summary(run_dir)
    metrics = summary.get("metrics", {})
    per_class = []
    for n in names[1:]:
        per_class.append([n, metrics.get(f"dice_{n}", math.nan), metrics.get(f"hd95_{n}", math.nan),
                          metrics.get(f"vol_diff_ml_{n}", math.nan), metrics.get(f"vol_absdiff_ml_{n}", math.nan)])
    head = ["structure", "Dice", "HD95 (mm)", "mean volume diff (mL)", "mean |volume diff| (mL)"]
    intro = (f"<p>{len(rows)} validation volumes from <code>{esc(data.get('data', ''))}</code>, split by case "
             f"({len(data['split']['train'])} train / {len(data['split']['val'])} validation). Sliding-window "
             "inference with Gaussian blending; HD95 in mm from the voxel spacing.</p>")
    sections = [Section("Segmentation quality", intro + table(per_class, head), "segment3d")]
    sections.append(Section("Orthogonal slices", figure(run_dir / "figures" / "orthogonal.png",
                                                        "axial, coronal and sagittal slices through each "
                                                        "structure of the median case"), "slices"))
    sections.append(Section("Input | Training mask | Output | Error",
                            figure(run_dir / "figures" / "panel.png", "best, median and worst case")
                            + figure(run_dir / "figures" / "worst_cases.png", "the worst cases"), "panel"))
    cols = ["case", "dice_mean"] + [f"dice_{n}" for n in names[1:]] + [f"hd95_{n}" for n in names[1:]] \
        + [f"vol_diff_ml_{n}" for n in names[1:]]
    ordered = sorted(rows, key=lambda r: (r.get("dice_mean") is None or math.isnan(r["dice_mean"]),
                                          r.get("dice_mean", 0)))
    table_rows = [[r.get(c, math.nan) for c in cols] for r in ordered]
    worst = ", ".join(f"{r['case']} ({r['dice_mean']:.3f})" for r in ordered[:3])
    sections.append(Section("Per-case Dice", f"<p>Worst cases: {esc(worst)}. Click a column to sort.</p>"
                            + table(table_rows, cols, sortable=True), "cases"))
    return sections


# --- saved runs: evaluate and predict --------------------------------------------------------------------


def load_run(run_dir: Path, device: str | None = None):
    """``(cfg, model, state, device)`` from a saved run's config and best checkpoint."""
    from neuralsight import config as C
    from neuralsight.engine import checkpoint as ckpt
    from neuralsight.engine.device import resolve_device
    from neuralsight.models import create_model

    run_dir = Path(run_dir)
    data = C.load_toml(run_dir / "config.toml")
    data.pop("task", None)
    cfg = C.from_dict(Config, data)
    tag = "best" if (run_dir / "checkpoints" / "best.json").is_file() else "last"
    state = ckpt.read_state(run_dir / "checkpoints", tag)
    dev = resolve_device(device or "auto")
    model = create_model(state["model"]["name"], **state["model"]["kwargs"])
    ckpt.load_weights(model, run_dir / "checkpoints", tag, device=dev)
    model.to(dev).eval()
    return cfg, model, state, dev


def _class_names(run_dir: Path, num_classes: int) -> list[str]:
    path = Path(run_dir) / "samples" / "cases.json"
    if path.is_file():
        names = json.loads(path.read_text()).get("class_names")
        if names and len(names) == num_classes:
            return names
    return ["background"] + [f"class {i}" for i in range(1, num_classes)]


def evaluate(run_dir: Path, opts: dict) -> dict:
    """Score the best checkpoint on the run's validation split (``--split val``/``test``: the held-out cases)."""
    cfg, model, state, dev = load_run(run_dir)
    _, val_cases, class_names, _ = load_split(cfg, opts.get("data_dir"))
    rows, _ = score_cases(model, val_cases, cfg, dev, class_names)
    out = summarize_rows(rows, class_names)
    out["cases"] = len(rows)
    return out


def _expand_inputs(inputs: list[Path]) -> list[Path]:
    from neuralsight.data.volumes import volume_suffix

    files = []
    for p in inputs:
        p = Path(p)
        if p.is_dir():
            sub = p / "imagesTs" if (p / "imagesTs").is_dir() else p / "imagesTr" if (p / "imagesTr").is_dir() else p
            files.extend(sorted(f for f in sub.iterdir() if volume_suffix(f) and not f.name.startswith(".")))
        else:
            files.append(p)
    return files


def predict(run_dir: Path, inputs: list[Path], opts: dict) -> int:
    """Label volumes; write ``<name>_seg.nii.gz`` with the input's affine and header, and a volume table in mL."""
    import torch.nn.functional as F

    from neuralsight.data.volumes import case_name, load_case, write_label_nifti
    from neuralsight.engine.surface import volume_ml
    from neuralsight.io import atomic_write_json, atomic_write_text

    files = _expand_inputs(inputs)
    if not files:
        raise UserError("no volumes given", "pass .nii/.nii.gz/.npy/.npz files or a folder: "
                        "neuralsight predict RUN VOLUME...")
    cfg, model, state, dev = load_run(run_dir, opts.get("device"))
    num_classes = int(state["model"]["kwargs"]["num_classes"])
    names = _class_names(run_dir, num_classes)
    out_dir = Path(opts.get("out") or Path(run_dir) / "predictions")
    rows = []
    for path in files:
        case = load_case(path, None, volume_options(cfg))
        pred = infer_logits(model, case.image.to(dev), cfg, dev).argmax(0)  # (D, H, W) on the model's grid
        if tuple(pred.shape) != tuple(case.source_shape):  # resampled: back to the file's own grid
            pred = F.interpolate(pred[None, None].float(), size=list(case.source_shape), mode="nearest")[0, 0].long()
        spacing = case.source_spacing
        target = out_dir / f"{case_name(path)}_seg.nii.gz"
        write_label_nifti(target, pred.cpu().numpy(), case.source_affine, case.header)
        row = {"input": str(path), "output": str(target)}
        for c in range(1, num_classes):
            row[f"{names[c]}_ml"] = round(volume_ml(pred == c, spacing), 4)
        rows.append(row)
    header = list(rows[0].keys())
    csv = "\n".join([",".join(header)] + [",".join(str(r[h]) for h in header) for r in rows]) + "\n"
    atomic_write_text(out_dir / "volumes.csv", csv)
    atomic_write_json(out_dir / "volumes.json", rows)
    if opts.get("json"):
        print(json.dumps(rows, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table("input", *[h for h in header if h.endswith("_ml")], "written")
        for r in rows:
            t.add_row(Path(r["input"]).name, *[f"{r[h]:.3f}" for h in header if h.endswith("_ml")], r["output"])
        Console().print(t)
        Console().print(f"volume table: {out_dir / 'volumes.csv'}")
    return 0
