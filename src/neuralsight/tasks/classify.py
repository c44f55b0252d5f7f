"""Image classification with a CNN: Fashion-MNIST (or any image folder per class), end to end.

Data lives on the device as uint8 ``(N, C, H, W)`` tensors (Fashion-MNIST's 60k+10k images are 55 MB);
each batch is gathered by index, scaled to [0, 1] and augmented there (random flips and shifts), and
the model normalises its own input (the mean/std are constructor arguments stored in the checkpoint).
A validation split (``data.val_size`` images, fixed seed) is carved from the training set and picks the
best checkpoint; the test set is touched once, by the final evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import TrainConfig, bounded, choice
from neuralsight.errors import ConfigError, DataError, UserError

PRESET = "fashion"
EVAL_FILE = "eval_test.json"
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


# ---- data ---------------------------------------------------------------------------------------------

@dataclass
class Split:
    x: object          # uint8 (N, C, H, W) on the device
    y: object          # int64 (N,) on the device


@dataclass
class Data:
    classes: list[str]
    train: Split
    val: Split
    test: Split
    source: str


def load_data(cfg: DataConfig, device, warn=print) -> Data:
    """Load the dataset named in ``cfg`` as uint8 tensors on ``device``, with a seeded validation split."""
    import numpy as np
    import torch

    if cfg.dataset == "fashion-mnist":
        from neuralsight.data.catalog import locate
        from neuralsight.data.idx import FASHION_CLASSES, load_mnist_split

        folder = locate("fashion-mnist", cfg.data_dir)
        xtr, ytr = load_mnist_split(folder, "train")
        xte, yte = load_mnist_split(folder, "test")
        xtr, xte = xtr[:, None], xte[:, None]  # (N, 1, 28, 28)
        if cfg.channels == 3:
            xtr, xte = np.repeat(xtr, 3, 1), np.repeat(xte, 3, 1)
        classes, source = list(FASHION_CLASSES), str(folder)
    elif cfg.dataset == "folder":
        if not cfg.data_dir:
            raise ConfigError("data.dataset = 'folder' needs a folder", "pass --data DIR (one sub-folder per class)")
        from neuralsight.data.imagefolder import load_image_folder

        classes, (xtr, ytr), (xte, yte) = load_image_folder(
            cfg.data_dir, (cfg.image_size, cfg.image_size), cfg.channels or 3, cfg.test_fraction, warn=warn)
        source = str(cfg.data_dir)
    else:
        raise ConfigError(f"data.dataset = '{cfg.dataset}' is not an image-classification dataset",
                          "use fashion-mnist, or folder with --data DIR")
    if cfg.train_limit:
        xtr, ytr = xtr[: cfg.train_limit], ytr[: cfg.train_limit]
    rng = np.random.default_rng(0)  # the split does not move with the training seed
    order = rng.permutation(len(xtr))
    n_val = min(cfg.val_size, len(xtr) // 5) if len(xtr) > 1 else 0
    val_idx, tr_idx = np.sort(order[:n_val]), np.sort(order[n_val:])

    def split(x, y) -> Split:
        return Split(torch.from_numpy(np.array(x, dtype=np.uint8, order="C")).to(device),
                     torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device))

    return Data(classes, split(xtr[tr_idx], ytr[tr_idx]), split(xtr[val_idx], ytr[val_idx]), split(xte, yte), source)


def augment(x, flip: bool, shift: int):
    """Random horizontal flips and translations by up to ``shift`` pixels, per image, on x's device.

    Args:
        x: float ``(B, C, H, W)``.
    """
    import torch
    import torch.nn.functional as F

    b, c, h, w = x.shape
    if flip:
        mask = torch.rand(b, device=x.device) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    if shift > 0:
        padded = F.pad(x, (shift, shift, shift, shift))  # (B, C, H+2s, W+2s), zero = background
        dy = torch.randint(0, 2 * shift + 1, (b, 1), device=x.device)
        dx = torch.randint(0, 2 * shift + 1, (b, 1), device=x.device)
        rows = (dy + torch.arange(h, device=x.device))[:, None, :, None].expand(b, c, h, w + 2 * shift)
        x = padded.gather(2, rows)  # (B, C, H, W+2s)
        cols = (dx + torch.arange(w, device=x.device))[:, None, None, :].expand(b, c, h, w)
        x = x.gather(3, cols)  # (B, C, H, W)
    return x


def build_model_kwargs(cfg: ModelConfig, in_channels: int, num_classes: int, image_size, mean, std) -> dict:
    from neuralsight.models.cnn import PRESETS, parse_stage

    if cfg.arch == "custom":
        try:
            spec = {"stages": [parse_stage(s) for s in cfg.stages], "dense": [128], "dropout": 0.0}
        except ValueError as err:
            raise ConfigError(f"model.stages: {err}") from None
    else:
        spec = json.loads(json.dumps(PRESETS[cfg.arch]))
    if cfg.dense is not None:
        spec["dense"] = list(cfg.dense)
    if cfg.dropout is not None:
        spec["dropout"] = cfg.dropout
    return {**spec, "in_channels": in_channels, "num_classes": num_classes, "image_size": list(image_size),
            "activation": cfg.activation, "padding": cfg.padding, "input_mean": mean, "input_std": std}


class ClassifyTask:
    """The object the training loop drives (see engine/trainer.py ``TrainTask``)."""

    monitor = "val_acc"
    monitor_mode = "max"
    channels_last = True

    def __init__(self, cfg: Config, data: Data, device):
        import torch

        from neuralsight.models import create_model

        self.cfg, self.data, self.device = cfg, data, device
        x = data.train.x
        xf = x.float() / 255
        mean = xf.mean(dim=(0, 2, 3)).tolist()
        std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
        kwargs = build_model_kwargs(cfg.model, x.shape[1], len(data.classes), x.shape[2:], mean, std)
        try:
            self.model = create_model("cnn", **kwargs).to(device)
        except ValueError as err:
            raise ConfigError(f"model: {err}") from None
        self.model_spec = {"name": "cnn", "kwargs": kwargs}
        self.memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format

    def train_size(self) -> int:
        return len(self.data.train.y)

    def get_batch(self, indices):
        idx = indices.to(self.device, non_blocking=True)
        x = self.data.train.x[idx].float().div_(255)  # (B, C, H, W) in [0, 1]
        d = self.cfg.data
        if d.augment:
            x = augment(x, d.flip, d.shift)
        return x.contiguous(memory_format=self.memory_format), self.data.train.y[idx]

    def training_step(self, model, batch):
        import torch.nn.functional as F

        x, y = batch
        logits = model(x)  # (B, num_classes)
        return F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.model.label_smoothing)

    def evaluate(self, model) -> dict[str, float]:
        if len(self.data.val.y) == 0:
            return {}
        out = predict_split(model, self.data.val, self.cfg.data.eval_batch_size, self.memory_format)
        return {"val_loss": out["loss"].mean().item(), "val_acc": (out["pred"] == self.data.val.y).float().mean().item()}


def predict_split(model, split: Split, batch_size: int, memory_format=None) -> dict:
    """Logits-derived outputs for a whole split: ``prob (N, K)``, ``pred (N,)``, ``loss (N,)`` (on the device)."""
    import torch
    import torch.nn.functional as F

    memory_format = memory_format or torch.contiguous_format
    probs, losses = [], []
    for i in range(0, len(split.y), batch_size):
        x = split.x[i:i + batch_size].float().div_(255).contiguous(memory_format=memory_format)
        logits = model(x).float()  # (b, K)
        probs.append(logits.softmax(-1))
        losses.append(F.cross_entropy(logits, split.y[i:i + batch_size], reduction="none"))
    prob = torch.cat(probs)
    return {"prob": prob, "pred": prob.argmax(-1), "loss": torch.cat(losses)}


# ---- metrics ------------------------------------------------------------------------------------------

def classification_metrics(y_true, y_pred, classes: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro averages, confusion matrix, most-confused pairs.

    Args:
        y_true, y_pred: int ``(N,)`` tensors or arrays.
    """
    import numpy as np

    t = np.asarray(y_true.cpu() if hasattr(y_true, "cpu") else y_true, dtype=np.int64)
    p = np.asarray(y_pred.cpu() if hasattr(y_pred, "cpu") else y_pred, dtype=np.int64)
    k = len(classes)
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)  # rows: true, cols: predicted
    tp = np.diag(cm).astype(float)
    support = cm.sum(1)
    precision = np.divide(tp, cm.sum(0), out=np.zeros(k), where=cm.sum(0) > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    per_class = [{"class": classes[i], "precision": float(precision[i]), "recall": float(recall[i]),
                  "f1": float(f1[i]), "support": int(support[i])} for i in range(k)]
    off = [(int(cm[i, j] + cm[j, i]), i, j) for i in range(k) for j in range(i + 1, k) if cm[i, j] + cm[j, i] > 0]
    pairs = [{"a": classes[i], "b": classes[j], "a_as_b": int(cm[i, j]), "b_as_a": int(cm[j, i]), "total": n}
             for n, i, j in sorted(off, reverse=True)[:5]]
    return {"accuracy": float(tp.sum() / max(1, len(t))), "macro_precision": float(precision.mean()),
            "macro_recall": float(recall.mean()), "macro_f1": float(f1.mean()), "per_class": per_class,
            "confusion": cm.tolist(), "most_confused": pairs, "n": int(len(t))}


def write_figures(fig_dir: Path, split: Split, out: dict, classes: list[str], seed: int = 0,
                  prefix: str = "") -> dict:
    """Confusion matrix, prediction gallery and top losses as PNGs (``prefix`` + name); returns their paths."""
    import torch

    from neuralsight.viz import classify as vf

    res = classification_metrics(split.y, out["pred"], classes)
    paths = {"confusion": vf.confusion_matrix(res["confusion"], classes, fig_dir / f"{prefix}confusion_matrix.png")}
    g = torch.Generator().manual_seed(seed)
    n = len(split.y)
    pick = torch.randperm(n, generator=g)[: min(18, n)].to(split.y.device)
    conf = out["prob"].max(-1).values
    paths["gallery"] = vf.gallery(split.x[pick].cpu().numpy(), split.y[pick].cpu(), out["pred"][pick].cpu(),
                                  conf[pick].cpu(), classes, fig_dir / f"{prefix}gallery.png",
                                  title=f"{prefix or 'test_'}predictions (green: right, red: wrong)".replace("_", " "))
    worst = out["loss"].argsort(descending=True)[: min(18, n)]
    p_true = out["prob"][worst, split.y[worst]]
    paths["top_losses"] = vf.top_losses(split.x[worst].cpu().numpy(), split.y[worst].cpu(), out["pred"][worst].cpu(),
                                        p_true.cpu(), out["loss"][worst].cpu(), classes,
                                        fig_dir / f"{prefix}top_losses.png")
    return paths


# ---- train / evaluate ---------------------------------------------------------------------------------

def train(cfg: Config, env, run, resume: bool = False) -> dict:
    from neuralsight import config as C
    from neuralsight import runner
    from neuralsight.engine.checkpoint import load_weights
    from neuralsight.engine.trainer import fit

    data = load_data(cfg.data, env.device)
    task = ClassifyTask(cfg, data, env.device)
    if run.writer:
        run.write_json(META_FILE, {"classes": data.classes, "image_size": list(data.train.x.shape[2:]),
                                   "channels": int(data.train.x.shape[1]), "dataset": cfg.data.dataset,
                                   "source": data.source, "sizes": {"train": len(data.train.y),
                                   "val": len(data.val.y), "test": len(data.test.y)}})
    result = fit(task, env, cfg.train, run, C.to_dict(cfg), resume=resume)
    summary = {"fit": runner.fit_summary(result), "interrupted": result.interrupted, "metrics": {},
               "headline": {"name": "test_acc", "value": None}}
    if result.interrupted or not env.dist.is_main:
        return summary
    model = task.model
    load_weights(model, run.checkpoints, "best", device=env.device)
    metrics = final_evaluation(model, data, data.test, cfg, env, run.path, seed=cfg.train.seed)
    summary["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    summary["metrics"]["val_acc"] = result.best_metric
    summary["headline"] = {"name": "test_acc", "value": metrics["accuracy"]}
    summary["params"] = sum(p.numel() for p in model.parameters())
    return summary


def final_evaluation(model, data: Data, split: Split, cfg: Config, env, run_dir: Path, seed: int = 0,
                     name: str = "test") -> dict:
    """Evaluate on ``split``, write figures and ``eval_<name>.json``; returns the metrics."""
    import torch

    from neuralsight.io import atomic_write_json

    if len(split.y) == 0:
        raise DataError(f"the {name} split is empty; add images or lower data.test_fraction")
    model.eval()
    fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    with torch.no_grad(), env.autocast():
        out = predict_split(model, split, cfg.data.eval_batch_size, fmt)
    res = classification_metrics(split.y, out["pred"], data.classes)
    res["loss"] = float(out["loss"].mean())
    # The report shows the test figures; another split's figures get its name as a prefix.
    paths = write_figures(Path(run_dir) / "figures", split, out, data.classes, seed,
                          prefix="" if name == "test" else f"{name}_")
    res["figures"] = {k: str(Path(v).name) for k, v in paths.items()}
    atomic_write_json(Path(run_dir) / f"eval_{name}.json", res)
    return {"accuracy": res["accuracy"], "test_loss": res["loss"], "macro_f1": res["macro_f1"],
            "macro_precision": res["macro_precision"], "macro_recall": res["macro_recall"], **res}


# ---- saved runs ---------------------------------------------------------------------------------------

def load_run(run_dir: Path, device="cpu"):
    """Rebuild a run's model from its best checkpoint; returns ``(model, meta, cfg)``."""
    from neuralsight import config as C
    from neuralsight.engine.checkpoint import load_weights, read_state
    from neuralsight.models import create_model

    run_dir = Path(run_dir)
    state = read_state(run_dir / "checkpoints", "best")
    spec = state.get("model") or {}
    if spec.get("name") != "cnn":
        raise UserError(f"{run_dir} holds a '{spec.get('name')}' model, not a classify CNN")
    model = create_model("cnn", **spec["kwargs"]).to(device)
    load_weights(model, run_dir / "checkpoints", "best", device=device)
    model.eval()
    meta_path = run_dir / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {
        "classes": [str(i) for i in range(spec["kwargs"]["num_classes"])]}
    data = C.load_toml(run_dir / "config.toml")
    data.pop("task", None)
    cfg = C.from_dict(Config, data)
    return model, meta, cfg


def evaluate(run_dir: Path, opts: dict) -> dict:
    """``neuralsight eval RUN``: metrics of the best checkpoint on the test (or val) split."""
    from neuralsight.engine import distributed as dist
    from neuralsight.engine.device import resolve_device, resolve_precision
    from neuralsight.engine.trainer import Env

    device = resolve_device("auto")
    model, meta, cfg = load_run(run_dir, device)
    if opts.get("data_dir"):
        cfg.data.data_dir = str(opts["data_dir"])
    split_name = opts.get("split", "test")
    if split_name not in ("test", "val"):
        raise UserError(f"--split {split_name!r} is not a split", "use test or val")
    data = load_data(cfg.data, device)
    env = Env(device=device, precision=resolve_precision(cfg.train.precision, device), dist=dist.detect(), seed=0)
    split = data.test if split_name == "test" else data.val
    res = final_evaluation(model, data, split, cfg, env, Path(run_dir), name=split_name)
    return {"split": split_name, "accuracy": res["accuracy"], "loss": res["test_loss"],
            "macro_precision": res["macro_precision"], "macro_recall": res["macro_recall"],
            "macro_f1": res["macro_f1"], "n": res["n"]}


def load_inputs(paths: list[Path], meta: dict, invert: str = "auto"):
    """Preprocess image files for the model; returns ``(ok: [(path, uint8 (C, H, W))], failed: [(path, msg)])``."""
    from neuralsight.data.imagefolder import open_image, preprocess

    ok, failed = [], []
    size = tuple(meta.get("image_size", (28, 28)))
    channels = int(meta.get("channels", 1))
    for path in paths:
        try:
            ok.append((path, preprocess(open_image(path), size, channels, invert)))
        except DataError as err:
            failed.append((path, str(err)))
    return ok, failed


def predict(run_dir: Path, inputs: list[Path], opts: dict) -> int:
    """``neuralsight predict RUN IMAGES...``: class and top-k probabilities per image; exit 2 if any failed."""
    import sys

    import numpy as np
    import torch

    if not inputs:
        raise UserError("no images given", "usage: neuralsight predict RUN IMAGE [IMAGE ...]")
    invert = str(opts.get("invert", "auto"))
    if invert not in ("auto", "yes", "no"):
        raise UserError(f"--set invert={invert} is not allowed", "use auto, yes or no")
    model, meta, _ = load_run(run_dir)
    classes = meta["classes"]
    k = max(1, min(int(opts.get("top_k") or 3), len(classes)))
    ok, failed = load_inputs(inputs, meta, invert)
    results = []
    if ok:
        x = torch.from_numpy(np.stack([a for _, a in ok])).float() / 255  # (N, C, H, W)
        prob = model.predict_proba(x)  # (N, K)
        top_p, top_i = prob.topk(k, dim=-1)
        for (path, _), ps, idx in zip(ok, top_p.tolist(), top_i.tolist(), strict=True):
            results.append({"file": str(path), "class": classes[idx[0]], "probability": ps[0],
                            "top": [{"class": classes[i], "probability": p} for i, p in zip(idx, ps, strict=True)]})
    for path, msg in failed:
        results.append({"file": str(path), "error": msg})
    order = {str(p): i for i, p in enumerate(inputs)}
    results.sort(key=lambda r: order.get(r["file"], 0))
    if opts.get("json"):
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if "error" in r:
                print(f"error: {r['error']}", file=sys.stderr)
            else:
                tops = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])
                print(f"{r['file']}: {r['class']} ({r['probability']:.3f})  top-{k}: {tops}")
    return 2 if failed else 0


