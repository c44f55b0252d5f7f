"""Sequence forecasting: RNN / LSTM / GRU (and the window MLP) against baselines and classical peers, as one task.

Three windows (``data/series.py``): the nets train on the first; the validation window picks each net's
checkpoint and, by a backtest over it, the model named "best"; the test window is forecast once, after training.
Beside the nets: naive, seasonal naive and (``model.classical``) ETS and ARIMA chosen by AIC on the training
window; all are fitted there once, never refitted, and read the series up to each origin to forecast from it.
Scores (``engine/forecast_metrics.py``): MAE, RMSE, true MASE, MAE relative to seasonal naive, interval coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import TrainConfig, bounded
from neuralsight.data.series import SeriesConfig, SplitSeries, forecast_csv, load_series, split_series
from neuralsight.errors import ConfigError, DataError, UserError
from neuralsight.tasks.base import Outcome, expand_inputs, failed, register_task
from neuralsight.tasks.explaining import ForecastExplainOptions, explain_forecast
from neuralsight.tasks.forecasting import (  # noqa: F401 - score, fit_peers: re-exported for the tests and benchmarks
    CLASSICAL,
    HORIZONS,
    backtests,
    choose,
    fit_peers,
    flat_metrics,
    forecast_at,
    score,
)

INFO_FILE = "forecast.json"
NEURAL, RECURRENT = ("lstm", "gru", "rnn", "mlp"), ("lstm", "gru", "rnn")
MASE_TEXT = ("Hyndman & Koehler (2006): absolute errors over the in-sample MAE of the seasonal naive forecast "
             "(period {m}) on the series up to each forecast origin")


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
    classical: bool = field(default=True, metadata={"help": "ETS and ARIMA beside the nets (needs statsmodels)"})
    calibrate: bool = field(default=True, metadata={"help": "widen the intervals to their nominal level on the "
                                                            "validation window (split conformal)"})

    @property
    def nominal(self) -> float | None:  # the level the outer quantiles claim (0.1 and 0.9: 0.8); None: no interval
        return round(self.quantiles[-1] - self.quantiles[0], 10) if len(self.quantiles) >= 2 else None

    def check(self) -> None:
        if not self.models or set(self.models) - set(NEURAL) or len(set(self.models)) != len(self.models):
            raise ConfigError(f"config key 'model.models' = {self.models!r}: unknown, repeated or empty",
                              f"choose from {list(NEURAL)}, each once")


@dataclass
class PositionConfig:
    enabled: bool = True
    steps: int = bounded(200, min=1)
    train_size: int = bounded(384, min=16)
    seed: int = 0


@dataclass
class Config:
    data: SeriesConfig = field(default_factory=SeriesConfig)
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
    """The engine's view of one forecaster (``model`` given: a saved run's, for its validation metrics)."""

    monitor, monitor_mode, channels_last, evaluate_at_start, item_unit = "val_mae", "min", False, True, "windows"

    def __init__(self, kind: str, cfg: Config, p: SplitSeries, device, model=None):
        import torch

        from neuralsight.models import create_model

        self.kind, self.p, self.device, m = kind, p, device, cfg.model
        self.quantiles, self.model_spec = tuple(m.quantiles), model_spec(kind, m)
        if model is None:
            try:
                model = create_model(self.model_spec["name"], **self.model_spec["kwargs"]).to(device)
            except ValueError as err:
                raise ConfigError(f"model: {err}") from None
        # Training targets end before the validation window; validation targets end before the test window.
        self.model, (self.x, self.y), (self.xv, self.yv) = model, *p.supervised(m.input_window, m.horizon, device)
        self.yv_orig = torch.as_tensor(p.transform.inverse(self.yv.double().cpu().numpy())).to(device)

    def train_size(self) -> int:
        return len(self.x)

    def get_batch(self, indices):
        idx = indices.to(self.device)
        return self.x[idx], self.y[idx]

    def training_step(self, model, batch):
        from neuralsight.models.forecaster import pinball_loss

        return pinball_loss(model(batch[0]), batch[1], self.quantiles)

    def evaluate(self, model) -> dict:
        from neuralsight.models.forecaster import pinball_loss, point_index

        pred = model(self.xv).float()                                                # (N, H, Q)
        loss = float(pinball_loss(pred, self.yv, self.quantiles))
        point = self.p.transform.inverse(pred[..., point_index(self.quantiles)].double())  # (N, H)
        return {"val_loss": loss, "val_mae": float((point - self.yv_orig).abs().mean())}


def val_metrics(built: dict, env) -> dict:
    """``{kind}.val_loss`` / ``{kind}.val_mae`` of each adapter's model, computed as the engine did (autocast)."""
    import torch

    with torch.no_grad(), env.autocast():
        return {f"{kind}.{k}": v for kind, t in built.items() for k, v in t.evaluate(t.model).items()}


