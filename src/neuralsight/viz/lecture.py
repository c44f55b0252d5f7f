"""Figures of the lecture's ideas that need no trained run (drawn by ``neuralsight lecture``).

Each function takes plain tensors/arrays computed elsewhere (``lecture/``, ``layers/``) and writes one PNG:
channels (several kernels in parallel), the fully connected weight blow-up, flatten and softmax, the
transposed convolution step by step, and the LSTM's gates (equations and values).
"""

from __future__ import annotations

from pathlib import Path

from neuralsight.viz.figures import plt, save


def _grid_numbers(ax, values, fmt: str = "{:g}", highlight=None, cmap="Blues", vmin=None, vmax=None) -> None:
    """A small matrix drawn as cells with its numbers written in (zeros left blank when ``highlight`` is given)."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    top = float(np.abs(arr).max()) or 1.0
    ax.imshow(arr, cmap=cmap, vmin=-top if vmin is None else vmin, vmax=top if vmax is None else vmax,
              interpolation="nearest")
    for (r, c), v in np.ndenumerate(arr):
        if highlight is not None and not highlight[r, c]:
            continue
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7,
                color="white" if abs(v) > 0.65 * top else "black")
    ax.set_xticks(np.arange(-0.5, arr.shape[1], 1), minor=True)
    ax.set_yticks(np.arange(-0.5, arr.shape[0], 1), minor=True)
    ax.grid(which="minor", color="#bbb", lw=0.5)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)


def channels_figure(image, kernels: list[tuple[str, object]], maps, path: Path, title: str = "") -> Path:
    """Several kernels in parallel: the input, each kernel (numbers) above its output map, and the stacked
    multi-channel feature map ``(C, H', W')`` that the next layer reads.

    Args:
        image: ``(H, W)``; kernels: ``[(name, (k, k))]``; maps: ``(C, H', W')`` (one channel per kernel).
    """
    import numpy as np

    maps = np.asarray(maps, dtype=np.float32)
    c = len(kernels)
    p = plt()
    fig = p.figure(figsize=(2.0 * (c + 2) + 0.5, 4.6))
    grid = fig.add_gridspec(2, c + 2, height_ratios=[1, 1.6], hspace=0.35, wspace=0.3)
    ax = fig.add_subplot(grid[1, 0])
    ax.imshow(np.asarray(image), cmap="gray", interpolation="nearest")
    ax.set_title(f"input\n1x{image.shape[0]}x{image.shape[1]}", fontsize=8)
    ax.axis("off")
    top = float(np.abs(maps).max()) or 1.0
    for k, (name, kern) in enumerate(kernels):
        _grid_numbers(fig.add_subplot(grid[0, k + 1]), kern, "{:.2g}", cmap="RdBu_r")
        fig.axes[-1].set_title(name, fontsize=8)
        ax = fig.add_subplot(grid[1, k + 1])
        ax.imshow(maps[k], cmap="RdBu_r", vmin=-top, vmax=top, interpolation="nearest")
        ax.set_title(f"channel {k}\n{maps.shape[1]}x{maps.shape[2]}", fontsize=8)
        ax.axis("off")
    ax = fig.add_subplot(grid[:, c + 1])
    shift = 0.12
    for k in reversed(range(c)):                  # the stack: channel 0 in front
        ax.imshow(maps[k], cmap="RdBu_r", vmin=-top, vmax=top, interpolation="nearest",
                  extent=(k * shift, 1 + k * shift, k * shift, 1 + k * shift))
        ax.add_patch(p.matplotlib.patches.Rectangle((k * shift, k * shift), 1, 1, fill=False, ec="#333", lw=0.8))
    ax.set_xlim(-0.05, 1.05 + c * shift)
    ax.set_ylim(-0.05, 1.05 + c * shift)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"feature map\n{c}x{maps.shape[1]}x{maps.shape[2]}\n(channels x height x width)", fontsize=8)
    fig.suptitle((title + "\n" if title else "") + f"one conv layer with {c} filters = {c} kernels in parallel "
                 f"(weight {c}x1x{kernels[0][1].shape[0]}x{kernels[0][1].shape[1]}); a next-layer filter spans all "
                 f"{c} channels (weight C_out x {c} x k x k). Colour: blue < 0 < red, one scale.", fontsize=8)
    return save(fig, path)


def fc_blowup_figure(rows: list[dict], sides: list[int], hidden: int, kernel_size: int, path: Path,
                     size: int = 128) -> Path:
    """Weights of a dense layer (``side^2 * hidden``) against a conv layer (``k^2 * hidden``, any side), log scale,
    with the lecture's number marked, and the ``fc_vs_conv`` rows for ``size`` as bars."""
    p = plt()
    fig, (ax, bx) = p.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.3, 1]})
    dense = [s * s * hidden for s in sides]
    ax.plot(sides, dense, marker="o", ms=3, color="tab:red", label=f"dense: side x side inputs -> {hidden} neurons")
    ax.plot(sides, [kernel_size**2 * hidden] * len(sides), marker="o", ms=3, color="tab:blue",
            label=f"conv {kernel_size}x{kernel_size}, {hidden} filters (independent of the image size)")
    ax.plot(sides, [kernel_size**2] * len(sides), ls="--", color="tab:cyan", label=f"conv {kernel_size}x{kernel_size}, 1 filter")
    ax.set_yscale("log")
    ax.set_xlabel("input side (pixels, one channel)")
    ax.set_ylabel("weights (no bias)")
    ax.grid(alpha=0.3, which="both")
    mark = size * size * hidden
    ax.scatter([size], [mark], s=60, color="black", zorder=5)
    ax.annotate(f"{size}x{size} -> {hidden}: {mark:,} weights", (size, mark), textcoords="offset points",
                xytext=(-150, 10), fontsize=8)
    ax.legend(fontsize=7, loc="center right")
    ax.set_title("a dense layer's weights grow with the pixel count; a conv layer's do not", fontsize=9)
    labels = [r["layer"] for r in rows]
    values = [r["weights"] for r in rows]
    bx.barh(range(len(rows)), values, color=["tab:red", "tab:cyan", "tab:blue"][:len(rows)])
    bx.set_xscale("log")
    bx.set_yticks(range(len(rows)), [lab.replace(": ", ":\n") for lab in labels], fontsize=7)
    bx.invert_yaxis()
    for i, v in enumerate(values):
        bx.text(v, i, f" {v:,}", va="center", fontsize=8)
    bx.set_xlim(1, max(values) * 30)
    bx.set_title(f"at {size}x{size}: `neuralsight params` (the lecture's table)", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def softmax_figure(image, features, logits, classes: list[str], path: Path, source: str) -> Path:
    """Input -> last feature map ``(C, h, w)`` -> flattened vector ``(C*h*w,)`` -> logits -> softmax bars.

    The softmax panel states the sum of the probabilities (one, up to rounding).
    """
    import math

    import numpy as np

    feats = np.asarray(features, dtype=np.float32)
    z = np.asarray(logits, dtype=np.float64)
    prob = np.exp(z - z.max())
    prob /= prob.sum()
    p = plt()
    fig = p.figure(figsize=(15, 4.4))
    grid = fig.add_gridspec(1, 5, width_ratios=[1, 1.2, 0.5, 1.5, 1.5], wspace=0.45)
    ax = fig.add_subplot(grid[0])
    ax.imshow(np.asarray(image), cmap="gray")
    ax.set_title(f"input {'x'.join(map(str, np.asarray(image).shape))}", fontsize=8)
    ax.axis("off")
    c, h, w = feats.shape
    cols = math.ceil(math.sqrt(c))
    tiles = np.full((cols * cols, h, w), np.nan, dtype=np.float32)
    tiles[:c] = feats
    mosaic = tiles.reshape(cols, cols, h, w).transpose(0, 2, 1, 3).reshape(cols * h, cols * w)
    ax = fig.add_subplot(grid[1])
    ax.imshow(mosaic, cmap="viridis", interpolation="nearest")
    ax.set_title(f"last feature map {c}x{h}x{w}\n({c} channels tiled)", fontsize=8)
    ax.axis("off")
    ax = fig.add_subplot(grid[2])
    flat = feats.reshape(-1)
    rows = math.ceil(len(flat) / 8)
    strip = np.full(rows * 8, np.nan, dtype=np.float32)
    strip[:len(flat)] = flat
    ax.imshow(strip.reshape(rows, 8), cmap="viridis", aspect="auto", interpolation="nearest")
    ax.set_title(f"flatten\n{len(flat):,} values", fontsize=8)
    ax.axis("off")
    ax = fig.add_subplot(grid[3])
    ax.barh(range(len(z)), z, color=["tab:green" if i == int(z.argmax()) else "tab:gray" for i in range(len(z))])
    ax.set_yticks(range(len(z)), classes, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.6)
    ax.set_title("logits z = dense(flattened)\n(any real numbers)", fontsize=8)
    ax = fig.add_subplot(grid[4])
    ax.barh(range(len(prob)), prob, color=["tab:green" if i == int(prob.argmax()) else "tab:blue"
                                           for i in range(len(prob))])
    ax.set_yticks(range(len(prob)), classes, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    for i, v in enumerate(prob):
        ax.text(v + 0.01, i, f"{v:.3f}", va="center", fontsize=7)
    ax.set_title(f"softmax: p_k = exp(z_k) / sum_j exp(z_j)\nsum = {prob.sum():.3f}", fontsize=8)
    for ax in fig.axes[3:]:
        ax.tick_params(axis="x", labelsize=7)
    import textwrap

    fig.subplots_adjust(top=0.74)
    fig.suptitle("\n".join(textwrap.wrap(f"flatten and softmax: {source}", 150)), fontsize=9)
    return save(fig, path)


def transposed_figure(x, kernel, steps, path: Path) -> Path:
    """The transposed convolution of ``x`` with ``kernel`` built stamp by stamp, then summed (``lecture/transpose``).

    Top row: the input, the kernel, the output (the sum, overlaps outlined) and how many stamps cover each cell.
    Bottom row: each input pixel's stamp ``x[i, j] * kernel`` at ``(stride*i, stride*j)``.
    """
    import numpy as np

    stamps = steps.stamps
    n = len(stamps)
    cols = max(4, n)
    p = plt()
    fig, axes = p.subplots(2, cols, figsize=(2.3 * cols, 5.9), squeeze=False)
    out = steps.output.numpy()
    vmax = float(np.abs(out).max()) or 1.0
    _grid_numbers(axes[0, 0], x.numpy(), "{:g}", cmap="Oranges", vmin=0, vmax=float(x.abs().max()) or 1)
    axes[0, 0].set_title(f"input x {x.shape[0]}x{x.shape[1]}", fontsize=8)
    _grid_numbers(axes[0, 1], kernel.numpy(), "{:g}", cmap="Purples", vmin=0, vmax=float(kernel.abs().max()) or 1)
    axes[0, 1].set_title(f"kernel {kernel.shape[0]}x{kernel.shape[1]}, stride {steps.stride}", fontsize=8)
    _grid_numbers(axes[0, 2], out, "{:g}", cmap="Blues", vmin=0, vmax=vmax)
    overlap = steps.overlap.numpy()
    p_ = steps.padding
    crop = overlap[p_:overlap.shape[0] - p_, p_:overlap.shape[1] - p_]
    for (r, c), k in np.ndenumerate(crop):
        if k > 1:
            axes[0, 2].add_patch(p.matplotlib.patches.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
    axes[0, 2].set_title(f"output = sum of the stamps\n{out.shape[0]}x{out.shape[1]} (red: overlaps add)", fontsize=8)
    _grid_numbers(axes[0, 3], crop, "{:.0f}", cmap="Reds", vmin=0, vmax=max(2, int(crop.max())))
    axes[0, 3].set_title("stamps covering each cell", fontsize=8)
    for ax in axes[0, 4:]:
        ax.axis("off")
    for k, stamp in enumerate(stamps):
        ax = axes[1, k]
        canvas = stamp.canvas.numpy()
        _grid_numbers(ax, canvas, "{:g}", highlight=canvas != 0, cmap="Blues", vmin=0, vmax=vmax)
        r, c = stamp.origin
        kh, kw = kernel.shape
        ax.add_patch(p.matplotlib.patches.Rectangle((c - 0.5, r - 0.5), kw, kh, fill=False, ec="tab:orange", lw=2))
        ax.set_title(f"step {k + 1}: x[{stamp.index[0]},{stamp.index[1]}] = {stamp.value:g}\n"
                     f"times the kernel, at ({r}, {c})", fontsize=8)
    for ax in axes[1, n:]:
        ax.axis("off")
    fig.suptitle(f"transposed convolution (\"deconvolution\"): each input pixel stamps the kernel, stride "
                 f"{steps.stride} apart; {x.shape[0]}x{x.shape[1]} -> {out.shape[0]}x{out.shape[1]} = "
                 f"(n - 1) x stride + kernel - 2 x padding; equals torch's conv_transpose2d", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


LSTM_EQUATIONS = [
    ("forget", "f_t = σ(W_f x_t + U_f h_{t-1} + b_f)", "what to erase from the cell state"),
    ("input", "i_t = σ(W_i x_t + U_i h_{t-1} + b_i)", "how much of the candidate to write"),
    ("candidate", "g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)", "the new content"),
    ("output", "o_t = σ(W_o x_t + U_o h_{t-1} + b_o)", "what to expose"),
    ("cell", "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t", "the memory line"),
    ("hidden", "h_t = o_t ⊙ tanh(c_t)", "the output and the next step's state"),
]


def lstm_gates_figure(trace: dict, path: Path) -> Path:
    """Left: the LSTM cell as a diagram with its equations. Right: every gate of a small cell over a short
    input (``lecture/gates.lstm_gate_trace``), one line per unit."""
    import numpy as np

    p = plt()
    names = [n for n, _, _ in LSTM_EQUATIONS]
    fig = p.figure(figsize=(14, 8.5))
    grid = fig.add_gridspec(len(names) + 1, 2, width_ratios=[1.05, 1.25], hspace=0.5, wspace=0.12)
    ax = fig.add_subplot(grid[:, 0])
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.axis("off")
    patches = p.matplotlib.patches

    def node(x, y, text, fc, r=0.38):
        ax.add_patch(patches.Circle((x, y), r, fc=fc, ec="#333", lw=1, zorder=3))
        ax.text(x, y, text, ha="center", va="center", fontsize=10, zorder=4)

    def gate(x, y, text, fc):
        ax.add_patch(patches.FancyBboxPatch((x - 0.5, y - 0.3), 1.0, 0.6, boxstyle="round,pad=0.03", fc=fc,
                                            ec="#333", zorder=3))
        ax.text(x, y, text, ha="center", va="center", fontsize=9, zorder=4)

    def line(a, b, colour="#333", lw=1.3):
        ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "-|>", "color": colour, "lw": lw})

    ax.add_patch(patches.FancyBboxPatch((0.9, 5.0), 8.2, 4.2, boxstyle="round,pad=0.1", fc="#f7f8fb", ec="#99a"))
    line((0.2, 8.6), (2.5, 8.6), "#c33", 2)                 # c_{t-1}: the memory line along the top
    node(2.9, 8.6, "×", "#fde2e2")
    line((3.3, 8.6), (5.1, 8.6), "#c33", 2)
    node(5.5, 8.6, "+", "#fde2e2")
    line((5.9, 8.6), (9.8, 8.6), "#c33", 2)
    ax.text(0.2, 8.9, "c_{t-1}", fontsize=9, color="#c33")
    ax.text(9.2, 8.9, "c_t", fontsize=9, color="#c33")
    for x, label, fc in ((2.9, "f_t σ", "#dbe9f7"), (4.3, "i_t σ", "#dbe9f7"), (5.6, "g_t\ntanh", "#e3f2e1"),
                         (7.2, "o_t σ", "#dbe9f7")):
        gate(x, 6.0, label.replace(" σ", "\nσ"), fc)
    line((2.9, 6.3), (2.9, 8.2))
    node(5.0, 7.3, "×", "#fde2e2", 0.3)
    line((4.3, 6.3), (4.85, 7.05))
    line((5.6, 6.3), (5.15, 7.05))
    line((5.0, 7.6), (5.4, 8.2))
    node(7.9, 7.5, "tanh", "#e3f2e1", 0.36)
    line((7.4, 8.6), (7.8, 7.85))
    node(8.4, 6.5, "×", "#fde2e2", 0.3)
    line((7.2, 6.3), (8.1, 6.45))
    line((8.1, 7.2), (8.35, 6.8))
    line((8.7, 6.5), (9.8, 6.5), "#1a5fb4", 2)
    ax.text(9.25, 6.7, "h_t", fontsize=9, color="#1a5fb4")
    line((0.2, 5.4), (2.2, 5.4), "#1a5fb4", 2)
    ax.text(0.2, 5.55, "h_{t-1}", fontsize=9, color="#1a5fb4")
    for x in (2.9, 4.3, 5.6, 7.2):
        line((x, 5.2), (x, 5.7), "#666", 1)
    ax.plot([2.2, 7.2], [5.2, 5.2], color="#666", lw=1)
    line((4.7, 4.3), (4.7, 5.2), "#333", 1.5)
    ax.text(4.7, 4.05, "x_t", ha="center", fontsize=9)
    for k, (_, equation, meaning) in enumerate(LSTM_EQUATIONS):
        ax.text(0.3, 3.3 - 0.55 * k, equation, fontsize=10, family="DejaVu Sans")
        ax.text(6.9, 3.3 - 0.55 * k, meaning, fontsize=8, color="#556")
    ax.text(0.3, -0.2, "σ: sigmoid (0 closed, 1 open); ⊙: element-wise product; torch stacks the blocks as i, f, g, o",
            fontsize=7.5, color="#556")
    ax.set_title("the LSTM cell (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000)", fontsize=9)

    seq = np.asarray(trace["input_sequence"])
    steps = np.arange(1, len(seq) + 1)
    bx = fig.add_subplot(grid[0, 1])
    bx.bar(steps, seq, color="#888", label="input x_t")
    if "prediction" in trace:
        bx.plot(steps, np.asarray(trace["prediction"]), color="black", marker="o", ms=3, lw=1,
                label="read-out of h_t (should hold the last pulse)")
        bx.legend(fontsize=6, loc="upper left")
    bx.set_title("sample and hold: the input pulses, and what the trained cell reports", fontsize=8, loc="left")
    bx.set_xticks(steps)
    bx.tick_params(labelsize=6)
    for k, (name, equation, _) in enumerate(LSTM_EQUATIONS):
        ax2 = fig.add_subplot(grid[k + 1, 1], sharex=bx)
        values = np.asarray(trace[name])                       # (T, H)
        for u in range(values.shape[1]):
            ax2.plot(steps, values[:, u], marker="o", ms=2.5, lw=1, label=f"unit {u}")
        if name in ("forget", "input", "output"):
            ax2.set_ylim(-0.05, 1.05)
        for t in np.flatnonzero(seq):
            ax2.axvline(t + 1, color="#bbb", lw=3, alpha=0.4, zorder=0)
        ax2.set_title(equation.split(" = ")[0] + f" ({name})", fontsize=8, loc="left")
        ax2.grid(alpha=0.3)
        ax2.tick_params(labelsize=6)
        if k == 0:
            ax2.legend(fontsize=6, ncol=values.shape[1], loc="lower right")
    ax2.set_xlabel("time step t (grey bands: the pulses)", fontsize=8)
    units = np.asarray(trace["hidden"]).shape[1]
    losses = trace.get("losses")
    trained = (f"trained {trace['steps']} Adam steps on sample-and-hold (MSE {losses[-1]:.4f}; predicting the mean: "
               f"{trace['baseline']:.4f})" if losses else "untrained")
    fig.suptitle(f"LSTM gates: a {units}-unit cell, {trained}; gates recorded with layers/recurrent.LSTMCell",
                 fontsize=9)
    return save(fig, path)