def explain(run_dir: Path, inputs: list[Path], opts: dict) -> list[Path]:
    """``neuralsight explain RUN [IMAGES]``: saliency, Grad-CAM, occlusion and feature maps as PNGs."""
    import numpy as np
    import torch

    from neuralsight.viz.explain import METHODS, explain_images

    model, meta, cfg = load_run(run_dir)
    method = opts.get("method") or "auto"
    methods = list(METHODS) if method == "auto" else [m.strip() for m in method.split(",")]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UserError(f"--method {bad[0]} does not apply to a classify run", f"choose from auto, {', '.join(METHODS)}")
    names: list[str] = []
    arrays = []
    if inputs:
        ok, failed = load_inputs(inputs, meta, "auto")
        if failed:
            raise DataError(failed[0][1])
        names = [Path(p).stem for p, _ in ok]
        arrays = [a for _, a in ok]
    else:
        data = load_data(cfg.data, torch.device("cpu"))
        index = opts.get("index")
        picks = [int(index)] if index is not None else list(range(4))
        for i in picks:
            if not 0 <= i < len(data.test.y):
                raise UserError(f"--index {i} is outside the test set (0..{len(data.test.y) - 1})")
            arrays.append(data.test.x[i].numpy())
            names.append(f"test{i}")
    x = torch.from_numpy(np.stack(arrays)).float() / 255
    out = Path(opts.get("out") or Path(run_dir) / "explain")
    return explain_images(model, x, names, meta["classes"], methods, out)


