"""Sequence forecasting: RNN / LSTM / GRU (and the window MLP) against naive baselines.

The series (covid-hu, or any CSV column) is split in time: a training part, a validation part (early
stopping, ``data.val_days``) and a backtest part (the last ``data.backtest_days`` steps). Scaling is fitted
on the training part only. Every neural model is trained with the one engine loop on windows whose
targets end before the validation part; the best checkpoint (validation MAE) is then scored in a
rolling-origin backtest: at every origin in the backtest part each model sees the history up to the
origin and forecasts 1..horizon steps; nothing is refitted.

Metrics (original units of the prepared series): MAE, RMSE, and MASE, which here is the model's MAE
divided by the seasonal naive forecast's MAE on the same origins and horizon (seasonal naive = 1.0,
below 1 is better). Naive and seasonal naive always run beside the nets; ETS and ARIMA join with
``model.classical=true`` (needs statsmodels).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import TrainConfig, bounded, choice
from neuralsight.errors import ConfigError, DataError, UserError

PRESET = "covid"
NEURAL = ("lstm", "gru", "rnn", "mlp")
RECURRENT = ("lstm", "gru", "rnn")
BASELINES = ("naive", "seasonal_naive")
CLASSICAL = ("ets", "arima")
REPORT_HORIZONS = (1, 7, 14)


@dataclass
class DataConfig:
    dataset: str = "covid-hu"
    data_dir: str | None = None
    csv: str | None = field(default=None, metadata={"help": "any CSV file (overrides dataset)"})
    date: str = "date"
    target: str = "new_cases"
    fill: str = choice("interpolate", ("interpolate", "zero", "previous", "error"))
    smoothing: str = choice("rolling7", ("none", "rolling7", "weekly"))
    log1p: bool = True
    start: str = field(default="", metadata={"help": "first date to use (YYYY-MM-DD, empty: all)"})
    end: str = field(default="", metadata={"help": "last date to use (YYYY-MM-DD, empty: all)"})
    backtest_days: int = bounded(182, min=1, help="last steps of the series scored by the backtest")
    val_days: int = bounded(91, min=1, help="steps before the backtest used for early stopping")
    origin_every: int = bounded(1, min=1, help="steps between backtest origins")
    season: int = bounded(0, min=0, help="seasonal naive period (0: 7 for daily, 52 for weekly data)")


@dataclass
class ModelConfig:
    models: list[str] = field(default_factory=lambda: ["lstm", "gru", "rnn", "mlp"])
    input_window: int = bounded(28, min=2)
    horizon: int = bounded(14, min=1)
    hidden_size: int = bounded(64, min=1)
    num_layers: int = bounded(1, min=1)
    dropout: float = bounded(0.0, min=0, max=0.9)
    quantiles: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.9])
    residual: bool = True
    classical: bool = False

    def check(self) -> None:
        bad = [m for m in self.models if m not in NEURAL]
        if bad or not self.models:
            raise ConfigError(f"config key 'model.models' = {self.models!r}: unknown or empty",
                              f"choose from {list(NEURAL)}")
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"config key 'model.models' = {self.models!r} lists a model twice")


@dataclass
class PositionConfig:
    enabled: bool = True
    steps: int = bounded(200, min=1)
    train_size: int = bounded(384, min=16)
    seed: int = 0


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    position: PositionConfig = field(default_factory=PositionConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=0, steps=600, batch_size=64, lr=3e-3,
                                                                   eval_every=50, warmup=0.05, threads=1))


# ----------------------------------------------------------------------------- data


@dataclass
class Prepared:
    """The prepared series split in time, in original units (``values``) and model space (``z``)."""

    series: object                 # data.series.Series after smoothing (original units)
    raw_filled: int                # dates filled in the raw file
    fill_report: str
    transform: object              # data.series.Transform, fitted on values[:val_start]
    z: object                      # (T,) float32 tensor, model space
    val_start: int
    test_start: int
    season: int

    @property
    def values(self):
        return self.series.values


def series_source(data: DataConfig, csv_override: Path | None = None) -> Path:
    """Which CSV to read: an explicit file, data.csv, --data pointing at a file, or the catalog's covid-hu."""
    if csv_override is not None:
        return Path(csv_override)
    if data.csv:
        return Path(data.csv).expanduser()
    if data.data_dir and Path(data.data_dir).expanduser().is_file():
        return Path(data.data_dir).expanduser()
    from neuralsight.data.catalog import locate

    if data.dataset != "covid-hu":
        raise DataError(f"dataset '{data.dataset}' is not a series", "use covid-hu or data.csv=FILE")
    return locate("covid-hu", data.data_dir) / "hungary_daily_cases.csv"