@register_task
class Forecast:
    name = "forecast"
    help = "RNN/LSTM/GRU time-series forecasting against baselines (COVID-19 cases in Hungary)."
    preset = "covid"
    Config, PredictOptions, ExplainOptions = Config, PredictOptions, ForecastExplainOptions
    explain = explain_forecast  # attributions over the input window and the recurrent gates (tasks/explaining.py)

    def run_name(self, cfg: Config) -> str | None:
        source = cfg.data.csv or cfg.data.data_dir  # a user's own CSV (data.csv, or the file --data names)
        return Path(source).stem if source and Path(source).suffix.lower() == ".csv" else None

    def build(self, cfg: Config, env, run) -> dict[str, ForecastTrain]:
        from neuralsight.engine.trainer import seed_everything

        series, raw = load_series(cfg.data)
        p = split_series(series, cfg.data, cfg.model.input_window, cfg.model.horizon, raw)
        built = {}
        for i, kind in enumerate(cfg.model.models):
            seed_everything(cfg.train.seed + 1000 * i, cfg.train.deterministic)  # model i's weights as in 0.1
            built[kind] = ForecastTrain(kind, cfg, p, env.device)
        return built

    def finish(self, cfg: Config, env, run, built: dict, fits: dict) -> Outcome:
        import torch

        from neuralsight.data.series import target_description
        from neuralsight.viz.forecast import backtest_figures

        m, p = cfg.model, next(iter(built.values())).p
        models = {kind: t.model for kind, t in built.items()}
        peers, skipped = fit_peers(p, m) if m.classical else ({}, "not fitted (model.classical=false)")
        bt = backtests(models, p, cfg, env.device, peers)
        (_, _, val), (origins, forecasts, test) = bt["val"], bt["test"]
        h, unit = min(7, m.horizon), {1: "day", 7: "week"}.get(p.series.step_days, "step")
        best = choose(val, [k for k in models if k in RECURRENT] or list(models), h)
        family = "recurrent net" if best in RECURRENT else "net"
        protocol = {"target_series": target_description(cfg.data, p.series), "season": p.season,
                    "mase": MASE_TEXT.format(m=p.season), "interval_nominal": m.nominal,
                    "interval_calibration": "split conformal on the validation window" if bt["calibration"] else None,
                    "windows": p.windows(), "origins": {w: len(bt[w][0]) for w in ("val", "test")},
                    "best": {"model": best, "family": family, "chosen_on": "val", "criterion": f"mase_h{h}"},
                    "classical": {k: f.describe() for k, f in peers.items()} or {"skipped": skipped},
                    "best_classical": peers and {"model": choose(val, list(peers), h), "chosen_on": "val"}}
        final = forecast_at({best: models[best]}, p, torch.as_tensor([len(p.z) - 1]), m, env.device,
                            widths=bt["calibration"])
        run.write_json(INFO_FILE, {
            "series": p.describe(), "transform": p.transform.to_dict(), "origins": origins.tolist(), "scores": test,
            "val_scores": val, "protocol": protocol, "train_seconds": {k: f.train_seconds for k, f in fits.items()},
            "steps": {k: f.step for k, f in fits.items()}, "val_mae": {k: f.best_metric for k, f in fits.items()},
            "shown_model": best, "calibration": bt["calibration"]})
        backtest_figures(run.figures, p, origins.tolist(), best, forecasts[best], {k: v if v is None else v[0] for k, v in
                         final[best].items()}, forecasts["seasonal_naive"]["point"], test, m.quantiles, NEURAL)
        metrics = flat_metrics(test)
        if cfg.position.enabled:
            metrics.update({f"position.unseen_acc.{k}": v for k, v in self._position(run, cfg.position).items()})
        return Outcome(f"{h}-{unit} MASE of the best {family} ({best}, chosen on validation)",
                       test[best]["mase_h"][h - 1], "test", val={**val_metrics(built, env), **flat_metrics(val)},
                       test=metrics, extra={"models": list(m.models), "missing_dates_filled": p.raw_filled,
                                            "forecast": protocol})

    def _position(self, run, pos: PositionConfig) -> dict:
        """The position experiment (position.json and figures/position.png); accuracy at unseen positions."""
        from neuralsight.engine import progress
        from neuralsight.lecture.position import PositionSpec, run_experiment
        from neuralsight.viz.position import plot

        with progress.status("position experiment: feed-forward net, LSTM and 1D CNN"):
            result = run_experiment(PositionSpec(steps=pos.steps, train_size=pos.train_size, seed=pos.seed), "cpu")
        run.write_json("position.json", result)
        plot(result, run.figures / "position.png")
        return result["unseen"]

    def _saved(self, saved):
        """``(transform, {kind: model}, shown model)`` of a saved run (the first model in it, the others in models/)."""
        from neuralsight.data.series import Transform

        info = saved.read_json(INFO_FILE)
        if info is None:
            raise UserError(f"{saved.path} has no {INFO_FILE}", "the run did not finish; retrain it")
        kinds = saved.cfg.model.models
        models = {kind: saved.model("" if i == 0 else kind) for i, kind in enumerate(kinds)}
        return Transform.from_dict(info["transform"]), models, info.get("shown_model", kinds[0])

    def evaluate(self, saved, split: str) -> dict:
        """``test``: the test window's backtest; ``val``: what chose each checkpoint, and the best model."""
        if split not in ("test", "val"):
            raise UserError(f"a forecast run has no '{split}' split", "use test (the backtest) or val")
        cfg, m = saved.cfg, saved.cfg.model
        m.calibrate = m.calibrate and "calibration" in saved.read_json(INFO_FILE, {})  # 0.1 runs had no calibration
        transform, models, _ = self._saved(saved)
        series, raw = load_series(cfg.data)
        p = split_series(series, cfg.data, m.input_window, m.horizon, raw, transform=transform)
        scores = backtests(models, p, cfg, saved.device, fit_peers(p, m)[0] if m.classical else {})[split][2]
        if split == "test":
            return flat_metrics(scores)
        built = {k: ForecastTrain(k, cfg, p, saved.device, model=v) for k, v in models.items()}
        return {**val_metrics(built, saved.env), **flat_metrics(scores)}

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

        from neuralsight.data.series import whole_series
        from neuralsight.io import atomic_write_text
        from neuralsight.viz.forecast import future_figure

        (transform, models, shown), m = fitted, saved.cfg.model
        columns = {k: v for k, v in (("date", options.date), ("target", options.target)) if v is not None}
        data = dataclasses.replace(saved.cfg.data, **columns, **({"start": "", "end": ""} if path else {}))
        series, raw = load_series(data, csv_override=path)
        p = whole_series(series, raw, transform, data, m.input_window, horizon)
        widths = (saved.read_json(INFO_FILE) or {}).get("calibration")  # conformal, fitted on validation
        f = forecast_at(models, p, torch.as_tensor([len(p.z) - 1]), m, saved.device, widths=widths)
        f = {k: {b: None if v is None else v[0, :horizon] for b, v in e.items()} for k, e in f.items()}
        future = [series.date_after(h + 1) for h in range(horizon)]
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(csv_path := out / f"{stem}.csv", forecast_csv(f, future, m.quantiles))
        png = future_figure(out / f"{stem}.png", series.dates, series.values, series.name, future, f, shown, NEURAL)
        return {"input": str(series.source), "from": str(series.dates[-1]), "to": str(future[-1]),
                "horizon": horizon, "model": shown, "fill_report": raw.fill_report(),
                "outputs": {"csv": str(csv_path), "plot": str(png)}}

    def report(self, run_dir: Path) -> list:
        from neuralsight.viz.forecast import report_sections

        return report_sections(Path(run_dir), INFO_FILE)
