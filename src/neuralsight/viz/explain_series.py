"""Which past days decide a forecast? Attributions over the input window, and an LSTM's gates along it.

- :func:`window_attributions`: integrated gradients (Sundararajan et al. 2017; captum) or gradient x input of
  the point forecast ``h`` steps ahead with respect to each day of the input window. The integrated-gradients
  baseline is the window flattened to its own mean, so a day's attribution is what its deviation from the
  window's level moved the forecast (the attributions sum to forecast(window) - forecast(flat window)).
- :func:`attribution_figure`: the window (original units) above, one bar chart of attributions per model below.
- :func:`recurrent_traces`: every gate of a forecaster's last recurrent layer over the window, from the explicit
  cells of ``layers/recurrent.py`` holding the fused module's weights, in the form ``viz/gates.py`` draws.
"""

from __future__ import annotations

from pathlib import Path

from neuralsight.viz.figures import plt, save

SERIES_METHODS = ("ig", "gradxinput")
TITLES = {"ig": "integrated gradients", "gradxinput": "gradient x input"}


def forecast_score(model, step: int, output: int = 0):
    """``f(x) -> (B,)``: the forecast ``step`` steps ahead (1-based), output ``output`` (the point quantile)."""
    def score(x):
        return model(x)[:, step - 1, output].float()          # (B,)
    return score


def window_attributions(model, x, step: int, output: int = 0, method: str = "ig", steps: int = 32):
    """Attribution of the ``step``-ahead forecast to each input day: ``(W,)`` float32 (CPU), signed.

    Args:
        model: a forecaster ``(B, W) -> (B, H, Q)`` in eval mode.
        x: ``(1, W)`` the window in the model's (transformed) space.
        step: the forecast step explained, 1..H. output: which of the Q outputs (the point forecast's index).
        method: ``ig`` (baseline: the window's mean, flat) or ``gradxinput``.
    """
    import torch

    score = forecast_score(model, step, output)
    if method == "ig":
        try:
            from captum.attr import IntegratedGradients
        except ImportError as err:  # pragma: no cover - captum is a dependency
            from neuralsight.errors import UserError

            raise UserError("explain needs captum", "pip install captum") from err
        baseline = x.mean(dim=1, keepdim=True).expand_as(x)
        with torch.backends.cudnn.flags(enabled=False):  # cuDNN RNNs run backward only in training mode
            attr = IntegratedGradients(score).attribute(x, baselines=baseline, n_steps=steps)
    elif method == "gradxinput":
        x = x.detach().clone().requires_grad_(True)
        with torch.backends.cudnn.flags(enabled=False):
            (grad,) = torch.autograd.grad(score(x).sum(), x)
        attr = grad * x
    else:
        raise ValueError(f"unknown window attribution method {method!r}")
    return attr[0].detach().float().cpu()


def attribution_figure(dates: list, values, maps: dict, method: str, step: int, path: Path, title: str = "") -> Path:
    """The input window (top) and, per model, each day's attribution to the ``step``-ahead forecast (bars).

    Args:
        dates, values: the window's W dates and values (original units). maps: model name -> ``(W,)``.
    """
    import numpy as np

    p = plt()
    fig, axes = p.subplots(1 + len(maps), 1, figsize=(max(7.0, 0.28 * len(dates) + 2), 2.2 * (1 + len(maps))),
                           sharex=True, squeeze=False)
    pos = np.arange(len(dates))
    axes[0, 0].plot(pos, values, marker="o", ms=3, color="tab:blue")
    axes[0, 0].set_title(title or "input window", fontsize=9, loc="left")
    axes[0, 0].grid(alpha=0.3)
    for ax, (name, attr) in zip(axes[1:, 0], maps.items(), strict=True):
        attr = np.asarray(attr, dtype=np.float64)
        ax.bar(pos, attr, color=np.where(attr >= 0, "tab:red", "tab:blue"))
        ax.axhline(0, color="#333", lw=0.6)
        ax.set_ylabel("attribution\n(model units)", fontsize=7)
        top = int(np.argmax(np.abs(attr)))
        ax.set_title(f"{name}: {TITLES.get(method, method)} of the {step}-step forecast (largest: {dates[top]})",
                     fontsize=9, loc="left")
        ax.grid(alpha=0.3, axis="y")
    every = max(1, len(dates) // 14)
    axes[-1, 0].set_xticks(pos[::every])
    axes[-1, 0].set_xticklabels([str(d) for d in dates][::every], rotation=45, ha="right", fontsize=7)
    fig.tight_layout()
    return save(fig, path)


def recurrent_traces(model, x) -> dict:
    """Gates of the forecaster's last recurrent layer over the window ``x (1, W)``: ``{"kind", name: (W, H)}``,
    the cell state through tanh (as ``viz/gates.py``'s ``record_traces`` returns them for a char model)."""
    import numpy as np
    import torch

    from neuralsight.layers.recurrent import UnrolledRecurrent

    unrolled = UnrolledRecurrent.from_fused(model.rnn)
    with torch.no_grad():
        _, _, record = unrolled(x.float()[..., None], trace=True)       # (1, W, 1) in
    last = unrolled.num_layers - 1
    out: dict = {"kind": model.cell}
    for (layer, name), value in record.items():
        if layer == last:
            v = value[0].float().cpu().numpy()                           # (W, H)
            out[name] = np.tanh(v) if name == "cell" else v
    return out
