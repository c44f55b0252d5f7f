"""Export of a forecast run: a window of the series to every model's quantile forecasts, in the series' units.

The graph holds the value transform the run fitted on its training part (``log1p``, then standardisation) and
its inverse, so a user feeds the last ``input_window`` values of the prepared series (smoothed as the run's
``data.smoothing`` says: that needs more history than one window, so it stays outside and is recorded) and reads
``(B, horizon, len(quantiles))`` forecasts per model. All models of the run go into one graph, an output each,
or one model with ``--model``. Checked on the series' last window and a batch of the windows before it.
The transform runs in float64 around the float32 nets, as the task's backtest does. Tolerance: 1e-4 + 1e-5 x
|value| in the series' units (the nets in fp32).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from neuralsight.errors import DataError, UserError
from neuralsight.export.spec import ExportSpec, Tolerance, architecture, cpu_copy

TOLERANCE = Tolerance(atol=1e-4, rtol=1e-5)
WINDOWS = 5
INFO_FILE = "forecast.json"


class ForecastGraph(nn.Module):
    """``window`` (B, W) float64 in the series' units -> one ``(B, H, Q)`` float64 forecast per model.

    Args:
        models: ``{name: forecaster}``, each mapping model-space windows (B, W) to (B, H, Q).
        log1p, mean, std: the run's transform, ``z = (log1p(max(x, 0)) - mean) / std`` (``log1p`` optional).
    """

    def __init__(self, models: dict[str, nn.Module], log1p: bool, mean: float, std: float):
        super().__init__()
        self.models = nn.ModuleDict(models)
        self.log1p, self.mean, self.std = log1p, mean, std

    def forward(self, window: torch.Tensor):
        # float64 around the nets, as the task's backtest computes it: exp() of the inverse transform would
        # turn float32 rounding into whole cases at the series' scale.
        z = window.double()
        if self.log1p:
            z = torch.log(1 + z.clamp_min(0.0))            # log1p, spelt out: ONNX has no log1p/expm1 operator
        z = ((z - self.mean) / self.std).float()           # (B, W) in model space
        outputs = []
        for model in self.models.values():
            y = model(z).double() * self.std + self.mean   # (B, H, Q)
            outputs.append(torch.exp(y) - 1 if self.log1p else y)
        return tuple(outputs)


def series_windows(saved, info: dict, window: int, count: int = WINDOWS):
    """``(float64 (count, W) windows ending at the last step and 1..count-1 steps before it, description)``."""
    import datetime as dt

    import numpy as np

    from neuralsight.data.series import Series, prepare_values, read_csv

    d, series = saved.cfg.data, info["series"]
    path = Path(series["source"])
    if d.data_dir:  # --data: the CSV itself, or the folder holding it
        given = Path(d.data_dir).expanduser()
        path = given if given.is_file() else given / path.name
    if not path.is_file():
        raise DataError(f"the run's series {path} is not on this machine", "pass --data with the CSV file")
    raw = read_csv(path, d.date, d.target, fill=d.fill)
    first, last = dt.date.fromisoformat(series["first"]), dt.date.fromisoformat(series["last"])
    keep = [i for i, day in enumerate(raw.dates) if first <= day <= last]     # the span the run forecast from
    if not keep:
        raise DataError(f"{path} holds none of the run's dates ({first}..{last})")
    raw = Series(dates=raw.dates[keep[0]: keep[-1] + 1], values=raw.values[keep[0]: keep[-1] + 1], name=raw.name,
                 source=raw.source, step_days=raw.step_days, fill=raw.fill)
    values = np.asarray(prepare_values(raw, d.smoothing).values, dtype=np.float64)
    if len(values) < window + count - 1:
        raise DataError(f"{path}: {len(values)} steps are too few for {count} windows of {window}")
    ends = [len(values) - k for k in range(count)]                             # exclusive ends, the last first
    return np.stack([values[e - window: e] for e in ends]), f"the last {count} windows of {series['name']} ({path})"


def spec(saved, model: str | None = None) -> ExportSpec:
    from neuralsight.data.series import Transform

    info = saved.read_json(INFO_FILE)
    if info is None:
        raise UserError(f"{saved.path} has no {INFO_FILE}", "the run did not finish; retrain it")
    m = saved.cfg.model
    kinds = list(m.models)
    if model is not None and model not in kinds:
        raise UserError(f"--model {model} is not a model of this run", f"choose one of {', '.join(kinds)}")
    # The first model trains in the run itself, the others in models/<kind>/.
    nets = {k: cpu_copy(saved.model("" if i == 0 else k)) for i, k in enumerate(kinds) if model in (None, k)}
    t = info["transform"]
    transform = Transform.from_dict(t)
    windows, described = series_windows(saved, info, m.input_window)
    x = torch.from_numpy(windows)                                              # (N, W) float64

    def reference(window):
        # As the task's backtest forecasts: the transform in float64, the nets in float32, the inverse in float64.
        z = torch.as_tensor(transform.forward(window.numpy()), dtype=torch.float32)
        return tuple(transform.inverse(net(z).double()) for net in nets.values())

    names = list(nets)
    point = m.quantiles.index(0.5) if 0.5 in m.quantiles else len(m.quantiles) // 2
    metadata = {
        "models": names,
        "architecture": {k: architecture(saved, "" if i == 0 else k) for i, k in enumerate(kinds) if k in nets},
        "input_window": m.input_window, "horizon": m.horizon, "quantiles": list(m.quantiles),
        "point_quantile_index": point,
        "transform": {**t, "inside_graph": True},
        "smoothing": saved.cfg.data.smoothing,
        "series": {k: info["series"].get(k) for k in ("name", "source", "first", "last", "step_days")},
        "preprocessing": ("the last input_window values of the series, smoothed as 'smoothing' says (rolling7: "
                          "trailing 7-step mean; weekly: 7-day sums), in the series' own units"),
        "output_meaning": "one output per model, named as in 'models': (B, horizon, len(quantiles)) forecasts of the "
                   "next horizon steps, quantiles in order (the point forecast at point_quantile_index)",
    }
    graph = ForecastGraph(nets, bool(t["log1p"]), float(t["mean"]), float(t["std"])).eval()
    axes = {"window": {0: "batch"}, **{n: {0: "batch"} for n in names}}
    return ExportSpec("forecast" if model is None else f"forecast-{model}", graph, ["window"], names, axes,
                      [(x[:1],), (x,)], reference, f"{described}: the last, then all {len(x)}", metadata, TOLERANCE)