def load_series(data: DataConfig, csv_override: Path | None = None):
    """Read, cut to [start, end], and smooth; returns (prepared Series, raw Series)."""
    import datetime as dt

    from neuralsight.data.series import Series, prepare_values, read_csv

    path = series_source(data, csv_override)
    raw = read_csv(path, data.date, data.target, fill=data.fill)
    keep = [True] * len(raw)
    for key, cmp in (("start", lambda d, b: d >= b), ("end", lambda d, b: d <= b)):
        text = getattr(data, key)
        if text:
            try:
                bound = dt.date.fromisoformat(text)
            except ValueError:
                raise ConfigError(f"config key 'data.{key}' = {text!r} is not a date", "use YYYY-MM-DD") from None
            keep = [k and cmp(d, bound) for k, d in zip(keep, raw.dates)]
    if not all(keep):
        idx = [i for i, k in enumerate(keep) if k]
        if not idx:
            raise ConfigError(f"data.start/data.end leave no dates of {path} (it spans {raw.dates[0]}..{raw.dates[-1]})")
        raw = Series(dates=raw.dates[idx[0]: idx[-1] + 1], values=raw.values[idx[0]: idx[-1] + 1], name=raw.name,
                     source=raw.source, step_days=raw.step_days,
                     filled=[d for d in raw.filled if raw.dates[idx[0]] <= d <= raw.dates[idx[-1]]], fill=raw.fill)
    return prepare_values(raw, data.smoothing), raw


def prepare_series(series, cfg: Config, raw=None, transform=None) -> Prepared:
    """Split ``series`` in time and fit the transform on the training part only (unless one is given)."""
    import torch

    from neuralsight.data.series import Transform, check_length

    d, m = cfg.data, cfg.model
    season = d.season or (7 if series.step_days == 1 else 52 if series.step_days == 7 else 1)
    check_length(series, m.input_window, m.horizon, min_extra=d.val_days + d.backtest_days)
    T = len(series)
    test_start = T - d.backtest_days
    val_start = test_start - d.val_days
    if val_start < max(m.input_window, season) + m.horizon:
        raise DataError(f"{series.source}: only {val_start} steps before validation; need at least "
                        f"{max(m.input_window, season) + m.horizon} for one training window",
                        "lower data.backtest_days, data.val_days or model.input_window")
    if transform is None:
        transform = Transform.fit(series.values[:val_start], log1p=d.log1p)
    z = torch.as_tensor(transform.forward(series.values), dtype=torch.float32)
    raw = raw if raw is not None else series
    return Prepared(series=series, raw_filled=len(raw.filled), fill_report=raw.fill_report(), transform=transform,
                    z=z, val_start=val_start, test_start=test_start, season=season)


def backtest_origins(p: Prepared, horizon: int, every: int = 1):
    """Origins t (last observed index) whose targets t+1..t+horizon all lie in the backtest part."""
    import torch

    return torch.arange(p.test_start - 1, len(p.z) - horizon, every, dtype=torch.long)


# ----------------------------------------------------------------------------- models


def model_spec(kind: str, m: ModelConfig) -> dict:
    common = {"input_window": m.input_window, "horizon": m.horizon, "hidden_size": m.hidden_size,
              "dropout": m.dropout, "quantiles": list(m.quantiles), "residual": m.residual}
    if kind == "mlp":
        return {"name": "window_mlp", "kwargs": {**common, "num_layers": max(2, m.num_layers)}}
    return {"name": "forecaster", "kwargs": {**common, "cell": kind, "num_layers": m.num_layers}}


