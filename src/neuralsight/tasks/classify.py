"""Image classification with a CNN: Fashion-MNIST (or any image folder per class), end to end.

This module holds the classify task: its config, its data (uint8 tensors on the device, augmented there), the
engine adapter, the final evaluation, predict and explain over a saved run, and its report sections. Figures
are drawn by ``viz/classify.py`` and ``viz/explain.py``.

Data lives on the device as uint8 ``(N, C, H, W)`` tensors (Fashion-MNIST's 60k+10k images are 55 MB); each
batch is gathered by index, scaled to [0, 1] and augmented there (random flips and shifts), and the model
normalises its own input (the mean/std are constructor arguments stored in the checkpoint). A validation split
(``data.val_size`` images, fixed seed) is carved from the training set and picks the best checkpoint; the test
set is touched once, by the final evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import TrainConfig, bounded, choice
from neuralsight.data.classification import Data, load_classification
from neuralsight.data.imagefolder import recorded_trim, trims_margins
from neuralsight.errors import ConfigError, DataError, UserError
from neuralsight.report.sections import Figure, Section, Table, Text
from neuralsight.tasks.base import Outcome, expand_inputs, failed, register_task
from neuralsight.tasks.classifying import evaluate_split, headline_metrics, predict_split

META_FILE = "classes.json"


@dataclass
class DataConfig:
    dataset: str = field(default="fashion-mnist", metadata={"help": "fashion-mnist, or folder (with data_dir)"})
    data_dir: str | None = None
    val_size: int = bounded(5000, min=0, help="validation images held out of the training set")
    image_size: int = bounded(28, min=8, max=512, help="input side for image folders (Fashion-MNIST: 28)")
    channels: int = choice(0, (0, 1, 3), help="0: 1 for Fashion-MNIST, 3 for folders")
    test_fraction: float = bounded(0.15, min=0.0, max=0.9, help="test split of a folder without train/test")
    augment: bool = True
    flip: bool = True
    tta: bool = field(default=False, metadata={"help": "eval and predict average an image with its mirror image"})
    shift: int = bounded(2, min=0, max=8, help="random translation in pixels (pad + crop)")
    train_limit: int = bounded(0, min=0, help="use only the first N training images (0: all)")
    eval_batch_size: int = bounded(2000, min=1)


@dataclass
class ModelConfig:
    arch: str = choice("fast", ("lecture", "fast", "best", "custom"))
    stages: list[str] = field(default_factory=list,
                              metadata={"help": "custom stages, e.g. ['c32 k3 max2', 'c64 k3 bn max2']"})
    dense: list[int] | None = None
    dropout: float | None = None
    activation: str = choice("relu", ("relu", "gelu", "silu", "tanh", "elu", "leaky_relu"))
    padding: str = choice("same", ("same", "valid"))
    label_smoothing: float = bounded(0.0, min=0.0, max=0.5)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=8, batch_size=256, lr=3e-3, weight_decay=5e-4, schedule="onecycle", warmup=0.25))

    def check(self) -> None:
        if self.model.arch == "custom" and not self.model.stages:
            raise ConfigError("model.arch = 'custom' needs model.stages, e.g. model.stages=['c32 k3 max2']")


@dataclass
class PredictOptions:
    top_k: int = bounded(3, min=1, help="classes listed per image")
    invert: str = choice("auto", ("auto", "yes", "no"), help="invert grey levels (auto: when the border is light)")
    trim: str = choice("auto", ("auto", "yes", "no"), help="cut border-colour margins (auto: as the run recorded)")


@dataclass
class ExplainOptions:
    method: str = field(default="auto", metadata={"help": "auto, or a comma list of saliency, gradcam, occlusion, "
                                                          "features, kernels, head"})
    index: int | None = None


def load_data(cfg: DataConfig, device) -> Data:
    return load_classification(cfg.dataset, cfg.data_dir, device, cfg.val_size, cfg.image_size, cfg.channels,
                               cfg.test_fraction, cfg.train_limit)


def build_model_kwargs(cfg: ModelConfig, in_channels: int, num_classes: int, image_size, mean, std) -> dict:
    from neuralsight.models.cnn import parse_stage, preset_kwargs

    if cfg.arch == "custom":
        try:
            spec = {"stages": [parse_stage(s) for s in cfg.stages], "dense": [128], "dropout": 0.0}
        except ValueError as err:
            raise ConfigError(f"model.stages: {err}") from None
    else:
        spec = preset_kwargs(cfg.arch)
    if cfg.dense is not None:
        spec["dense"] = list(cfg.dense)
    if cfg.dropout is not None:
        spec["dropout"] = cfg.dropout
    return {**spec, "in_channels": in_channels, "num_classes": num_classes, "image_size": list(image_size),
            "activation": cfg.activation, "padding": cfg.padding, "input_mean": mean, "input_std": std}


class ClassifyTrain:
    """What the training loop drives (engine/trainer.py ``TrainTask``)."""

    monitor = "val_acc"
    monitor_mode = "max"
    channels_last = True
    item_unit = "images"

    def __init__(self, cfg: Config, data: Data, device):
        import torch

        from neuralsight.models import create_model

        self.cfg, self.data, self.device = cfg, data, device
        xf = data.train.x.float() / 255
        mean = xf.mean(dim=(0, 2, 3)).tolist()
        std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
        kwargs = build_model_kwargs(cfg.model, xf.shape[1], len(data.classes), xf.shape[2:], mean, std)
        try:
            self.model = create_model("cnn", **kwargs).to(device)
        except ValueError as err:
            raise ConfigError(f"model: {err}") from None
        self.model_spec = {"name": "cnn", "kwargs": kwargs}
        self.memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format

    def train_size(self) -> int:
        return len(self.data.train.y)

    def get_batch(self, indices):
        from neuralsight.data.augment import FlipShiftConfig, flip_and_shift

        idx = indices.to(self.device, non_blocking=True)
        x = self.data.train.x[idx].float().div_(255)  # (B, C, H, W) in [0, 1]
        d = self.cfg.data
        if d.augment:
            x = flip_and_shift(x, FlipShiftConfig(hflip=0.5 if d.flip else 0.0, shift=d.shift))
        return x.contiguous(memory_format=self.memory_format), self.data.train.y[idx]

    def training_step(self, model, batch):
        import torch.nn.functional as F

        x, y = batch
        return F.cross_entropy(model(x).float(), y, label_smoothing=self.cfg.model.label_smoothing)

    def evaluate(self, model) -> dict[str, float]:
        if len(self.data.val.y) == 0:
            return {}
        d = self.cfg.data
        out = predict_split(model, self.data.val, d.eval_batch_size, self.memory_format, d.tta)
        return {"val_loss": out["loss"].mean().item(), "val_acc": (out["pred"] == self.data.val.y).float().mean().item()}


@register_task
class Classify:
    name = "classify"
    help = "CNN image classification (Fashion-MNIST or an image folder per class)."
    preset = "fashion"
    Config = Config
    PredictOptions = PredictOptions
    ExplainOptions = ExplainOptions

    def build(self, cfg: Config, env, run) -> ClassifyTrain:
        data = load_data(cfg.data, env.device)
        if run.writer:
            run.write_json(META_FILE, {"classes": data.classes, "image_size": list(data.train.x.shape[2:]),
                                       "channels": int(data.train.x.shape[1]), "dataset": cfg.data.dataset,
                                       "preprocess": {"trim_margins": trims_margins(cfg.data.dataset)},
                                       "source": data.source, "sizes": {"train": len(data.train.y),
                                       "val": len(data.val.y), "test": len(data.test.y)}})
        return ClassifyTrain(cfg, data, env.device)

    def finish(self, cfg: Config, env, run, built: ClassifyTrain, fits) -> Outcome:
        val = evaluate_split(built.model, built.data, "val", cfg, env, run.path, cfg.train.seed) \
            if len(built.data.val.y) else {}
        test = evaluate_split(built.model, built.data, "test", cfg, env, run.path, cfg.train.seed)
        self._training_figures(built, run.figures)
        return Outcome("test_acc", test["accuracy"], "test",
                       val=headline_metrics(val) if val else {}, test=headline_metrics(test),
                       extra={"params": sum(p.numel() for p in built.model.parameters())})

    def _training_figures(self, built: ClassifyTrain, figures: Path) -> None:
        """The first-layer kernels and one augmented training batch (as ``get_batch`` makes it), as PNGs."""
        import torch

        from neuralsight.viz.explain import kernel_grid
        from neuralsight.viz.figures import batch_grid

        kernel_grid(built.model, figures / "kernels.png")
        x, _ = built.get_batch(torch.randperm(built.train_size(), generator=torch.Generator().manual_seed(0))[:32])
        batch_grid(x.float().cpu().numpy(), figures / "train_batch.png")

    def evaluate(self, saved, split: str) -> dict:
        data = load_data(saved.cfg.data, saved.device)
        return headline_metrics(evaluate_split(saved.model(), data, split, saved.cfg, saved.env, saved.path))

    def _meta(self, saved) -> dict:
        return saved.read_json(META_FILE) or {
            "classes": [str(i) for i in range(saved.state()["model"]["kwargs"]["num_classes"])]}

    def _load_inputs(self, saved, inputs: list[Path], invert: str, trim: str = "auto"):
        """``(ok: [(path, uint8 (C, H, W))], failed rows)`` with the README's preprocessing."""
        from neuralsight.data.imagefolder import preprocess
        from neuralsight.data.images import IMAGE_EXTS, open_image

        meta = self._meta(saved)
        size, channels = tuple(meta.get("image_size", (28, 28))), int(meta.get("channels", 1))
        trim = recorded_trim(meta) if trim == "auto" else trim == "yes"
        ok, bad = [], []
        for path in expand_inputs(inputs, IMAGE_EXTS):
            try:
                ok.append((path, preprocess(open_image(path, mode=None), size, channels, invert, trim)))
            except DataError as err:
                bad.append(failed(path, err))
        return ok, bad

    def predict(self, saved, inputs: list[Path], out: Path, options: PredictOptions) -> list[dict]:
        """Class and top-k probabilities per image (nothing is written); failed inputs as error rows."""
        import numpy as np
        import torch

        if not inputs:
            raise UserError("no images given", "usage: neuralsight predict RUN IMAGE [IMAGE ...]")
        classes = self._meta(saved)["classes"]
        k = min(options.top_k, len(classes))
        ok, bad = self._load_inputs(saved, inputs, options.invert, options.trim)
        rows = []
        if ok:
            x = torch.from_numpy(np.stack([a for _, a in ok])).float().div_(255).to(saved.device)  # (N, C, H, W)
            with torch.no_grad():
                top_p, top_i = saved.model().predict_proba(x, saved.cfg.data.tta).topk(k, dim=-1)
            for (path, _), ps, idx in zip(ok, top_p.tolist(), top_i.tolist(), strict=True):
                rows.append({"input": str(path), "class": classes[idx[0]], "probability": ps[0],
                             "top": [{"class": classes[i], "probability": p} for i, p in zip(idx, ps, strict=True)]})
        return rows + bad

    def explain(self, saved, inputs: list[Path], out: Path, options: ExplainOptions) -> list[Path]:
        """Saliency, Grad-CAM, occlusion and feature maps of images (or test items) as PNGs."""
        import numpy as np
        import torch

        from neuralsight.viz.explain import METHODS, explain_images

        methods = list(METHODS) if options.method == "auto" else [m.strip() for m in options.method.split(",")]
        bad = [m for m in methods if m not in METHODS]
        if bad:
            raise UserError(f"--method {bad[0]} does not apply to a classify run",
                            f"choose from auto, {', '.join(METHODS)}")
        if inputs:
            ok, errors = self._load_inputs(saved, inputs, "auto")
            if errors:
                raise DataError(errors[0]["error"])
            names, arrays = [Path(p).stem for p, _ in ok], [a for _, a in ok]
        else:
            data = load_data(saved.cfg.data, torch.device("cpu"))
            picks = [options.index] if options.index is not None else list(range(4))
            for i in picks:
                if not 0 <= i < len(data.test.y):
                    raise UserError(f"--index {i} is outside the test set (0..{len(data.test.y) - 1})")
            names, arrays = [f"test{i}" for i in picks], [data.test.x[i].numpy() for i in picks]
        x = torch.from_numpy(np.stack(arrays)).float() / 255
        return explain_images(saved.model().cpu(), x, names, self._meta(saved)["classes"], methods, out)

    def report(self, run_dir: Path) -> list[Section]:
        run_dir = Path(run_dir)
        path = run_dir / "eval_test.json"
        if not path.is_file():
            return [Section("Classification", [Text("no final test evaluation (interrupted run?)", muted=True)],
                            "classify")]
        res = json.loads(path.read_text())
        meta_path = run_dir / META_FILE
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        sizes = meta.get("sizes", {})
        figs = run_dir / "figures"
        classes = [r["class"] for r in res["per_class"]]
        per_class = [{k: r[k] for k in ("class", "precision", "recall", "f1", "support")} for r in res["per_class"]]
        summary = [["test accuracy", res["accuracy"]], ["macro F1", res["macro_f1"]], ["test images", res["n"]]]
        return [
            Section("Test results", [
                Table(summary, ["metric (test split)", "value"]),
                Text(f"data: {meta.get('dataset', '?')} from {meta.get('source', '?')}; train {sizes.get('train', '?')}, "
                     f"validation {sizes.get('val', '?')} (picks the best checkpoint), test {sizes.get('test', '?')} "
                     "(used once, here).", muted=True),
                Table(per_class, title="Per-class precision, recall and F1 (test split)", sortable=True)], "classify"),
            Section("Confusion matrix", [
                Figure(figs / "confusion_matrix.png", "rows: true class, columns: predicted; counts and normalised"),
                Table(per_class, title="Per class beside it: precision (column), recall (row), F1, support"),
                Table([[classes[i], *row] for i, row in enumerate(res["confusion"])], ["true \\ predicted", *classes],
                      title="Counts (rows true, columns predicted)"),
                Table([[f"{p['a']} / {p['b']}", p["a_as_b"], p["b_as_a"], p["total"]] for p in res["most_confused"]],
                      ["pair a / b", "a predicted as b", "b predicted as a", "total"], title="Most-confused pairs")],
                "confusion"),
            Section("Prediction gallery", [Figure(figs / "gallery.png", "predicted class and probability (true class "
                                                  "below); green right, red wrong")], "gallery"),
            Section("Top losses", [Figure(figs / "top_losses.png", "the test images with the highest loss")],
                    "top-losses"),
            Section("First-layer kernels", [Figure(figs / "kernels.png", "the learned 2D filters the first conv "
                                                   "layer slides over the image (edge and blob detectors)")],
                    "kernels"),
        ]
