"""Sequence forecasters: an input window in, a direct multi-horizon forecast out.

- :class:`RecurrentForecaster` (``"forecaster"``): ``nn.RNN`` (tanh), ``nn.LSTM`` or ``nn.GRU`` reads the
  window; a linear head maps the last hidden state to ``horizon x len(quantiles)`` outputs at once
  (direct multi-output, no feeding forecasts back in).
- :class:`WindowMLP` (``"window_mlp"``): the lecture's feed-forward net on the flattened window.
- Baselines as plain functions over tensors: :func:`naive`, :func:`seasonal_naive`; every model's
  forecasts from a series' origins: :func:`forecast_origins`.
- Classical peers (ETS, ARIMA from statsmodels, structure chosen by AIC; optional): :func:`fit_classical`.

With ``residual=True`` a net predicts offsets from the window's last value, so an untrained net starts
as the naive forecast and learns corrections (it helps a lot on a few hundred training windows).
With quantiles, training uses the pinball loss; the 0.5 quantile (or the middle one) is the point forecast
and the outer quantiles give a prediction interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from neuralsight.layers.recurrent import make_fused
from neuralsight.models.registry import register_model


def _check_quantiles(quantiles) -> tuple[float, ...]:
    q = tuple(float(v) for v in (quantiles or ()))
    if any(not 0.0 < v < 1.0 for v in q) or list(q) != sorted(q):
        raise ValueError(f"quantiles {list(q)} must be increasing and strictly between 0 and 1, "
                         f"e.g. [0.1, 0.5, 0.9]")
    return q


class _Head(nn.Module):
    """Features (B, F) -> forecasts (B, horizon, Q) (Q = number of quantiles, 1 without them)."""

    def __init__(self, in_features: int, horizon: int, quantiles: tuple[float, ...]):
        super().__init__()
        self.horizon = horizon
        self.n_out = max(1, len(quantiles))
        self.linear = nn.Linear(in_features, horizon * self.n_out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.linear(h).view(h.shape[0], self.horizon, self.n_out)   # (B, H, Q)
        if self.n_out > 1:
            # Quantile heads trained independently can cross; sorting them (monotone rearrangement,
            # Chernozhukov et al. 2010) never makes the pinball loss worse and keeps lower <= upper.
            y = y.sort(dim=-1).values
        return y


@register_model("forecaster")
class RecurrentForecaster(nn.Module):
    """RNN / LSTM / GRU window forecaster: the last hidden state to every horizon step at once.

    Args:
        cell: ``"rnn"`` (Elman, tanh), ``"lstm"`` or ``"gru"``.
        input_window: steps in the input window (stored for checkpoints and checks).
        horizon: forecast steps produced at once.
        hidden_size: recurrent state size.
        num_layers: stacked recurrent layers.
        dropout: between stacked layers (ignored with one layer).
        quantiles: e.g. ``(0.1, 0.5, 0.9)`` for intervals; empty for a point forecast.
        residual: predict offsets from the last input value.

    Shapes:
        input (B, W) or (B, W, 1); output (B, H, Q).
    """

    def __init__(self, cell: str = "lstm", input_window: int = 28, horizon: int = 14, hidden_size: int = 64,
                 num_layers: int = 1, dropout: float = 0.0, quantiles=(), residual: bool = True):
        super().__init__()
        self.cell, self.input_window, self.horizon = cell, input_window, horizon
        self.quantiles = _check_quantiles(quantiles)
        self.residual = residual
        self.rnn = make_fused(cell, 1, hidden_size, num_layers, dropout)
        self.head = _Head(hidden_size, horizon, self.quantiles)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(-1)                 # (B, W, 1)
        out, _ = self.rnn(x)                    # (B, W, hidden)
        return out[:, -1]                       # (B, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.forward_features(x))                 # (B, H, Q)
        if self.residual:
            last = x[:, -1] if x.dim() == 2 else x[:, -1, 0]    # (B,)
            y = y + last[:, None, None].to(y.dtype)
        return y


@register_model("window_mlp")
class WindowMLP(nn.Module):
    """The feed-forward net of the lecture: the flattened window through hidden layers to the horizon.

    Shapes: input (B, W); output (B, H, Q). Each input position has its own weights, which is exactly
    why it is position-sensitive.
    """

    def __init__(self, input_window: int = 28, horizon: int = 14, hidden_size: int = 64, num_layers: int = 2,
                 dropout: float = 0.0, quantiles=(), residual: bool = True):
        super().__init__()
        self.input_window, self.horizon = input_window, horizon
        self.quantiles = _check_quantiles(quantiles)
        self.residual = residual
        layers: list[nn.Module] = []
        width = input_window
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_size
        self.body = nn.Sequential(*layers)
        self.head = _Head(width, horizon, self.quantiles)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x[..., 0]
        y = self.head(self.body(x))                              # (B, H, Q)
        if self.residual:
            y = y + x[:, -1][:, None, None].to(y.dtype)
        return y


def point_index(quantiles) -> int:
    """Index of the point forecast among the outputs: the 0.5 quantile, else the middle one."""
    q = list(quantiles or ())
    if not q:
        return 0
    if 0.5 in q:
        return q.index(0.5)
    return len(q) // 2


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, quantiles) -> torch.Tensor:
    """Mean quantile (pinball) loss; plain MSE when there are no quantiles.

    Args:
        pred: (B, H, Q) forecasts. target: (B, H).
    """
    if not quantiles:
        return nn.functional.mse_loss(pred[..., 0].float(), target.float())
    q = torch.tensor(quantiles, device=pred.device, dtype=torch.float32)   # (Q,)
    err = target.float()[..., None] - pred.float()                         # (B, H, Q)
    return torch.maximum(q * err, (q - 1) * err).mean()


# ----------------------------------------------------------------------------- baselines


def naive(y: torch.Tensor, origins: torch.Tensor, horizon: int) -> torch.Tensor:
    """Last value carried forward: ``f[k, h-1] = y[origins[k]]``. Returns (N, horizon)."""
    return y[origins][:, None].expand(len(origins), horizon).clone()


def seasonal_naive(y: torch.Tensor, origins: torch.Tensor, horizon: int, season: int = 7) -> torch.Tensor:
    """Same season position last cycle: ``f[k, h-1] = y[o + h - season * ceil(h / season)]``.

    For a daily series with ``season=7`` this is "the same weekday last week" (weeks before last for h > 7).
    Returns (N, horizon).
    """
    h = torch.arange(1, horizon + 1)
    back = season * torch.div(h + season - 1, season, rounding_mode="floor")   # (H,)
    idx = origins[:, None] + h[None, :] - back[None, :]                         # (N, H)
    if int(idx.min()) < 0:
        raise ValueError(f"seasonal naive needs {season} steps of history before the first origin, "
                         f"got an origin at {int(origins.min())}")
    return y[idx]


def forecast_origins(models: dict, split, origins, horizon: int, input_window: int, quantiles,
                     nominal: float | None = None, device="cpu", peers: dict | None = None) -> dict:
    """Every model's forecasts from each origin, beside naive and seasonal naive, in original units.

    Args:
        models: ``{name: net}`` taking (N, input_window) windows of the model-space series.
        split: the series (``data.series.SplitSeries``: ``z`` model space, ``values`` original units, ``season``,
            ``transform``).
        origins: (N,) int64 tensor, the last observed index of each forecast.
        nominal: the level the outer quantiles claim (0.1 and 0.9: 0.8); the peers' central interval has the
            same level. None: no intervals.
        peers: ``{name: ClassicalFit}`` fitted in the same model space.

    Returns:
        ``{name: {"point": (N, H) float64 numpy array, "lower"/"upper": (N, H) or None}}``.
    """
    y = torch.as_tensor(split.values, dtype=torch.float64)
    out: dict = {"naive": {"point": naive(y, origins, horizon), "lower": None, "upper": None},
                 "seasonal_naive": {"point": seasonal_naive(y, origins, horizon, split.season), "lower": None,
                                    "upper": None}}
    z = split.z.to(device)
    x = z[origins.to(device)[:, None] + torch.arange(-input_window + 1, 1, device=device)[None, :]]  # (N, W)
    for name, model in models.items():
        with torch.no_grad():
            f = split.transform.inverse(model(x).float().double().cpu())                 # (N, H, Q)
        bounds = (f[..., 0], f[..., -1]) if nominal and len(quantiles) >= 2 else (None, None)
        out[name] = {"point": f[..., point_index(quantiles)], "lower": bounds[0], "upper": bounds[1]}
    for name, fit in (peers or {}).items():
        f = [split.transform.inverse(torch.as_tensor(a)) for a in
             fit.forecast(split.z.double().numpy(), origins.numpy(), horizon, nominal or 0.5)]
        out[name] = {"point": f[0], "lower": f[1] if nominal else None, "upper": f[2] if nominal else None}
    return {name: {k: None if v is None else v.numpy() for k, v in f.items()} for name, f in out.items()}


def conformal_widths(forecasts: dict, truth, transform, nominal: float) -> dict:
    """Split-conformal widening of each model's interval (conformalized quantile regression: Romano, Patterson
    and Candes 2019), per horizon, in model space (after ``log1p`` a width is a ratio, as the series' scale moves).

    Args:
        forecasts: ``forecast_origins`` output on the calibration (validation) window.
        truth: ``(N, H)`` observed values at those origins, in original units.
        nominal: the level the interval should reach, e.g. 0.8.

    Returns:
        ``{model: (H,) widths}``: the k-th smallest ``max(lower - y, y - upper)``, k = ``ceil((N + 1) nominal)``.
        Adding it to both bounds gives the level ``nominal`` on exchangeable data; a negative width narrows an
        interval that was too wide.
    """
    import numpy as np

    t, out = transform.forward(np.asarray(truth, dtype=np.float64)), {}
    for name, f in forecasts.items():
        if f.get("lower") is None:
            continue
        e = np.maximum(transform.forward(f["lower"]) - t, t - transform.forward(f["upper"]))  # (N, H)
        level = min(1.0, math.ceil((len(e) + 1) * nominal) / len(e))
        out[name] = np.quantile(e, level, axis=0, method="inverted_cdf")  # the k-th smallest, k = ceil((N+1) nominal)
    return out


def widen(forecasts: dict, widths: dict, transform) -> dict:
    """``forecasts`` with each model's bounds moved out by its conformal ``widths`` (model space), never past
    the point forecast."""
    import numpy as np

    out = dict(forecasts)
    for name, w in widths.items():
        f = forecasts.get(name)
        if f is None or f.get("lower") is None:
            continue
        w = np.asarray(w, dtype=np.float64)[: f["lower"].shape[1]]
        lower = transform.inverse(transform.forward(f["lower"]) - w)
        upper = transform.inverse(transform.forward(f["upper"]) + w)
        out[name] = {**f, "lower": np.minimum(lower, f["point"]), "upper": np.maximum(upper, f["point"])}
    return out


# ----------------------------------------------------------------------------- classical peers
#
# What a statsmodels user fits: the model family's structure chosen by AIC on the training window, the
# parameters estimated there once, then the fitted model filtered forward to each forecast origin without
# refitting (the nets' protocol: weights fixed after training, the input window read up to the origin).

ARIMA_MAX_ORDER = 3          # the grid: p, q in 0..3 (d chosen by KPSS first, as Hyndman & Khandakar 2008)
KPSS_ALPHA = 0.05


def _statsmodels():
    try:
        import statsmodels  # noqa: F401
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("the ETS and ARIMA peers need statsmodels, which is not installed: "
                                  "pip install statsmodels (or the bench extra: pip install neuralsight[bench])",
                                  name=err.name) from None


def _one_blas_thread():
    """A context with numpy's BLAS on one thread (threadpoolctl, when installed): the state-space matrices are
    tiny, and a BLAS thread pool only spin-waits between them (ten times slower on a busy 2-core CPU)."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ModuleNotFoundError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@dataclass
class ClassicalFit:
    """One classical peer fitted on a training window: the candidate with the lowest AIC, and all it tried.

    ``result`` holds statsmodels' fitted results; :meth:`forecast` keeps its parameters fixed.
    """

    kind: str                    # "ets" or "arima"
    spec: str                    # the chosen model, e.g. "ETS(A,Ad,N)" or "ARIMA(2,1,1) with drift"
    aic: float
    candidates: list[dict]       # every candidate: {"model", "aic"} (aic None: the fit failed)
    fit_seconds: float           # wall-clock seconds of the whole search, every candidate included
    result: object = field(repr=False, default=None)

    def describe(self) -> dict:
        return {"model": self.spec, "aic": self.aic, "selected_by": "aic", "fit_seconds": self.fit_seconds,
                "candidates": self.candidates}

    def forecast(self, z, origins, horizon: int, nominal: float):
        """Forecasts from each origin ``t``: the fitted model filtered over ``z[:t+1]`` (no refit), ``horizon`` ahead.

        The model is filtered once over all of ``z`` (a Kalman filter is causal: its state at ``t`` has seen
        ``z[:t+1]`` only), and each forecast is the dynamic prediction from that state, which is what
        ``result.apply(z[:t+1]).get_forecast(horizon)`` gives, in one pass.

        Args:
            z: (T,) series in the space the model was fitted in. origins: (N,) last observed index per forecast,
                with ``origin + horizon < T``.
            nominal: the central prediction interval's level, e.g. 0.8.

        Returns:
            ``(point, lower, upper)``, each an (N, horizon) numpy array.
        """
        import warnings

        import numpy as np

        z = np.asarray(z, dtype=np.float64)
        out = np.empty((3, len(origins), horizon))
        with warnings.catch_warnings(), _one_blas_thread():
            warnings.simplefilter("ignore")
            whole = self.result.apply(z)
            for k, t in enumerate(np.asarray(origins, dtype=np.int64)):
                if t + horizon >= len(z):
                    raise ValueError(f"origin {int(t)} + horizon {horizon} runs past the series ({len(z)} steps)")
                pred = whole.get_prediction(start=int(t) + 1, end=int(t) + horizon, dynamic=True)
                bounds = np.asarray(pred.conf_int(alpha=1.0 - nominal))          # (H, 2)
                out[:, k] = np.asarray(pred.predicted_mean), bounds[:, 0], bounds[:, 1]
        return out[0], out[1], out[2]


def kpss_differences(x, alpha: float = KPSS_ALPHA, max_d: int = 2) -> int:
    """How often to difference ``x``: the smallest ``d`` whose KPSS test (level stationarity) is not rejected
    at ``alpha``, as ``forecast::ndiffs`` and auto.arima choose it."""
    import warnings

    import numpy as np
    from statsmodels.tsa.stattools import kpss

    x = np.asarray(x, dtype=np.float64)
    for d in range(max_d):
        with warnings.catch_warnings(), _one_blas_thread():
            warnings.simplefilter("ignore")       # p-values outside KPSS's table come back clipped, with a warning
            pvalue = kpss(np.diff(x, n=d), regression="c", nlags="auto")[1]
        if pvalue >= alpha:
            return d
    return max_d


def _ets_candidates(n: int, season: int) -> list[tuple[str, dict]]:
    """Additive ETS (the series may be negative in model space): trend none / additive / damped, with and
    without an additive season of period ``season`` (when the window holds three seasons)."""
    seasons = [None] + ([season] if season > 1 and n >= 3 * season else [])
    out = []
    for trend, damped, t in ((False, False, "N"), (True, False, "A"), (True, True, "Ad")):
        for s in seasons:
            out.append((f"ETS(A,{t},{'A' if s else 'N'})", {"trend": trend, "damped_trend": damped, "seasonal": s}))
    return out


def _arima_candidates(d: int, max_order: int = ARIMA_MAX_ORDER) -> list[tuple[str, dict]]:
    """ARIMA(p,d,q), p and q in 0..max_order, with and without a constant (d = 0) or drift (d = 1)."""
    trends = {0: (("n", ""), ("c", " with mean")), 1: (("n", ""), ("t", " with drift"))}.get(d, (("n", ""),))
    return [(f"ARIMA({p},{d},{q}){label}", {"order": (p, d, q), "trend": trend})
            for p in range(max_order + 1) for q in range(max_order + 1) for trend, label in trends]


def fit_classical(kind: str, train, season: int = 7, max_order: int = ARIMA_MAX_ORDER) -> ClassicalFit:
    """Fit ETS or ARIMA on ``train`` as a statsmodels user would: every candidate, the lowest AIC kept.

    Args:
        kind: ``"ets"`` (statsmodels' state-space ``ExponentialSmoothing``; trend none / additive / damped,
            season none / additive with period ``season``) or ``"arima"`` (``d`` from repeated KPSS tests at 5 %,
            then ``p, q`` in 0..3 with and without a constant or drift, maximum likelihood).
        train: (n,) training window (the nets' model space: log1p and standardised).
        season: the seasonal period ``m``.
        max_order: the largest ARIMA ``p`` and ``q`` tried.

    Raises:
        ValueError: an unknown ``kind``, or a window on which no candidate could be fitted.
        ModuleNotFoundError: statsmodels is missing (with the install hint).
    """
    import time
    import warnings

    import numpy as np

    _statsmodels()
    from statsmodels.tsa.arima.model import ARIMA
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    x = np.asarray(train, dtype=np.float64)
    start = time.perf_counter()
    if kind == "ets":
        # The scale is a parameter, not concentrated out: filtered forward, the intervals keep the training
        # window's noise variance instead of re-estimating it from the data they forecast.
        candidates = [(name, lambda kw=kw: ExponentialSmoothing(x, concentrate_scale=False, **kw).fit(disp=False))
                      for name, kw in _ets_candidates(len(x), season)]
    elif kind == "arima":
        candidates = [(name, lambda kw=kw: ARIMA(x, **kw).fit())
                      for name, kw in _arima_candidates(kpss_differences(x), max_order)]
    else:
        raise ValueError(f"unknown classical model '{kind}'; use 'ets' or 'arima'")
    tried, best = [], None
    for name, fit in candidates:
        with warnings.catch_warnings(), _one_blas_thread():
            warnings.simplefilter("ignore")       # convergence chatter: the AIC judges the fit
            try:
                res = fit()
            except (np.linalg.LinAlgError, ValueError):
                tried.append({"model": name, "aic": None})
                continue
        aic = float(res.aic)
        tried.append({"model": name, "aic": aic})
        if np.isfinite(aic) and (best is None or aic < best[1]):
            best = (name, aic, res)
    if best is None:
        raise ValueError(f"no {kind} candidate could be fitted on the {len(x)}-step training window")
    return ClassicalFit(kind, best[0], best[1], tried, time.perf_counter() - start, best[2])
