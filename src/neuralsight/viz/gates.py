"""What a recurrent character model sees: gate traces and the recurrence unrolled in time.

- :func:`record_traces` asks the model for its gate activations over a passage
  (``CharRNN.gate_activations``: the explicit cells of ``layers/recurrent.py`` with the fused module's
  weights) and keeps every gate of the last layer: forget, input and output gates and
  the cell state for an LSTM (reset/update gates for a GRU, the hidden state for a plain RNN).
- :func:`trace_html` colours each character of the passage by one unit's activation, one line per unit,
  as in Karpathy, Johnson and Fei-Fei (2015), "Visualizing and Understanding Recurrent Networks".
- :func:`trace_heatmap` draws the same numbers as heatmaps (units x characters), one panel per gate.
- :func:`unfold_figure` draws the lecture's unfold slide: one cell per character, the hidden-state vector
  as a small heatmap, the state carried to the next step, the likeliest next character above.
"""

from __future__ import annotations

from pathlib import Path

# Which recorded quantities to show per cell type, with how to display them: "unit" for [0, 1] gates,
# "signed" for values in [-1, 1] (the cell state is shown through tanh, as the output gate sees it).
SHOWN = {
    "lstm": [("cell", "cell state tanh(c_t)", "signed"), ("forget", "forget gate f_t", "unit"),
             ("input", "input gate i_t", "unit"), ("output", "output gate o_t", "unit")],
    "gru": [("hidden", "hidden state h_t", "signed"), ("update", "update gate z_t", "unit"),
            ("reset", "reset gate r_t", "unit")],
    "rnn": [("hidden", "hidden state h_t", "signed")],
}


def record_traces(model, vocab, text: str, layer: int = -1) -> dict:
    """Gate activations over ``text``: ``{"kind": cell type, name: ndarray (T, H)}`` for one layer.

    The cell state is returned through tanh (as the output gate sees it), so every trace lies in [-1, 1].
    """
    import numpy as np

    ids = vocab.encode(text).to(next(model.parameters()).device)[None]   # (1, T)
    out: dict = {"kind": model.cell}
    for name, value in model.gate_activations(ids, layer).items():
        v = value[0].float().cpu().numpy()                               # (T, H)
        out[name] = np.tanh(v) if name == "cell" else v
    return out


def choose_units(traces: dict, count: int) -> list[int]:
    """The ``count`` units whose main signal (cell state or hidden state) varies most over the passage."""
    import numpy as np

    key = SHOWN[traces["kind"]][0][0]
    spread = np.asarray(traces[key]).std(axis=0)                         # (H,)
    return sorted(int(i) for i in np.argsort(-spread)[:count])


def _colour(value: float, mode: str) -> str:
    """Background colour: white -> blue for gates in [0, 1]; blue (-1) / white / red (+1) for signed."""
    if mode == "unit":
        v = min(max(float(value), 0.0), 1.0)
        r, g, b = 255 - int(200 * v), 255 - int(140 * v), 255
    else:
        v = min(max(float(value), -1.0), 1.0)
        if v >= 0:
            r, g, b = 255, 255 - int(190 * v), 255 - int(190 * v)
        else:
            r, g, b = 255 + int(190 * v), 255 + int(120 * v), 255
    return f"#{r:02x}{g:02x}{b:02x}"


def trace_html(text: str, traces: dict, units: list[int]) -> str:
    """HTML: for each gate, one line per unit with every character's background set by its activation."""
    import html

    parts = ['<div class="gate-traces" style="font-family:ui-monospace,Menlo,monospace;font-size:12px">']
    for key, title, mode in SHOWN[traces["kind"]]:
        values = traces[key]                                             # (T, H)
        legend = "0 white, 1 blue" if mode == "unit" else "-1 blue, 0 white, +1 red"
        parts.append(f"<h4 style=\"margin:10px 0 2px\">{html.escape(title)} <span class=\"muted\" "
                     f"style=\"font-weight:normal\">({legend})</span></h4>")
        for u in units:
            spans = []
            for t, ch in enumerate(text):
                shown = "\u21b5" if ch == "\n" else (" " if ch == "\t" else ch)
                spans.append(f'<span title="{values[t, u]:.2f}" style="background:{_colour(values[t, u], mode)}">'
                             f"{html.escape(shown)}</span>")
            parts.append(f'<div style="white-space:pre;overflow-x:auto;line-height:1.45">'
                         f'<span class="muted">unit {u:4d} </span>{"".join(spans)}</div>')
    parts.append("</div>")
    return "\n".join(parts)


