"""Time series from CSV files: parse, check, fill gaps explicitly, transform, window, and scale.

Any CSV with a date column and one or more numeric value columns works; the catalog's ``covid-hu``
(daily confirmed COVID-19 cases in Hungary, JHU CSSE) is the built-in one. Everything here is plain
``csv`` + numpy: the series are a few thousand numbers, so pandas would only add a dependency. numpy is imported
inside the functions: the CLI imports this module at start-up (the forecast task's config).

Pipeline (every step is causal: a value at day ``t`` depends on days ``<= t`` only)::

    read_csv -> fill_gaps (reported, never shifted) -> [rolling mean | weekly sum] -> log1p -> Scaler(train part)

The forecast task's series comes from here too: :class:`SeriesConfig` (its ``[data]`` section) names the CSV,
:func:`load_series` cuts and smooths it, and :func:`split_series` splits it in time into three windows::

    train [0, val_start)  |  validation [val_start, test_start)  |  test (the backtest) [test_start, T)

The transform is fitted on the training window only; forecast origins of a window (:meth:`SplitSeries.origins`)
have all their targets inside it.

Errors are :class:`DataError` lines that name the file, the row and what is wrong.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from neuralsight.config import bounded, choice
from neuralsight.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np

DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
FILL_MODES = ("interpolate", "zero", "previous", "error")


@dataclass
class Series:
    """A regular series: ``dates[i]`` is ``dates[0] + i * step_days``; ``values`` has shape (T,).

    ``filled`` lists the dates that were missing from the file and were filled (``fill`` says how).
    """

    dates: list[dt.date]
    values: np.ndarray                      # (T,) float64
    name: str
    source: str
    step_days: int = 1
    filled: list[dt.date] = field(default_factory=list)
    fill: str = "interpolate"

    def __len__(self) -> int:
        return len(self.values)

    def date_after(self, steps: int) -> dt.date:
        """The date ``steps`` steps after the last one."""
        return self.dates[-1] + dt.timedelta(days=self.step_days * steps)

    def fill_report(self) -> str:
        """One human line: how many dates were missing and which ranges were filled."""
        if not self.filled:
            return "no missing dates"
        ranges = _ranges(self.filled, self.step_days)
        shown = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in ranges[:6])
        more = f" and {len(ranges) - 6} more ranges" if len(ranges) > 6 else ""
        return f"{len(self.filled)} missing dates filled ({self.fill}): {shown}{more}"


def _ranges(days: list[dt.date], step: int) -> list[tuple[dt.date, dt.date]]:
    out: list[tuple[dt.date, dt.date]] = []
    for d in days:
        if out and (d - out[-1][1]).days == step:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def parse_date(text: str) -> dt.date | None:
    text = text.strip()
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def read_csv(path: Path | str, date_column: str = "date", target: str | None = None,
             fill: str = "interpolate") -> Series:
    """Read one value column of a CSV as a regular series.

    Args:
        path: the CSV file (header row, then one row per date).
        date_column: name of the date column (ISO ``YYYY-MM-DD``; ``YYYY/MM/DD`` and ``M/D/YYYY`` work too).
        target: the value column; ``None`` takes the first column that is not the date.
        fill: what to put at dates missing from the file: ``interpolate`` (linear), ``zero``,
            ``previous`` (carry the last value), or ``error`` to refuse gaps.

    Returns:
        A :class:`Series` on a regular grid (daily, or the file's most common step in days).

    Raises:
        DataError: missing file/column, a non-numeric value, an unparsable, duplicate or unsorted date,
            a date off the grid, or a gap with ``fill="error"``.
    """
    import numpy as np

    path = Path(path)
    if fill not in FILL_MODES:
        raise DataError(f"unknown fill mode '{fill}'", f"use one of {', '.join(FILL_MODES)}")
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist", "pass an existing file with data.csv=FILE")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path} is not a readable CSV text file: {err}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path} is empty", "expected a header row such as date,value and one row per date")
    header = [h.strip() for h in rows[0]]
    if date_column not in header:
        raise DataError(f"{path} has no date column '{date_column}'; columns are: {', '.join(header)}",
                        "set data.date=COLUMN")
    di = header.index(date_column)
    if target is None:
        others = [h for h in header if h != date_column]
        if not others:
            raise DataError(f"{path} has only the date column", "add a value column")
        target = others[0]
    if target not in header:
        raise DataError(f"{path} has no value column '{target}'; columns are: {', '.join(header)}",
                        "set data.target=COLUMN")
    vi = header.index(target)

    dates: list[dt.date] = []
    values: list[float] = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) <= max(di, vi):
            raise DataError(f"{path} line {n} has {len(row)} fields; expected {len(header)} like the header")
        d = parse_date(row[di])
        if d is None:
            raise DataError(f"{path} line {n}: unparsable date '{row[di].strip()}' in column '{date_column}'",
                            "expected YYYY-MM-DD")
        text = row[vi].strip()
        try:
            v = float(text) if text else math.nan
        except ValueError:
            raise DataError(f"{path} line {n}: non-numeric value '{text}' in column '{target}'",
                            "expected a number (leave the cell empty for a missing value)") from None
        if math.isinf(v):
            raise DataError(f"{path} line {n}: infinite value in column '{target}'")
        if dates and d <= dates[-1]:
            what = "duplicate" if d == dates[-1] else "unsorted"
            raise DataError(f"{path} line {n}: {what} date {d} (after {dates[-1]}) in column '{date_column}'",
                            "sort the rows by date, one row per date")
        dates.append(d)
        values.append(v)
    if not dates:
        raise DataError(f"{path} has a header but no data rows")
    return regularize(dates, np.asarray(values, dtype=np.float64), name=target, source=str(path), fill=fill)


def regularize(dates: list[dt.date], values: np.ndarray, name: str = "value", source: str = "<memory>",
               fill: str = "interpolate") -> Series:
    """Put sorted ``dates``/``values`` on a regular grid; missing dates (and empty cells) are filled and listed."""
    import numpy as np

    if len(dates) > 1:
        diffs = Counter((b - a).days for a, b in zip(dates, dates[1:]))
        step = min(d for d, c in diffs.items() if c == max(diffs.values()))
    else:
        step = 1
    for d in dates:
        if (d - dates[0]).days % step:
            raise DataError(f"{source}: date {d} is not on the {step}-day grid starting {dates[0]}",
                            "use one row per day (or per week), no irregular dates")
    total = (dates[-1] - dates[0]).days // step + 1
    full = np.full(total, np.nan)
    idx = np.asarray([(d - dates[0]).days // step for d in dates])
    full[idx] = values
    grid = [dates[0] + dt.timedelta(days=step * i) for i in range(total)]
    missing = np.flatnonzero(np.isnan(full))
    filled = [grid[i] for i in missing]
    if len(missing):
        if fill == "error":
            raise DataError(f"{source}: {len(missing)} missing dates or values, first {filled[0]}",
                            "fill them in the file or set data.fill=interpolate")
        if np.isnan(full).all():
            raise DataError(f"{source}: column '{name}' has no values")
        full = _fill(full, fill)
    return Series(dates=grid, values=full, name=name, source=source, step_days=step, filled=filled, fill=fill)


def _fill(x: np.ndarray, mode: str) -> np.ndarray:
    import numpy as np

    x = x.copy()
    bad = np.isnan(x)
    if mode == "zero":
        x[bad] = 0.0
    elif mode == "previous":
        first = np.flatnonzero(~bad)[0]
        x[:first] = x[first]
        for i in range(first + 1, len(x)):
            if np.isnan(x[i]):
                x[i] = x[i - 1]
    else:  # interpolate; the ends take the nearest known value
        known = np.flatnonzero(~bad)
        x[bad] = np.interp(np.flatnonzero(bad), known, x[known])
    return x


# ----------------------------------------------------------------------------- transforms


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean: ``out[t] = mean(x[max(0, t - window + 1) .. t])`` (causal; the start averages fewer)."""
    import numpy as np

    c = np.cumsum(np.concatenate([[0.0], x]))
    t = np.arange(1, len(x) + 1)
    lo = np.maximum(0, t - window)
    return (c[t] - c[lo]) / (t - lo)


def weekly_sum(series: Series) -> Series:
    """Sum complete 7-day blocks ending on the last date; a leftover partial week at the start is dropped."""
    if series.step_days != 1:
        raise DataError(f"{series.source}: weekly aggregation needs a daily series (step is {series.step_days} days)")
    n = len(series) // 7
    if n == 0:
        raise DataError(f"{series.source}: fewer than 7 days, cannot aggregate weekly")
    start = len(series) - 7 * n
    sums = series.values[start:].reshape(n, 7).sum(axis=1)
    dates = [series.dates[start + 7 * i + 6] for i in range(n)]
    filled = sorted({dates[(series.dates.index(d) - start) // 7] for d in series.filled
                     if series.dates.index(d) >= start})
    return Series(dates=dates, values=sums, name=f"{series.name} (weekly sum)", source=series.source,
                  step_days=7, filled=filled, fill=series.fill)


@dataclass
class Scaler:
    """Standardisation fitted on the training part only: ``z = (x - mean) / std``."""

    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaler:
        import numpy as np

        x = np.asarray(x, dtype=np.float64)
        std = float(x.std())
        return cls(mean=float(x.mean()), std=std if std > 1e-12 else 1.0)

    def transform(self, x):
        return (x - self.mean) / self.std

    def inverse(self, z):
        return z * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}


@dataclass
class Transform:
    """Value transform between the prepared series (original units) and the model's space.

    ``forward``: ``log1p`` (optional) then standardise with a scaler fitted on the training part.
    """

    log1p: bool
    scaler: Scaler

    def forward(self, x):
        import numpy as np

        if self.log1p:
            x = np.log1p(np.maximum(x, 0.0)) if isinstance(x, np.ndarray) else (x.clamp_min(0.0)).log1p()
        return self.scaler.transform(x)

    def inverse(self, z):
        import numpy as np

        x = self.scaler.inverse(z)
        if self.log1p:
            x = np.expm1(x) if isinstance(x, np.ndarray) else x.expm1()
        return x

    def to_dict(self) -> dict:
        return {"log1p": self.log1p, **self.scaler.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Transform:
        return cls(log1p=bool(d["log1p"]), scaler=Scaler(mean=float(d["mean"]), std=float(d["std"])))

    @classmethod
    def fit(cls, train_values: np.ndarray, log1p: bool) -> Transform:
        """Fit on ``train_values`` only (the values before the split); nothing after it is looked at."""
        import numpy as np

        base = cls(log1p=log1p, scaler=Scaler())
        return cls(log1p=log1p, scaler=Scaler.fit(base.forward(np.asarray(train_values, dtype=np.float64))))


def prepare_values(series: Series, smoothing: str) -> Series:
    """Apply the smoothing option: ``none``, ``rolling7`` (trailing 7-step mean) or ``weekly`` (7-day sums)."""
    if smoothing == "none":
        return series
    if smoothing == "weekly":
        return weekly_sum(series)
    if smoothing == "rolling7":
        return Series(dates=series.dates, values=rolling_mean(series.values, 7),
                      name=f"{series.name} (7-day mean)", source=series.source, step_days=series.step_days,
                      filled=series.filled, fill=series.fill)
    raise DataError(f"unknown smoothing '{smoothing}'", "use none, rolling7 or weekly")


def windows(z, input_window: int, horizon: int, targets_from: int, targets_to: int):
    """Supervised windows whose targets all lie in ``[targets_from, targets_to)``.

    Window ``k`` has its origin (last input step) at ``t_k``; inputs are ``z[t_k - input_window + 1 .. t_k]``
    and targets ``z[t_k + 1 .. t_k + horizon]``. Origins run from ``max(input_window - 1, targets_from - 1)``
    to ``targets_to - horizon - 1``, so no target (and no input) reaches ``targets_to`` or beyond.

    Args:
        z: (T,) tensor or array in model space.

    Returns:
        ``(x, y, origins)``: x (N, input_window), y (N, horizon), origins (N,) int64 positions.
    """
    import torch

    z = torch.as_tensor(z)
    first = max(input_window - 1, targets_from - 1)
    last = targets_to - horizon - 1
    origins = torch.arange(first, last + 1, dtype=torch.long)
    if len(origins) == 0:
        empty = z.new_zeros((0, input_window)), z.new_zeros((0, horizon))
        return (*empty, origins)
    offs_in = torch.arange(-input_window + 1, 1)
    offs_out = torch.arange(1, horizon + 1)
    x = z[origins[:, None] + offs_in[None, :]]     # (N, W)
    y = z[origins[:, None] + offs_out[None, :]]    # (N, H)
    return x, y, origins


def check_length(series: Series, input_window: int, horizon: int, min_extra: int = 0) -> None:
    """Refuse a series that cannot hold one input window plus one forecast (plus ``min_extra`` steps)."""
    need = input_window + horizon + min_extra
    if len(series) < need:
        raise DataError(f"{series.source}: the series has {len(series)} steps, shorter than one input window "
                        f"of {input_window} plus a horizon of {horizon}" +
                        (f" plus {min_extra} steps for validation and backtest" if min_extra else ""),
                        "use a longer series or lower model.input_window / data.backtest_days")


# ----------------------------------------------------------------------------- the forecast task's series


SMOOTHING = {"none": "daily values", "rolling7": "7-day trailing mean of the daily values",
             "weekly": "weekly sums of the daily values"}


@dataclass
class SeriesConfig:
    """Which CSV a forecast run reads, how it is smoothed, and the lengths of its validation and test windows."""

    dataset: str = "covid-hu"
    data_dir: str | None = None
    csv: str | None = field(default=None, metadata={"help": "any CSV file (overrides dataset)"})
    date: str = "date"
    target: str = "new_cases"
    fill: str = choice("interpolate", FILL_MODES)
    smoothing: str = choice("rolling7", tuple(SMOOTHING))
    log1p: bool = True
    start: str = field(default="", metadata={"help": "first date to use (YYYY-MM-DD, empty: all)"})
    end: str = field(default="", metadata={"help": "last date to use (YYYY-MM-DD, empty: all)"})
    backtest_days: int = bounded(182, min=1, help="last steps of the series: the test window (the backtest)")
    val_days: int = bounded(91, min=1, help="steps before the test window: the validation window")
    origin_every: int = bounded(1, min=1, help="steps between backtest origins")
    season: int = bounded(0, min=0, help="seasonal period m of seasonal naive and MASE (0: 7 daily, 52 weekly)")


def series_source(data: SeriesConfig, csv_override: Path | None = None) -> Path:
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


def load_series(data: SeriesConfig, csv_override: Path | None = None) -> tuple[Series, Series]:
    """Read, cut to [start, end], and smooth; returns (prepared Series, raw Series)."""
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
            keep = [k and cmp(d, bound) for k, d in zip(keep, raw.dates, strict=True)]
    if not all(keep):
        idx = [i for i, k in enumerate(keep) if k]
        if not idx:
            raise ConfigError(f"data.start/data.end leave no dates of {path} (it spans {raw.dates[0]}..{raw.dates[-1]})")
        raw = Series(dates=raw.dates[idx[0]: idx[-1] + 1], values=raw.values[idx[0]: idx[-1] + 1], name=raw.name,
                     source=raw.source, step_days=raw.step_days,
                     filled=[d for d in raw.filled if raw.dates[idx[0]] <= d <= raw.dates[idx[-1]]], fill=raw.fill)
    return prepare_values(raw, data.smoothing), raw


def season_of(data: SeriesConfig, series: Series) -> int:
    """The seasonal period ``m``: ``data.season``, else 7 for daily and 52 for weekly steps (1 otherwise)."""
    return data.season or (7 if series.step_days == 1 else 52 if series.step_days == 7 else 1)


def target_description(data: SeriesConfig, series: Series) -> str:
    """What the forecasts are of, in words: ``new_cases: 7-day trailing mean of the daily values``."""
    if data.smoothing == "none" and series.step_days != 1:
        return f"{data.target}: values every {series.step_days} days"
    return f"{data.target}: {SMOOTHING[data.smoothing]}"


@dataclass
class SplitSeries:
    """A prepared series split in time, in original units (``values``) and model space (``z``)."""

    series: Series                 # after smoothing (original units)
    raw_filled: int                # dates filled in the raw file
    fill_report: str
    transform: Transform           # fitted on values[:val_start]
    z: object                      # (T,) float32 tensor, model space
    val_start: int
    test_start: int
    season: int

    @property
    def values(self) -> np.ndarray:
        return self.series.values

    def origins(self, window: str, horizon: int, every: int = 1):
        """Forecast origins ``t`` (last observed index) whose targets ``t+1..t+horizon`` all lie in ``window``
        (``"val"`` or ``"test"``), every ``every`` steps from the window's start; an (N,) int64 tensor."""
        import torch

        first, end = {"val": (self.val_start, self.test_start), "test": (self.test_start, len(self.z))}[window]
        return torch.arange(first - 1, end - horizon, every, dtype=torch.long)

    def supervised(self, input_window: int, horizon: int, device="cpu") -> tuple[tuple, tuple]:
        """``((x, y), (x_val, y_val))``: the windows whose targets lie in the training and in the validation
        window (:func:`windows`), on ``device``."""
        z = self.z.to(device)
        train, val = (windows(z, input_window, horizon, a, b)[:2] for a, b in ((0, self.val_start),
                                                                              (self.val_start, self.test_start)))
        if len(train[0]) == 0 or len(val[0]) == 0:
            raise DataError(f"{self.series.source}: no complete training or validation window",
                            "lower model.input_window/model.horizon or data.val_days")
        return train, val

    def describe(self) -> dict:
        """The series and its split as JSON: source, name, length, dates, gaps filled, season, window starts."""
        s = self.series
        return {"source": s.source, "name": s.name, "steps": len(s), "first": str(s.dates[0]), "last": str(s.dates[-1]),
                "step_days": s.step_days, "fill_report": self.fill_report, "filled": self.raw_filled,
                "season": self.season, "val_start": str(s.dates[self.val_start]),
                "test_start": str(s.dates[self.test_start])}

    def windows(self) -> dict:
        """The first and last date of each window: ``{"train": [first, last], "val": [...], "test": [...]}``."""
        d, cuts = self.series.dates, (0, self.val_start, self.test_start, len(self.series))
        return {name: [str(d[a]), str(d[b - 1])] for name, a, b in zip(("train", "val", "test"), cuts, cuts[1:])}


def split_series(series: Series, data: SeriesConfig, input_window: int, horizon: int, raw: Series | None = None,
                 transform: Transform | None = None) -> SplitSeries:
    """Split ``series`` into train / validation / test and fit the transform on the training window only
    (unless one is given, e.g. a saved run's)."""
    import torch

    season = season_of(data, series)
    check_length(series, input_window, horizon, min_extra=data.val_days + data.backtest_days)
    test_start = len(series) - data.backtest_days
    val_start = test_start - data.val_days
    if val_start < max(input_window, season) + horizon:
        raise DataError(f"{series.source}: only {val_start} steps before validation; need at least "
                        f"{max(input_window, season) + horizon} for one training window",
                        "lower data.backtest_days, data.val_days or model.input_window")
    if data.val_days < horizon or data.backtest_days < horizon:
        raise DataError(f"{series.source}: data.val_days ({data.val_days}) and data.backtest_days "
                        f"({data.backtest_days}) must each hold one forecast of {horizon} steps",
                        f"raise them to at least {horizon} or lower model.horizon")
    if transform is None:
        transform = Transform.fit(series.values[:val_start], log1p=data.log1p)
    z = torch.as_tensor(transform.forward(series.values), dtype=torch.float32)
    raw = raw if raw is not None else series
    return SplitSeries(series=series, raw_filled=len(raw.filled), fill_report=raw.fill_report(), transform=transform,
                       z=z, val_start=val_start, test_start=test_start, season=season)


def whole_series(series: Series, raw: Series, transform: Transform, data: SeriesConfig, input_window: int,
                 horizon: int) -> SplitSeries:
    """``series`` unsplit (both window starts at its end), to forecast ``horizon`` steps after its last date."""
    import torch

    check_length(series, max(input_window, 2 * 7), 0)
    season = season_of(data, series)
    if len(series) - 1 - season * math.ceil(horizon / season) < 0:
        raise DataError(f"{series.source}: too short for a seasonal naive forecast of {horizon} steps")
    z = torch.as_tensor(transform.forward(series.values), dtype=torch.float32)
    return SplitSeries(series, len(raw.filled), raw.fill_report(), transform, z, len(z), len(z), season)


def forecast_csv(forecasts: dict, dates: list, quantiles) -> str:
    """One forecast as CSV text: ``date,step``, then per model its point forecast (and, with quantiles, the
    outer quantiles as ``<name>_q0.1``, ``<name>_q0.9``), one row per step, 4 decimals.

    Args:
        forecasts: ``{name: {"point": (H,), "lower": (H,) or None, "upper": ...}}``. dates: the H dates.
    """
    header = ["date", "step"]
    for name, e in forecasts.items():
        header += [name] + ([f"{name}_q{quantiles[0]:g}", f"{name}_q{quantiles[-1]:g}"] if e["lower"] is not None
                            else [])
    lines = [",".join(header)]
    for h, day in enumerate(dates):
        cells = [day.isoformat(), str(h + 1)]
        for e in forecasts.values():
            cells += [f"{float(e[k][h]):.4f}" for k in ("point", "lower", "upper") if e[k] is not None]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"