class ForecastTask:
    """The engine's view of one forecaster: windows as tensors on the device, pinball/MSE loss."""

    monitor = "val_mae"
    monitor_mode = "min"
    channels_last = False
    evaluate_at_start = True

    def __init__(self, kind: str, cfg: Config, p: Prepared, device):
        import torch

        from neuralsight.data.series import windows
        from neuralsight.models import create_model

        self.kind, self.p, self.device = kind, p, device
        m = cfg.model
        self.quantiles = tuple(m.quantiles)
        self.model_spec = model_spec(kind, m)
        self.model = create_model(self.model_spec["name"], **self.model_spec["kwargs"]).to(device)
        z = p.z.to(device)
        # Training targets end before the validation part; validation targets end before the backtest.
        self.x, self.y, _ = windows(z, m.input_window, m.horizon, 0, p.val_start)
        self.xv, self.yv, _ = windows(z, m.input_window, m.horizon, p.val_start, p.test_start)
        if len(self.x) == 0 or len(self.xv) == 0:
            raise DataError(f"{p.series.source}: no complete training or validation window",
                            "lower model.input_window/model.horizon or data.val_days")
        self.yv_orig = torch.as_tensor(p.transform.inverse(self.yv.double().cpu().numpy())).to(device)

    def train_size(self) -> int:
        return len(self.x)

    def get_batch(self, indices):
        idx = indices.to(self.device)
        return self.x[idx], self.y[idx]

    def training_step(self, model, batch):
        from neuralsight.models.forecaster import pinball_loss

        x, y = batch
        return pinball_loss(model(x), y, self.quantiles)

    def evaluate(self, model) -> dict:
        from neuralsight.models.forecaster import pinball_loss, point_index

        pred = model(self.xv).float()                                                # (N, H, Q)
        loss = float(pinball_loss(pred, self.yv, self.quantiles))
        point = self.p.transform.inverse(pred[..., point_index(self.quantiles)].double())  # (N, H)
        return {"val_loss": loss, "val_mae": float((point - self.yv_orig).abs().mean())}


def model_run(run, kind: str, primary: bool):
    """The primary model trains in the run itself; each other model in ``models/<kind>/``."""
    from neuralsight.engine.runs import Run

    if primary:
        return run
    sub = Run(path=run.path / "models" / kind, task=run.task, writer=run.writer)
    if run.writer:
        for d in (sub.path, sub.checkpoints):
            d.mkdir(parents=True, exist_ok=True)
    return sub


def checkpoint_dir(run_dir: Path, kind: str, primary: bool) -> Path:
    return Path(run_dir) / ("checkpoints" if primary else f"models/{kind}/checkpoints")


def train_models(cfg: Config, env, run, p: Prepared, resume: bool = False, progress_label=None) -> dict:
    """Train every model in ``cfg.model.models`` with the engine; returns {kind: (model, FitResult)}."""
    from neuralsight import config as C
    from neuralsight.engine.checkpoint import load_weights
    from neuralsight.engine.trainer import fit, seed_everything

    out = {}
    for i, kind in enumerate(cfg.model.models):
        seed_everything(cfg.train.seed + 1000 * i, cfg.train.deterministic)
        task = ForecastTask(kind, cfg, p, env.device)
        sub = model_run(run, kind, primary=(i == 0))
        again = resume and (sub.checkpoints / "last.json").is_file()
        result = fit(task, env, cfg.train, sub, C.to_dict(cfg), resume=again)
        if sub is not run:
            sub.close()
        load_weights(task.model, sub.checkpoints, "best", device=env.device)
        task.model.eval()
        out[kind] = (task.model, result)
    return out


def load_models(run_dir: Path, cfg: Config, device) -> dict:
    """Rebuild every trained model of a run from its best checkpoint."""
    from neuralsight.engine.checkpoint import load_weights, read_state
    from neuralsight.errors import CheckpointError
    from neuralsight.models import create_model

    models = {}
    for i, kind in enumerate(cfg.model.models):
        ck = checkpoint_dir(run_dir, kind, primary=(i == 0))
        if not (ck / "best.json").is_file():
            raise CheckpointError(f"{ck} has no best checkpoint for model '{kind}'",
                                  "the run did not finish training; retrain or --resume it")
        spec = read_state(ck, "best")["model"]
        model = create_model(spec["name"], **spec["kwargs"]).to(device)
        load_weights(model, ck, "best", device=device)
        models[kind] = model.eval()
    return models