# ---- report -------------------------------------------------------------------------------------------

def report_sections(run_dir: Path) -> list:
    from neuralsight.report.html import Section, esc, figure, table

    run_dir = Path(run_dir)
    path = run_dir / EVAL_FILE
    if not path.is_file():
        return [Section("Classification", '<p class="muted">no final test evaluation (interrupted run?)</p>',
                        "classify")]
    res = json.loads(path.read_text())
    meta_path = run_dir / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    figs = run_dir / "figures"
    sizes = meta.get("sizes", {})
    head = (f'<div class="card"><div class="kpi">test accuracy<b>{100 * res["accuracy"]:.2f}%</b></div>'
            f'<div class="kpi">macro F1<b>{res["macro_f1"]:.4f}</b></div>'
            f'<div class="kpi">test images<b>{res["n"]:,}</b></div>'
            f'<p class="muted">data: {esc(meta.get("dataset", "?"))} from <code>{esc(meta.get("source", "?"))}</code>; '
            f'train {sizes.get("train", "?")}, validation {sizes.get("val", "?")} (picks the best checkpoint), '
            f'test {sizes.get("test", "?")} (used once, here).</p></div>')
    per_class = [{"class": r["class"], "precision": r["precision"], "recall": r["recall"], "f1": r["f1"],
                  "support": r["support"]} for r in res["per_class"]]
    classes = [r["class"] for r in res["per_class"]]
    cm_rows = [[classes[i], *row] for i, row in enumerate(res["confusion"])]
    pairs = [[f'{p["a"]} / {p["b"]}', p["a_as_b"], p["b_as_a"], p["total"]] for p in res["most_confused"]]
    return [
        Section("Test results", head + "<h3>Per-class precision, recall and F1</h3>" + table(per_class, sortable=True),
                "classify"),
        Section("Confusion matrix",
                figure(figs / "confusion_matrix.png", "rows: true class, columns: predicted; counts and normalised")
                + "<h3>Counts (rows true, columns predicted)</h3>" + table(cm_rows, ["true \\ predicted", *classes])
                + "<h3>Most-confused pairs</h3>" + table(pairs, ["pair a / b", "a predicted as b", "b predicted as a",
                                                               "total"]),
                "confusion"),
        Section("Prediction gallery", figure(figs / "gallery.png", "predicted class and probability (true class "
                                             "below); green right, red wrong"), "gallery"),
        Section("Top losses", figure(figs / "top_losses.png", "the test images with the highest loss"), "top-losses"),
    ]
