"""The encoder-decoder drawn as a U from measured stage shapes (``lecture/architecture.py``): U-Net and V-Net.

Each box is one stage's feature map: its height follows the spatial size (log scale), its width the channel
count (log scale), its label the shape. Encoder levels step down to the left, decoder levels step back up to
the right, and the skip connections run across at each level.
"""

from __future__ import annotations

import math
from pathlib import Path


def _label(shape) -> str:
    return "x".join(str(s) for s in shape)


def encoder_decoder_figure(stages: dict, path: Path, title: str = "") -> Path:
    """The U of ``stages`` (``unet_stages`` / ``vnet_stages``): boxes per stage, down/up arrows, skip arrows."""
    from neuralsight.viz.figures import plt, save

    levels = stages["levels"]
    depth = len(levels) - 1
    top_side = max(levels[0]["encoder"][1:])
    top_channels = max(max(lv["encoder"][0], (lv["decoder"] or (1,))[0]) for lv in levels)

    def box_size(shape) -> tuple[float, float]:
        height = 0.35 + 0.55 * (1 + math.log2(max(shape[1:]) / top_side) / max(depth, 1))  # 0.35 .. 0.9
        width = 0.2 + 0.4 * math.log2(shape[0] + 1) / math.log2(top_channels + 1)
        return width, height

    p = plt()
    fig, ax = p.subplots(figsize=(4.0 + 3.0 * depth, 1.8 + 1.25 * depth))
    step_x, step_y = 1.5, 1.25
    centre: dict = {}

    def draw(key, x, y, shape, colour, caption, side):
        w, h = box_size(shape)
        ax.add_patch(p.matplotlib.patches.FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                                         fc=colour, ec="#334", lw=1))
        # The label sits beside the box, on the side no arrow uses.
        tx, ty, ha, va = {"left": (x - w / 2 - 0.08, y, "right", "center"),
                          "right": (x + w / 2 + 0.08, y, "left", "center"),
                          "below": (x, y - h / 2 - 0.08, "center", "top"),
                          "above": (x, y + h / 2 + 0.08, "center", "bottom")}[side]
        ax.text(tx, ty, f"{caption}\n{_label(shape)}", ha=ha, va=va, fontsize=7, family="monospace",
                color="#223")
        centre[key] = (x, y, w, h)

    def arrow(a, b, colour="#334", text="", style="-|>", rad=0.0, offset=(0.0, 0.0)):
        ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": style, "color": colour, "lw": 1.3,
                                                    "connectionstyle": f"arc3,rad={rad}"})
        if text:
            ax.text((a[0] + b[0]) / 2 + offset[0], (a[1] + b[1]) / 2 + offset[1], text, fontsize=6.5,
                    color=colour, ha="center", va="center")

    draw("input", -step_x, 0, stages["input"], "#eef1f6", "input", "above")
    for lv in levels:
        i = lv["level"]
        x, y = i * step_x, -i * step_y
        draw(f"enc{i}", x, y, lv["encoder"], "#cfe3f7" if i < depth else "#f7e3c6",
             "bottleneck" if i == depth else f"encoder {i}", "below" if i == depth else "above" if i == 0 else "left")
    for lv in reversed(levels[:-1]):
        i = lv["level"]
        x, y = (2 * depth - i) * step_x, -i * step_y
        draw(f"dec{i}", x, y, lv["decoder"], "#d5efd8", f"decoder {i}", "right")
    hx = (2 * depth + 1.7) * step_x
    draw("head", hx, 0, stages["output"], "#f3d3d3", "output", "above")
    x0, y0, w0, _ = centre["input"]
    x1, y1, w1, _ = centre["enc0"]
    arrow((x0 + w0 / 2, y0), (x1 - w1 / 2, y1))
    for i in range(depth):
        xa, ya, _, ha = centre[f"enc{i}"]
        xb, yb, _, hb = centre[f"enc{i + 1}"]
        arrow((xa, ya - ha / 2), (xb - 0.1, yb + hb / 2), text=stages["down"] if i == 0 else "",
              offset=(-0.75, 0.0))
        xc, yc, _, hc = centre[f"dec{i}"]
        below = centre[f"dec{i + 1}"] if i + 1 < depth else centre[f"enc{depth}"]
        up_shape = levels[i]["up"]
        arrow((below[0] + 0.1, below[1] + below[3] / 2), (xc, yc - hc / 2), colour="#1a7a3a",
              text=f"{stages['up'] if i == depth - 1 else 'up'}\n-> {_label(up_shape)}" if up_shape else "",
              offset=(0.75, 0.0))
        xe, ye, we, _ = centre[f"enc{i}"]
        arrow((xe + we / 2, ye + 0.05), (xc - centre[f"dec{i}"][2] / 2, yc + 0.05), colour="#b5651d",
              style="-|>", text=stages["skip"] if i == 0 else "", offset=(0, 0.12))
    xd, yd, wd, _ = centre["dec0"]
    xh, yh, wh, _ = centre["head"]
    arrow((xd + wd / 2, yd), (xh - wh / 2, yh))
    ax.set_xlim(-step_x - 0.8, hx + 0.8)
    ax.set_ylim(-depth * step_y - 1.0, 1.0)
    ax.axis("off")
    padded = stages.get("padded")
    note = (f"{stages['model']}: {stages['parameters']:,} parameters; each box is one stage's output, channels x size "
            f"(width ~ log channels, height ~ log size)")
    if padded and tuple(padded) != tuple(stages["input"]):
        note += f"\nthe input is padded to {_label(padded)} (a multiple of 2^{depth}) and the output cropped back"
    ax.set_title((title + "\n" if title else "") + note, fontsize=8)
    return save(fig, path)