# ----------------------------------------------------------------------------- forecasting and metrics


def forecast_at(models: dict, p: Prepared, origins, horizon: int, window: int, quantiles, device,
                classical: bool = False) -> dict:
    """Forecasts of every model (and baseline) from each origin, in original units.

    Returns:
        {name: {"point": (N, H) float64 tensor, "lower"/"upper": (N, H) or None}}.
    """
    import torch

    from neuralsight.models.forecaster import classical_forecasts, naive, point_index, seasonal_naive

    y = torch.as_tensor(p.values, dtype=torch.float64)
    out: dict = {"naive": {"point": naive(y, origins, horizon), "lower": None, "upper": None},
                 "seasonal_naive": {"point": seasonal_naive(y, origins, horizon, p.season), "lower": None,
                                    "upper": None}}
    z = p.z.to(device)
    x = z[origins.to(device)[:, None] + torch.arange(-window + 1, 1, device=device)[None, :]]   # (N, W)
    pi = point_index(quantiles)
    for kind, model in models.items():
        with torch.no_grad():
            pred = model(x).float().double().cpu()                                           # (N, H, Q)
        f = p.transform.inverse(pred)                                                         # original units
        entry = {"point": f[..., pi], "lower": None, "upper": None}
        if len(quantiles) >= 2:
            entry["lower"], entry["upper"] = f[..., 0], f[..., -1]
        out[kind] = entry
    if classical:
        for kind in CLASSICAL:
            zf = classical_forecasts(kind, p.z.double().numpy(), p.test_start, origins.numpy(), horizon, p.season)
            out[kind] = {"point": p.transform.inverse(torch.as_tensor(zf)), "lower": None, "upper": None}
    return out


def score(forecasts: dict, p: Prepared, origins, horizon: int) -> dict:
    """MAE, RMSE per horizon and overall; MASE against seasonal naive on the same origins; coverage."""
    import torch

    y = torch.as_tensor(p.values, dtype=torch.float64)
    truth = y[origins[:, None] + torch.arange(1, horizon + 1)[None, :]]        # (N, H)
    ref = (forecasts["seasonal_naive"]["point"] - truth).abs()
    ref_h, ref_all = ref.mean(0), ref.mean()
    scores = {}
    for name, f in forecasts.items():
        err = f["point"] - truth
        mae_h, rmse_h = err.abs().mean(0), err.pow(2).mean(0).sqrt()
        s = {"mae": float(err.abs().mean()), "rmse": float(err.pow(2).mean().sqrt()),
             "mase": float(err.abs().mean() / ref_all.clamp_min(1e-12)),
             "mae_h": mae_h.tolist(), "rmse_h": rmse_h.tolist(),
             "mase_h": (mae_h / ref_h.clamp_min(1e-12)).tolist()}
        if f.get("lower") is not None:
            s["coverage"] = float(((truth >= f["lower"]) & (truth <= f["upper"])).double().mean())
        scores[name] = s
    return scores


def flat_metrics(scores: dict, horizon: int) -> dict:
    out = {}
    for name, s in scores.items():
        out[f"{name}.mase"] = s["mase"]
        out[f"{name}.mae"] = s["mae"]
        out[f"{name}.rmse"] = s["rmse"]
        for h in REPORT_HORIZONS:
            if h <= horizon:
                out[f"{name}.mase_h{h}"] = s["mase_h"][h - 1]
        if "coverage" in s:
            out[f"{name}.coverage"] = s["coverage"]
    return out


def headline(scores: dict, horizon: int) -> dict:
    h = min(7, horizon)
    nets = [k for k in scores if k in RECURRENT] or [k for k in scores if k in NEURAL]
    best = min(nets, key=lambda k: scores[k]["mase_h"][h - 1])
    return {"name": f"{h}-step MASE, best net ({best})", "value": scores[best]["mase_h"][h - 1]}


# ----------------------------------------------------------------------------- train / evaluate / predict