def trace_heatmap(text: str, traces: dict, units: list[int], path: Path) -> Path:
    """Heatmaps (units x characters), one panel per gate, characters along the x axis."""
    from neuralsight.viz.figures import plt, save

    shown = SHOWN[traces["kind"]]
    steps = len(text)
    p = plt()
    width = min(22.0, 3.0 + 0.11 * steps)
    fig, axes = p.subplots(len(shown), 1, figsize=(width, 0.9 + (0.28 * len(units) + 0.5) * len(shown)),
                           squeeze=False)
    every = max(1, steps // 120)
    labels = ["\u21b5" if ch == "\n" else ch for ch in text]
    for ax, (key, title, mode) in zip(axes[:, 0], shown, strict=True):
        data = traces[key][:, units].T                                   # (U, T)
        cmap, lo = ("Blues", 0.0) if mode == "unit" else ("RdBu_r", -1.0)
        im = ax.imshow(data, aspect="auto", cmap=cmap, vmin=lo, vmax=1.0, interpolation="nearest")
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_yticks(range(len(units)))
        ax.set_yticklabels([f"unit {u}" for u in units], fontsize=6)
        ax.set_xticks(range(0, steps, every))
        ax.set_xticklabels(labels[::every], fontsize=6, family="monospace")
        fig.colorbar(im, ax=ax, fraction=0.015, pad=0.01)
    fig.tight_layout()
    return save(fig, path)


def unfold_figure(model, vocab, text: str, path: Path) -> Path:
    """The recurrence unrolled over ``text``: input char -> cell (h_t heatmap) -> next-char guess, h_t -> t+1."""
    import math

    import numpy as np
    import torch

    from neuralsight.viz.figures import plt, save

    ids = vocab.encode(text).to(next(model.parameters()).device)[None]   # (1, T)
    was_training = model.training
    model.eval()                                                         # no dropout in the picture
    try:
        with torch.no_grad():
            hidden = model.gate_activations(ids)["hidden"]               # (1, T, H) of the last layer
            logits, _ = model(ids)                                       # (1, T, V)
    finally:
        model.train(was_training)
    h = hidden[0].float().cpu().numpy()                                  # (T, H)
    guess = logits[0].argmax(-1).cpu().tolist()                          # (T,)
    steps, size = h.shape
    rows = max(1, int(math.sqrt(size / 2)))                              # a wide-ish small grid per vector
    cols = math.ceil(size / rows)
    grid = np.full((steps, rows * cols), np.nan)
    grid[:, :size] = h
    grid = grid.reshape(steps, rows, cols)

    p = plt()
    fig = p.figure(figsize=(1.55 * steps + 1.2, 3.4))
    cell_w = 0.8 / steps
    left0 = 0.1
    for t in range(steps):
        left = left0 + t * (0.86 / steps)
        ax = fig.add_axes([left, 0.34, cell_w, 0.32])
        ax.imshow(grid[t], cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_linewidth(1.5)
        ax.set_title(f"h_{t + 1}", fontsize=8)
        cx = left + cell_w / 2
        ch_in = text[t].replace("\n", "\u21b5")
        ch_out = vocab.chars[guess[t]].replace("\n", "\u21b5")
        fig.text(cx, 0.08, repr(ch_in)[1:-1] if ch_in.strip() else "\u2423", ha="center", va="center",
                 fontsize=13, family="monospace", bbox={"boxstyle": "round", "fc": "#eef1f6", "ec": "#889"})
        fig.text(cx, 0.22, f"x_{t + 1}", ha="center", fontsize=7, color="#556")
        fig.text(cx, 0.9, ch_out if ch_out.strip() else "\u2423", ha="center", va="center", fontsize=13,
                 family="monospace", bbox={"boxstyle": "round", "fc": "#e9f6ee", "ec": "#6a8"})
        fig.text(cx, 0.78, "next?", ha="center", fontsize=7, color="#556")
        fig.patches.append(p.matplotlib.patches.FancyArrowPatch(
            (cx, 0.13), (cx, 0.33), transform=fig.transFigure, arrowstyle="-|>", mutation_scale=10, color="#445"))
        fig.patches.append(p.matplotlib.patches.FancyArrowPatch(
            (cx, 0.71), (cx, 0.85), transform=fig.transFigure, arrowstyle="-|>", mutation_scale=10, color="#445"))
        if t + 1 < steps:
            nxt = left0 + (t + 1) * (0.86 / steps)
            fig.patches.append(p.matplotlib.patches.FancyArrowPatch(
                (left + cell_w, 0.5), (nxt, 0.5), transform=fig.transFigure, arrowstyle="-|>", mutation_scale=12,
                color="#c33", lw=1.5))
    fig.text(0.01, 0.5, f"{model.cell.upper()}\n{size} units\nh_t = f(h_{{t-1}}, x_t)", fontsize=8, va="center")
    fig.suptitle("unfolding the recurrence over the seed (red arrows carry h_t to the next step)", fontsize=10)
    return save(fig, path)
