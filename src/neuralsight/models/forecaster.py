"""Sequence forecasters: an input window in, a direct multi-horizon forecast out.

- :class:`RecurrentForecaster` (``"forecaster"``): ``nn.RNN`` (tanh), ``nn.LSTM`` or ``nn.GRU`` reads the
  window; a linear head maps the last hidden state to ``horizon x len(quantiles)`` outputs at once
  (direct multi-output, no feeding forecasts back in).
- :class:`WindowMLP` (``"window_mlp"``): the lecture's feed-forward net on the flattened window.
- Baselines as plain functions over tensors: :func:`naive`, :func:`seasonal_naive`.
- Classical peers (ETS, ARIMA from statsmodels; optional, benchmark use): :func:`classical_forecasts`.

With ``residual=True`` a net predicts offsets from the window's last value, so an untrained net starts
as the naive forecast and learns corrections (it helps a lot on a few hundred training windows).
With quantiles, training uses the pinball loss; the 0.5 quantile (or the middle one) is the point forecast
and the outer quantiles give a prediction interval.
"""

from __future__ import annotations

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


# ----------------------------------------------------------------------------- classical peers


def _statsmodels():
    try:
        import statsmodels  # noqa: F401
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("the ETS and ARIMA peers need statsmodels, which is not installed: "
                                  "pip install statsmodels (a benchmark-only extra)", name=err.name) from None


def classical_forecasts(kind: str, z, fit_end: int, origins, horizon: int, season: int = 7):
    """ETS or ARIMA forecasts in model space, fitted once on ``z[:fit_end]`` then filtered to each origin.

    The same protocol as the nets: parameters are estimated on the training part only; at an origin
    ``t`` the fitted model is run over ``z[:t+1]`` (no refit) and forecasts ``horizon`` steps.

    Args:
        kind: ``"ets"`` (damped additive-trend exponential smoothing, state space) or ``"arima"``
            (ARIMA(2,1,2) with a drift-free difference).
        z: (T,) array in model space. fit_end: first index not used for fitting.
        origins: (N,) last observed index per forecast.

    Returns:
        (N, horizon) numpy array.
    """
    import warnings

    import numpy as np

    _statsmodels()
    z = np.asarray(z, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "ets":
            from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

            res = ExponentialSmoothing(z[:fit_end], trend=True, damped_trend=True).fit(disp=False)
        elif kind == "arima":
            from statsmodels.tsa.arima.model import ARIMA

            res = ARIMA(z[:fit_end], order=(2, 1, 2)).fit()
        else:
            raise ValueError(f"unknown classical model '{kind}'; use 'ets' or 'arima'")
        out = np.empty((len(origins), horizon))
        for k, t in enumerate(np.asarray(origins)):
            out[k] = res.apply(z[: int(t) + 1]).forecast(horizon)
    return out
