"""Sequence forecasting: RNN / LSTM / GRU (and the window MLP) against naive baselines, as one task.

This module holds the task: config, the engine adapter (one per model: the first trains in the run itself,
the others in ``models/<kind>/``), the final backtest of the best checkpoints over the last
``data.backtest_days`` steps (the test split), evaluate and predict over a saved run, and the report
sections. ``tasks/backtest.py`` holds the series, its split in time and the backtest's forecasts and scores;
``viz/forecast.py`` draws the figures; ``lecture/position.py`` is the position experiment of the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import neuralsight.tasks.backtest as backtest
from neuralsight.config import TrainConfig, bounded
from neuralsight.errors import ConfigError, DataError, UserError
from neuralsight.report.sections import Figure, Section, Table, Text
from neuralsight.tasks.backtest import NEURAL, DataConfig, Prepared
from neuralsight.tasks.base import Outcome, expand_inputs, failed, register_task

INFO_FILE = "forecast.json"


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


@dataclass
class PredictOptions:
    horizon: int | None = bounded(None, min=1, help="steps to forecast (default: the run's model.horizon)")
    date: str | None = field(default=None, metadata={"help": "date column of the CSV (default: the run's)"})
    target: str | None = field(default=None, metadata={"help": "value column of the CSV (default: the run's)"})


def model_spec(kind: str, m: ModelConfig) -> dict:
    common = {"input_window": m.input_window, "horizon": m.horizon, "hidden_size": m.hidden_size,
              "dropout": m.dropout, "quantiles": list(m.quantiles), "residual": m.residual}
    if kind == "mlp":
        return {"name": "window_mlp", "kwargs": {**common, "num_layers": max(2, m.num_layers)}}
    return {"name": "forecaster", "kwargs": {**common, "cell": kind, "num_layers": m.num_layers}}


class ForecastTrain:
    """The engine's view of one forecaster: windows as tensors on the device, pinball/MSE loss.

    ``model`` is built from ``model.*`` unless one is given (a saved run's, for its validation metrics).
    """

    monitor = "val_mae"
    monitor_mode = "min"
    channels_last = False
    evaluate_at_start = True
    item_unit = "windows"

    def __init__(self, kind: str, cfg: Config, p: Prepared, device, model=None):
        import torch

        from neuralsight.data.series import windows
        from neuralsight.models import create_model

        self.kind, self.p, self.device = kind, p, device
        m = cfg.model
        self.quantiles = tuple(m.quantiles)
        self.model_spec = model_spec(kind, m)
        if model is None:
            try:
                model = create_model(self.model_spec["name"], **self.model_spec["kwargs"]).to(device)
            except ValueError as err:
                raise ConfigError(f"model: {err}") from None
        self.model = model
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


def val_metrics(built: dict, env) -> dict:
    """``{kind}.val_loss`` / ``{kind}.val_mae`` of each adapter's model, computed as the engine did (autocast)."""
    import torch

    out = {}
    with torch.no_grad(), env.autocast():
        for kind, t in built.items():
            out.update({f"{kind}.{k}": v for k, v in t.evaluate(t.model).items()})
    return out


def _as_numpy(forecast: dict, row=slice(None)) -> dict:
    return {k: None if v is None else v[row].numpy() for k, v in forecast.items()}


@register_task
class Forecast:
    name = "forecast"
    help = "RNN/LSTM/GRU time-series forecasting against baselines (COVID-19 cases in Hungary)."
    preset = "covid"
    Config = Config
    PredictOptions = PredictOptions

    def run_name(self, cfg: Config) -> str | None:
        source = cfg.data.csv or cfg.data.data_dir  # a user's own CSV (data.csv, or the file --data names)
        return Path(source).stem if source and Path(source).suffix.lower() == ".csv" else None

    def build(self, cfg: Config, env, run) -> dict[str, ForecastTrain]:
        from neuralsight.engine.trainer import seed_everything

        series, raw = backtest.load_series(cfg.data)
        p = backtest.prepare_series(series, cfg, raw)
        built = {}
        for i, kind in enumerate(cfg.model.models):
            seed_everything(cfg.train.seed + 1000 * i, cfg.train.deterministic)  # model i's weights as in 0.1
            built[kind] = ForecastTrain(kind, cfg, p, env.device)
        return built

    def finish(self, cfg: Config, env, run, built: dict, fits: dict) -> Outcome:
        import torch

        m, p = cfg.model, next(iter(built.values())).p
        models = {kind: t.model for kind, t in built.items()}
        origins = backtest.backtest_origins(p, m.horizon, cfg.data.origin_every)
        forecasts = backtest.forecast_at(models, p, origins, m.horizon, m.input_window, m.quantiles, env.device,
                                         classical=m.classical)
        scores = backtest.score(forecasts, p, origins, m.horizon)
        final = backtest.forecast_at(models, p, torch.as_tensor([len(p.z) - 1]), m.horizon, m.input_window,
                                     m.quantiles, env.device)
        # The figures show the net with the best validation MAE (chosen without looking at the backtest).
        shown = min(fits, key=lambda k: math.inf if fits[k].best_metric is None else fits[k].best_metric)
        s = p.series
        run.write_json(INFO_FILE, {
            "series": {"source": s.source, "name": s.name, "steps": len(p.z), "first": str(s.dates[0]),
                       "last": str(s.dates[-1]), "step_days": s.step_days, "fill_report": p.fill_report,
                       "filled": p.raw_filled, "season": p.season, "val_start": str(s.dates[p.val_start]),
                       "test_start": str(s.dates[p.test_start])},
            "transform": p.transform.to_dict(), "origins": origins.tolist(), "scores": scores,
            "train_seconds": {k: f.train_seconds for k, f in fits.items()},
            "steps": {k: f.step for k, f in fits.items()},
            "val_mae": {k: f.best_metric for k, f in fits.items()}, "shown_model": shown})
        self._figures(run.figures, p, forecasts, final[shown], scores, origins, m, shown)
        test = backtest.flat_metrics(scores, m.horizon)
        if cfg.position.enabled:
            test.update({f"position.unseen_acc.{k}": v for k, v in self._position(run, cfg.position).items()})
        name, value = backtest.headline(scores, m.horizon)
        return Outcome(name, value, "test", val=val_metrics(built, env), test=test,
                       extra={"models": list(m.models), "missing_dates_filled": p.raw_filled})

    def _figures(self, fig_dir: Path, p: Prepared, forecasts: dict, future: dict, scores: dict, origins,
                 m: ModelConfig, shown: str) -> None:
        from neuralsight.viz import forecast as figures

        s, idx = p.series, origins.tolist()
        future_dates = [s.date_after(h + 1) for h in range(m.horizon)]
        figures.forecasts_figure(fig_dir / "forecasts.png", s.dates, s.values, p.test_start, idx, shown,
                                 _as_numpy(forecasts[shown]), forecasts["seasonal_naive"]["point"].numpy(),
                                 future_dates, _as_numpy(future, 0), f"{m.quantiles[0]:g}-{m.quantiles[-1]:g}", s.name)
        figures.error_by_horizon_figure(fig_dir / "error_by_horizon.png", scores, NEURAL, len(idx))
        figures.backtest_origins_figure(fig_dir / "backtest_origins.png", s.dates, s.values, p.val_start,
                                        p.test_start, idx, f"{s.name}: {len(s)} steps, {s.dates[0]}..{s.dates[-1]}; "
                                                           f"{p.fill_report}")

    def _position(self, run, pos: PositionConfig) -> dict:
        """The position experiment (position.json and figures/position.png); accuracy at unseen positions."""
        from neuralsight.engine import progress
        from neuralsight.lecture.position import PositionSpec, run_experiment
        from neuralsight.viz.position import plot

        with progress.status("position experiment: feed-forward net, LSTM and 1D CNN"):
            result = run_experiment(PositionSpec(steps=pos.steps, train_size=pos.train_size, seed=pos.seed),
                                    device="cpu")
        run.write_json("position.json", result)
        plot(result, run.figures / "position.png")
        return result["unseen"]

    def _saved(self, saved):
        """``(transform, {kind: model}, shown model)`` of a saved run: its models, as the first trains in the run
        itself and the others in ``models/<kind>/``, and the transform they were trained with."""
        from neuralsight.data.series import Transform

        info = saved.read_json(INFO_FILE)
        if info is None:
            raise UserError(f"{saved.path} has no {INFO_FILE}", "the run did not finish; retrain it")
        kinds = saved.cfg.model.models
        models = {kind: saved.model("" if i == 0 else kind) for i, kind in enumerate(kinds)}
        return Transform.from_dict(info["transform"]), models, info.get("shown_model", kinds[0])

    def evaluate(self, saved, split: str) -> dict:
        """``test``: the backtest (every model and baseline, as 0.1 scored it); ``val``: the metrics that chose
        each model's checkpoint, on the validation windows."""
        if split not in ("test", "val"):
            raise UserError(f"a forecast run has no '{split}' split", "use test (the backtest) or val")
        cfg, m = saved.cfg, saved.cfg.model
        transform, models, _ = self._saved(saved)
        series, raw = backtest.load_series(cfg.data)
        p = backtest.prepare_series(series, cfg, raw, transform=transform)
        if split == "val":
            return val_metrics({k: ForecastTrain(k, cfg, p, saved.device, model=v) for k, v in models.items()},
                               saved.env)
        origins = backtest.backtest_origins(p, m.horizon, cfg.data.origin_every)
        forecasts = backtest.forecast_at(models, p, origins, m.horizon, m.input_window, m.quantiles, saved.device)
        return backtest.flat_metrics(backtest.score(forecasts, p, origins, m.horizon), m.horizon)

    def predict(self, saved, inputs: list[Path], out: Path, options: PredictOptions) -> list[dict]:
        """Forecast from the end of the run's series (no inputs) or of each CSV: one row per series, naming the
        ``.csv`` (a row per step, a column per model, baseline and interval bound) and ``.png`` written."""
        horizon = options.horizon or saved.cfg.model.horizon
        if not 1 <= horizon <= saved.cfg.model.horizon:
            raise UserError(f"--horizon {horizon} is outside 1..{saved.cfg.model.horizon}, the horizon this run "
                            f"was trained for", f"retrain with --set model.horizon={horizon} for longer forecasts")
        fitted = self._saved(saved)
        paths = expand_inputs(inputs, (".csv",)) if inputs else [None]
        rows = []
        for i, path in enumerate(paths):
            twin = len(paths) > 1 and [q.stem for q in paths].count(path.stem) > 1
            stem = "forecast" if len(paths) == 1 else f"forecast-{path.stem}" + (f"-{i}" if twin else "")
            try:
                rows.append(self._forecast_file(saved, path, fitted, horizon, Path(out), stem, options))
            except DataError as err:
                if path is None:
                    raise  # the run's own series: nothing else to forecast
                rows.append(failed(path, err))
        return rows

    def _forecast_file(self, saved, path: Path | None, fitted, horizon: int, out: Path, stem: str,
                       options: PredictOptions) -> dict:
        import dataclasses

        import torch

        from neuralsight.io import atomic_write_text
        from neuralsight.viz.forecast import future_figure

        (transform, models, shown), m = fitted, saved.cfg.model
        columns = {k: v for k, v in (("date", options.date), ("target", options.target)) if v is not None}
        data = dataclasses.replace(saved.cfg.data, **columns, **({"start": "", "end": ""} if path else {}))
        series, raw = backtest.load_series(data, csv_override=path)
        p = backtest.prepare_whole(series, raw, transform, data, m.input_window, horizon)
        f = backtest.forecast_at(models, p, torch.as_tensor([len(p.z) - 1]), m.horizon, m.input_window,
                                 m.quantiles, saved.device)
        f = {k: _as_numpy(e, (0, slice(horizon))) for k, e in f.items()}
        future = [series.date_after(h + 1) for h in range(horizon)]
        out.mkdir(parents=True, exist_ok=True)
        csv_path = out / f"{stem}.csv"
        atomic_write_text(csv_path, backtest.forecast_csv(f, future, m.quantiles))
        png = future_figure(out / f"{stem}.png", series.dates, series.values, series.name, future, f, shown, NEURAL)
        return {"input": str(series.source), "from": str(series.dates[-1]), "to": str(future[-1]),
                "horizon": horizon, "model": shown, "fill_report": raw.fill_report(),
                "outputs": {"csv": str(csv_path), "plot": str(png)}}

    def report(self, run_dir: Path) -> list[Section]:
        import json

        run_dir, fig = Path(run_dir), Path(run_dir) / "figures"
        if not (run_dir / INFO_FILE).is_file():
            return [Section("Forecast", [Text(f"no {INFO_FILE}: training did not finish", muted=True)], "forecast")]
        info = json.loads((run_dir / INFO_FILE).read_text())
        s, scores = info["series"], info["scores"]
        horizon = len(next(iter(scores.values()))["mae_h"])
        rows = []
        for name, sc in sorted(scores.items(), key=lambda kv: kv[1]["mase"]):
            row = {"model": name, "MAE": sc["mae"], "RMSE": sc["rmse"], "MASE": sc["mase"]}
            row.update({f"MASE h={h}": sc["mase_h"][h - 1] for h in backtest.REPORT_HORIZONS if h <= horizon})
            val = info.get("val_mae", {}).get(name)
            row.update({"interval coverage": sc.get("coverage", ""), "val MAE": "" if val is None else val,
                        "train s": round(info["train_seconds"][name], 1) if name in info["train_seconds"] else ""})
            rows.append(row)
        intro = (f"Series {s['name']} from {s['source']}: {s['steps']} steps ({s['first']}..{s['last']}); "
                 f"{s['fill_report']}. Validation from {s['val_start']}, backtest (the test split) from "
                 f"{s['test_start']} with {len(info['origins'])} origins. MASE is the model's MAE divided by the "
                 f"seasonal naive forecast's MAE (period {s['season']}) on the same origins and horizon: below 1 "
                 "beats it. On a smoothed series seasonal naive is weak at short horizons (it repeats a week-old "
                 "value); at 7 steps it equals the naive forecast, so 'MASE h=7' is the comparison with the last "
                 f"value. Figures show {info.get('shown_model', '')}, the net with the best validation MAE.")
        out = [Section("Forecast backtest", [
            Text(intro), Table(rows, title="Backtest scores (test split; val MAE: validation split)", sortable=True),
            Figure(fig / "forecasts.png", "backtest forecasts with prediction intervals, and the forecast from the "
                                          "end of the series"),
            Figure(fig / "error_by_horizon.png", "MAE and MASE by horizon for every model"),
            Figure(fig / "backtest_origins.png", "the split and the rolling backtest origins")], "forecast")]
        if (run_dir / "position.json").is_file():
            pos = json.loads((run_dir / "position.json").read_text())
            text = (f"The same short pattern (against a reversed distractor) placed only at the first "
                    f"{pos['train_positions']} positions during training, tested at every position of a "
                    f"{pos['spec']['length']}-step sequence. The feed-forward net has separate weights for each "
                    "position and fails where it never saw the pattern; the 1D CNN and the LSTM share one detector "
                    "across positions and carry it over.")
            out.append(Section("Why position matters", [
                Text(text), Table([{"model": k, "accuracy at trained positions": pos["seen"][k],
                                    "accuracy at unseen positions": pos["unseen"][k]} for k in pos["accuracy"]]),
                Figure(fig / "position.png", "accuracy by pattern position (shaded: positions seen in training)")],
                "position"))
        return out