def train(cfg: Config, env, run, resume: bool = False) -> dict:
    from neuralsight.io import atomic_write_json
    from neuralsight.runner import fit_summary

    series, raw = load_series(cfg.data)
    p = prepare_series(series, cfg, raw)
    trained = train_models(cfg, env, run, p, resume=resume)
    models = {k: m for k, (m, _) in trained.items()}
    m = cfg.model
    origins = backtest_origins(p, m.horizon, cfg.data.origin_every)
    forecasts = forecast_at(models, p, origins, m.horizon, m.input_window, m.quantiles, env.device,
                            classical=m.classical)
    scores = score(forecasts, p, origins, m.horizon)
    final = forecast_at(models, p, torch_tensor([len(p.z) - 1]), m.horizon, m.input_window, m.quantiles,
                        env.device)
    primary = m.models[0]
    result = trained[primary][1]
    # The figures show the net with the best validation MAE (chosen without looking at the backtest).
    shown = min(trained, key=lambda k: math.inf if trained[k][1].best_metric is None else trained[k][1].best_metric)
    info = {"series": {"source": p.series.source, "name": p.series.name, "steps": len(p.z),
                       "first": str(p.series.dates[0]), "last": str(p.series.dates[-1]),
                       "step_days": p.series.step_days, "fill_report": p.fill_report,
                       "filled": p.raw_filled, "season": p.season,
                       "val_start": str(p.series.dates[p.val_start]),
                       "test_start": str(p.series.dates[p.test_start])},
            "transform": p.transform.to_dict(), "origins": origins.tolist(), "scores": scores,
            "train_seconds": {k: r.train_seconds for k, (_, r) in trained.items()},
            "steps": {k: r.step for k, (_, r) in trained.items()},
            "val_mae": {k: r.best_metric for k, (_, r) in trained.items()}, "shown_model": shown}
    position = None
    if run.writer:
        atomic_write_json(run.path / "forecast.json", info)
        figures_for_run(run.path, p, forecasts, final, scores, origins, m, shown)
        if cfg.position.enabled:
            position = position_figure(run.path, cfg.position, env.device)
    metrics = flat_metrics(scores, m.horizon)
    if position:
        metrics.update({f"position.unseen_acc.{k}": v for k, v in position["unseen"].items()})
    return {"headline": headline(scores, m.horizon), "metrics": metrics, "fit": fit_summary(result),
            "interrupted": any(r.interrupted for _, r in trained.values()),
            "models": list(m.models), "missing_dates_filled": p.raw_filled}


def torch_tensor(values):
    import torch

    return torch.as_tensor(values, dtype=torch.long)


def position_figure(run_dir: Path, pos: PositionConfig, device) -> dict:
    from neuralsight.io import atomic_write_json
    from neuralsight.tasks.position import PositionSpec, plot, run_experiment

    spec = PositionSpec(steps=pos.steps, train_size=pos.train_size, seed=pos.seed)
    result = run_experiment(spec, device="cpu")
    atomic_write_json(Path(run_dir) / "position.json", result)
    plot(result, Path(run_dir) / "figures" / "position.png")
    return result


def _load_run(run_dir: Path):
    from neuralsight import config as C

    data = C.load_toml(Path(run_dir) / "config.toml")
    data.pop("task", None)
    return C.from_dict(Config, data)


def _run_transform(run_dir: Path):
    from neuralsight.data.series import Transform

    path = Path(run_dir) / "forecast.json"
    if not path.is_file():
        raise UserError(f"{run_dir} has no forecast.json", "the run did not finish; retrain it")
    return Transform.from_dict(json.loads(path.read_text())["transform"])


def evaluate(run_dir: Path, opts: dict) -> dict:
    """Re-run the backtest of a saved run (its best checkpoints) on its data; returns flat metrics."""
    from neuralsight.engine.device import resolve_device

    cfg = _load_run(run_dir)
    if opts.get("data_dir"):
        cfg.data.data_dir = str(opts["data_dir"])
    device = resolve_device("cpu" if cfg.train.device == "auto" else cfg.train.device)
    series, raw = load_series(cfg.data)
    p = prepare_series(series, cfg, raw, transform=_run_transform(run_dir))
    models = load_models(run_dir, cfg, device)
    m = cfg.model
    origins = backtest_origins(p, m.horizon, cfg.data.origin_every)
    scores = score(forecast_at(models, p, origins, m.horizon, m.input_window, m.quantiles, device), p, origins,
                   m.horizon)
    return flat_metrics(scores, m.horizon)


def predict(run_dir: Path, inputs: list, opts: dict) -> int:
    """Forecast from the end of the run's series (or of a new CSV); write forecast.csv and forecast.png."""
    import csv
    import io

    from neuralsight.data.series import check_length
    from neuralsight.io import atomic_write_text

    cfg = _load_run(run_dir)
    m = cfg.model
    horizon = opts.get("horizon") or m.horizon
    if not 1 <= horizon <= m.horizon:
        raise UserError(f"--horizon {horizon} is outside 1..{m.horizon}, the horizon this run was trained for",
                        f"retrain with --set model.horizon={horizon} for longer forecasts")
    for key in ("date", "target"):
        if key in opts:
            setattr(cfg.data, key, str(opts[key]))
    if len(inputs) > 1:
        raise UserError("predict takes at most one CSV file for a forecast run")
    csv_path = Path(inputs[0]) if inputs else None
    if csv_path is not None:
        cfg.data.start = cfg.data.end = ""
    series, raw = load_series(cfg.data, csv_override=csv_path)
    check_length(series, max(m.input_window, 2 * 7), 0)
    transform = _run_transform(run_dir)
    import torch

    z = torch.as_tensor(transform.forward(series.values), dtype=torch.float32)
    season = cfg.data.season or (7 if series.step_days == 1 else 52 if series.step_days == 7 else 1)
    p = Prepared(series=series, raw_filled=len(raw.filled), fill_report=raw.fill_report(), transform=transform,
                 z=z, val_start=len(z), test_start=len(z), season=season)
    device = torch.device("cpu")
    models = load_models(run_dir, cfg, device)
    origin = torch_tensor([len(z) - 1])
    if len(z) - 1 - season * math.ceil(horizon / season) < 0:
        raise DataError(f"{series.source}: too short for a seasonal naive forecast of {horizon} steps")
    f = forecast_at(models, p, origin, m.horizon, m.input_window, m.quantiles, device)
    out = Path(opts.get("out") or Path(run_dir) / "predictions")
    out.mkdir(parents=True, exist_ok=True)
    names = list(f)
    header = ["date", "step"]
    for n in names:
        header.append(n)
        if f[n]["lower"] is not None:
            header += [f"{n}_q{m.quantiles[0]:g}", f"{n}_q{m.quantiles[-1]:g}"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for h in range(horizon):
        row: list = [series.date_after(h + 1).isoformat(), h + 1]
        for n in names:
            row.append(f"{float(f[n]['point'][0, h]):.4f}")
            if f[n]["lower"] is not None:
                row += [f"{float(f[n]['lower'][0, h]):.4f}", f"{float(f[n]['upper'][0, h]):.4f}"]
        w.writerow(row)
    csv_out = out / "forecast.csv"
    atomic_write_text(csv_out, buf.getvalue())
    shown = json.loads((Path(run_dir) / "forecast.json").read_text()).get("shown_model", m.models[0])
    png = plot_future(series, f, horizon, out / "forecast.png", shown)
    if opts.get("json"):
        print(json.dumps({"csv": str(csv_out), "plot": str(png), "horizon": horizon,
                          "from": str(series.dates[-1]), "fill_report": raw.fill_report()}))
    else:
        print(f"forecast of {horizon} steps after {series.dates[-1]} ({raw.fill_report()})")
        print(f"csv: {csv_out}\nplot: {png}")
    return 0


# ----------------------------------------------------------------------------- figures

COLORS = {"lstm": "tab:blue", "gru": "tab:green", "rnn": "tab:orange", "mlp": "tab:red", "naive": "grey",
          "seasonal_naive": "black", "ets": "tab:purple", "arima": "tab:brown"}


def _dates(series, idx):
    return [series.dates[i] for i in idx]


def plot_future(series, f: dict, horizon: int, path: Path, primary: str, history: int = 120) -> Path:
    import datetime as dt

    from neuralsight.viz.figures import plt, save

    plt_ = plt()
    fig, ax = plt_.subplots(figsize=(9, 3.8))
    n = len(series)
    lo = max(0, n - history)
    ax.plot(series.dates[lo:], series.values[lo:], color="black", lw=1.2, label=f"{series.name} (history)")
    future = [series.dates[-1] + dt.timedelta(days=series.step_days * (h + 1)) for h in range(horizon)]
    for name, e in f.items():
        ax.plot(future, e["point"][0, :horizon].numpy(), color=COLORS.get(name), lw=2 if name == primary else 1,
                ls="-" if name in NEURAL else "--", label=name)
    e = f.get(primary)
    if e and e["lower"] is not None:
        ax.fill_between(future, e["lower"][0, :horizon].numpy(), e["upper"][0, :horizon].numpy(),
                        color=COLORS.get(primary), alpha=0.2, label=f"{primary} interval")
    ax.set_title(f"forecast of {horizon} steps after {series.dates[-1]}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.autofmt_xdate()
    return save(fig, path)


def figures_for_run(run_dir: Path, p: Prepared, forecasts: dict, final: dict, scores: dict, origins,
                    m: ModelConfig, primary: str) -> None:
    import datetime as dt

    from neuralsight.viz.figures import plt, save

    fig_dir = Path(run_dir) / "figures"
    pl = plt()
    s = p.series
    T = len(s)

    # 1. History with forecasts and intervals: backtest part, a few origins' forecasts, and the future.
    fig, ax = pl.subplots(figsize=(10, 4))
    lo = max(0, p.test_start - 3 * m.horizon)
    ax.plot(s.dates[lo:], s.values[lo:], color="black", lw=1.2, label="actual")
    picks = sorted(set(int(k) for k in _spread(len(origins), 4)))
    for j, k in enumerate(picks):
        o = int(origins[k])
        days = _dates(s, range(o + 1, o + 1 + m.horizon))
        e = forecasts[primary]
        ax.plot(days, e["point"][k].numpy(), color=COLORS[primary], lw=1.6, label=primary if j == 0 else None)
        if e["lower"] is not None:
            ax.fill_between(days, e["lower"][k].numpy(), e["upper"][k].numpy(), color=COLORS[primary], alpha=0.2,
                            label=f"{m.quantiles[0]:g}-{m.quantiles[-1]:g} interval" if j == 0 else None)
        ax.plot(days, forecasts["seasonal_naive"]["point"][k].numpy(), color="black", ls="--", lw=0.9,
                label="seasonal naive" if j == 0 else None)
    future = [s.dates[-1] + dt.timedelta(days=s.step_days * (h + 1)) for h in range(m.horizon)]
    e = final[primary]
    ax.plot(future, e["point"][0].numpy(), color=COLORS[primary], lw=2.2, ls=":", label=f"{primary}: future")
    if e["lower"] is not None:
        ax.fill_between(future, e["lower"][0].numpy(), e["upper"][0].numpy(), color=COLORS[primary], alpha=0.12)
    ax.axvline(s.dates[p.test_start], color="tab:red", lw=0.8, ls=":")
    ax.set_title(f"{s.name}: backtest forecasts of {primary} (best validation MAE) from a few origins, "
                 "and from the end")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.autofmt_xdate()
    save(fig, fig_dir / "forecasts.png")

    # 2. Error by horizon for every model.
    fig, axes = pl.subplots(1, 2, figsize=(11, 3.8))
    hs = list(range(1, m.horizon + 1))
    for name, sc in scores.items():
        style = {"color": COLORS.get(name), "ls": "-" if name in NEURAL else "--", "marker": "o", "ms": 3}
        axes[0].plot(hs, sc["mae_h"], label=name, **style)
        axes[1].plot(hs, sc["mase_h"], label=name, **style)
    axes[0].set_ylabel("MAE (original units)")
    axes[1].set_ylabel("MASE (seasonal naive = 1)")
    axes[1].axhline(1.0, color="black", lw=0.8)
    for ax in axes:
        ax.set_xlabel("horizon (steps ahead)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"backtest error by horizon ({len(origins)} origins)")
    save(fig, fig_dir / "error_by_horizon.png")

    # 3. The whole series, the split and the backtest origins.
    fig, ax = pl.subplots(figsize=(10, 3.4))
    ax.plot(s.dates, s.values, color="black", lw=0.9)
    ax.axvspan(s.dates[0], s.dates[p.val_start], color="tab:blue", alpha=0.08, label="train (scaler fitted here)")
    ax.axvspan(s.dates[p.val_start], s.dates[p.test_start], color="tab:orange", alpha=0.12, label="validation")
    ax.axvspan(s.dates[p.test_start], s.dates[T - 1], color="tab:red", alpha=0.08, label="backtest")
    ymin = float(s.values.min())
    ax.plot(_dates(s, origins.tolist()), [ymin] * len(origins), "|", color="tab:red", ms=8,
            label=f"{len(origins)} forecast origins")
    ax.set_title(f"{s.name}: {T} steps, {s.dates[0]}..{s.dates[-1]}; {p.fill_report}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    save(fig, fig_dir / "backtest_origins.png")


def _spread(n: int, k: int) -> list[int]:
    if n <= k:
        return list(range(n))
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]


# ----------------------------------------------------------------------------- report


def report_sections(run_dir: Path) -> list:
    from neuralsight.report.html import Section, esc, figure, table

    run_dir = Path(run_dir)
    path = run_dir / "forecast.json"
    if not path.is_file():
        return [Section("Forecast", '<p class="bad">no forecast.json: training did not finish</p>', "forecast")]
    info = json.loads(path.read_text())
    s = info["series"]
    scores = info["scores"]
    horizon = len(next(iter(scores.values()))["mae_h"])
    rows = []
    for name, sc in sorted(scores.items(), key=lambda kv: kv[1]["mase"]):
        row = {"model": name, "MAE": sc["mae"], "RMSE": sc["rmse"], "MASE": sc["mase"]}
        for h in REPORT_HORIZONS:
            if h <= horizon:
                row[f"MASE h={h}"] = sc["mase_h"][h - 1]
        row["interval coverage"] = sc.get("coverage", "")
        val = info.get("val_mae", {}).get(name)
        row["val MAE"] = val if val is not None else ""
        row["train s"] = round(info["train_seconds"].get(name, 0.0), 1) if name in info["train_seconds"] else ""
        rows.append(row)
    fig = run_dir / "figures"
    intro = (f"<p>Series <b>{esc(s['name'])}</b> from <code>{esc(s['source'])}</code>: {s['steps']} steps "
             f"({esc(s['first'])}..{esc(s['last'])}); {esc(s['fill_report'])}. Validation from {esc(s['val_start'])}, "
             f"backtest from {esc(s['test_start'])} with {len(info['origins'])} origins. MASE is the model's MAE "
             f"divided by the seasonal naive forecast's MAE (period {s['season']}) on the same origins and "
             f"horizon: below 1 beats it. On a smoothed series seasonal naive is weak at short horizons (it repeats "
             f"a week-old value); at 7 steps it equals the naive forecast, so 'MASE h=7' is the comparison "
             f"with the last value. Figures show <b>{esc(info.get('shown_model', ''))}</b>, the net with the "
             f"best validation MAE.</p>")
    out = [Section("Forecast backtest", intro + table(rows, sortable=True)
                   + figure(fig / "forecasts.png", "backtest forecasts with prediction intervals, and the forecast "
                                                   "from the end of the series")
                   + figure(fig / "error_by_horizon.png", "MAE and MASE by horizon for every model")
                   + figure(fig / "backtest_origins.png", "the split and the rolling backtest origins"),
                   "forecast")]
    pos_path = run_dir / "position.json"
    if pos_path.is_file():
        pos = json.loads(pos_path.read_text())
        prow = [{"model": k, "accuracy at trained positions": pos["seen"][k],
                 "accuracy at unseen positions": pos["unseen"][k]} for k in pos["accuracy"]]
        text = ("<p>The same short pattern (against a reversed distractor) placed only at the first "
                f"{pos['train_positions']} positions during training, tested at every position of a "
                f"{pos['spec']['length']}-step sequence. The feed-forward net has separate weights for each "
                "position and fails where it never saw the pattern; the 1D CNN and the LSTM share one detector "
                "across positions and carry it over.</p>")
        out.append(Section("Why position matters", text + table(prow) + figure(fig / "position.png",
                           "accuracy by pattern position (shaded: positions seen in training)"), "position"))
    return out

