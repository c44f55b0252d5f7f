"""V-Net: fully convolutional volumetric segmentation (Milletari, Navab, Ahmadi 2016, arXiv:1606.04797).

The U-Net idea for 3D data. Each stage is a stack of 5x5x5 convolutions whose output is added to the
stage's input (a residual stage), PReLU non-linearities, strided 2x2x2 convolutions instead of pooling
to go down, transposed 2x2x2 convolutions to go up, and skip connections that concatenate the encoder's
features into the decoder. The paper's stage depths are 1, 2, 3, 3, 3 convolutions going down and
3, 3, 2, 1 going up, starting at 16 channels and doubling per level.

Differences from the paper, all options: a normalisation layer after each convolution (the paper had
none; MONAI's ``VNet`` uses batch norm, which trains much faster), dropout, width and depth.
Any input size works: the volume is padded up to a multiple of ``2**depth`` and the output is cropped
back, so ``forward`` returns logits of the input's exact spatial size.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from neuralsight.layers.blocks import NORMS, ConvBlock, conv_nd, make_activation, make_dropout
from neuralsight.models.registry import register_model

PAPER_CONVS = (1, 2, 3, 3, 3)


class ResidualStage(nn.Module):
    """``num_convs`` 5x5x5 convolutions; the stage input is added before the last PReLU (paper Fig. 1).

    Shapes: ``x (B, in_channels, D, H, W)``, ``residual (B, channels, D, H, W)`` -> ``(B, channels, D, H, W)``.
    """

    def __init__(self, in_channels: int, channels: int, num_convs: int, kernel_size: int, norm: str | None,
                 dropout: float = 0.0):
        super().__init__()
        # Every convolution but the last ends in a PReLU; the last one's PReLU comes after the residual sum.
        self.convs = nn.Sequential(*(
            ConvBlock(3, in_channels if i == 0 else channels, channels, kernel_size, norm,
                      activation="prelu" if i < num_convs - 1 else None)
            for i in range(num_convs)))
        self.act = make_activation("prelu", channels)
        self.dropout = make_dropout(3, dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.act(self.convs(x) + residual))  # (B, C, D, H, W)


# V-Net 0.1 wrote its down/up convolutions with children named conv, norm, act; they are ConvBlocks now
# (children 0, 1, 2). The state dict keeps the 0.1 names, so every saved run loads unchanged.
_RESAMPLE_KEY = re.compile(r"^(?P<prefix>.*?)(?P<path>(?:down|up)\.\d+)\.(?P<child>[^.]+)\.(?P<rest>.+)$")
_V01_CHILD = {"0": "conv", "1": "norm", "2": "act"}
_BLOCK_CHILD = {name: index for index, name in _V01_CHILD.items()}


def _rename_resample_keys(state_dict: dict, prefix: str, names: dict[str, str]) -> None:
    """Rename ``{prefix}down.i.<child>.*`` / ``up.i.<child>.*`` keys in place, keeping their order."""
    items = list(state_dict.items())
    state_dict.clear()
    for key, value in items:
        m = _RESAMPLE_KEY.match(key)
        if m and m["prefix"] == prefix and m["child"] in names:
            key = f"{prefix}{m['path']}.{names[m['child']]}.{m['rest']}"
        state_dict[key] = value


def _save_v01_keys(module, state_dict, prefix, local_metadata) -> None:
    _rename_resample_keys(state_dict, prefix, _V01_CHILD)


def _load_v01_keys(module, state_dict, prefix, *args) -> None:
    _rename_resample_keys(state_dict, prefix, _BLOCK_CHILD)


@register_model("vnet")
class VNet(nn.Module):
    """V-Net for volumes ``(B, in_channels, D, H, W)`` -> logits ``(B, num_classes, D, H, W)``.

    Args:
        in_channels: image channels (1 for MRI/CT).
        num_classes: output classes including background.
        base_channels: channels of the first stage (paper: 16); level ``l`` has ``base_channels * 2**l``.
        depth: number of down-convolutions (paper: 4); inputs are padded to a multiple of ``2**depth``.
        kernel_size: convolution size inside the stages (paper: 5).
        num_convs: ``depth + 1`` convolution counts per encoder stage, from the top; the decoder mirrors
            them (default the paper's 1, 2, 3, 3, 3, cut to ``depth + 1`` entries, 3 beyond five).
        norm: ``"batch"``, ``"instance"``, ``"group"`` or ``None`` (paper: none). ``"none"``, the spelling
            0.1 stored in checkpoints, still means ``None``.
        dropout: channel dropout after the deeper stages (0 disables it).

    State-dict keys: the down/up convolutions are :class:`ConvBlock` s, saved under the child names
    ``conv``/``norm``/``act`` that 0.1 used (``down.0.conv.weight``), so checkpoints of every version load.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base_channels: int = 16, depth: int = 4,
                 kernel_size: int = 5, num_convs: list[int] | tuple[int, ...] | None = None,
                 norm: str | None = "batch", dropout: float = 0.0):
        super().__init__()
        if norm == "none":
            norm = None
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS} (None for no norm), got {norm!r}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if num_convs is not None:
            convs = list(num_convs)
        else:
            convs = list(PAPER_CONVS[: depth + 1]) + [3] * max(0, depth + 1 - len(PAPER_CONVS))
        if len(convs) != depth + 1 or min(convs) < 1:
            raise ValueError(f"num_convs needs depth + 1 = {depth + 1} positive entries, got {list(num_convs)}")
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        widths = [base_channels * 2**level for level in range(depth + 1)]

        # Input stage: the paper adds the input, replicated to 16 channels, to the first stage's output.
        self.stem = ResidualStage(in_channels, widths[0], convs[0], kernel_size, norm)
        self.down = nn.ModuleList()
        self.encoder = nn.ModuleList()
        for level in range(1, depth + 1):
            # Strided 2x2x2 convolution: halves the size, doubles the channels (replaces pooling).
            self.down.append(ConvBlock(3, widths[level - 1], widths[level], 2, norm, "prelu", stride=2))
            drop = dropout if level >= depth - 1 else 0.0
            self.encoder.append(ResidualStage(widths[level], widths[level], convs[level], kernel_size, norm, drop))
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in range(depth - 1, -1, -1):
            # Up-convolve to the skip's width and concatenate it, so the decoder stage works at twice
            # the level's width like the paper (e.g. 256 -> 128 up + 128 skip); its input is its residual.
            below = widths[depth] if level == depth - 1 else 2 * widths[level + 1]
            # Transposed 2x2x2 convolution doubling the size (the paper's "de-convolution").
            self.up.append(ConvBlock(3, below, widths[level], 2, norm, "prelu", stride=2, transposed=True))
            drop = dropout if level >= depth - 2 else 0.0
            self.decoder.append(ResidualStage(2 * widths[level], 2 * widths[level], convs[level], kernel_size,
                                              norm, drop))
        self.head = conv_nd(3)(widths[0] * 2, num_classes, 1)
        self.register_state_dict_post_hook(_save_v01_keys)
        self.register_load_state_dict_pre_hook(_load_v01_keys)

    @property
    def gradcam_layer(self) -> nn.Module:
        """The layer Grad-CAM reads: the deepest encoder stage."""
        return self.encoder[-1]

    def forward_intermediates(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Every stage's output, encoder down then decoder up: ``[("encoder 0", (B, C0, *S)), ...,
        ("bottleneck", ...), ("decoder D-1", ...), ..., ("decoder 0", (B, 2 C0, *S))]`` (``x`` padded to a
        multiple of ``2**depth``; decoder level ``l`` has concatenated encoder level ``l``'s skip)."""
        m = 2**self.depth
        x = F.pad(x, [p for s in reversed(x.shape[2:]) for p in (0, (-s) % m)])
        h = self.stem(x, _tile_channels(x, self.stem.act.num_parameters))
        out, skips = [("encoder 0", h)], [h]
        for level, (down, stage) in enumerate(zip(self.down, self.encoder, strict=True), start=1):
            d = down(h)
            h = stage(d, d)
            skips.append(h)
            out.append((f"encoder {level}" if level < self.depth else "bottleneck", h))
        skips.pop()
        for level, (up, stage) in zip(range(self.depth - 1, -1, -1), zip(self.up, self.decoder, strict=True)):
            cat = torch.cat([up(h), skips.pop()], 1)
            h = stage(cat, cat)
            out.append((f"decoder {level}", h))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"VNet expects (B, C, D, H, W), got shape {tuple(x.shape)}")
        size = x.shape[2:]
        m = 2**self.depth
        pad = [(-s) % m for s in size]
        if any(pad):
            # F.pad lists the last dimension first.
            x = F.pad(x, [p for d in reversed(pad) for p in (0, d)])
        h = self.stem(x, _tile_channels(x, self.stem.act.num_parameters))  # (B, C0, D, H, W)
        skips = [h]
        for down, stage in zip(self.down, self.encoder, strict=True):
            d = down(h)                             # (B, 2C, D/2, H/2, W/2)
            h = stage(d, d)
            skips.append(h)
        skips.pop()
        for up, stage in zip(self.up, self.decoder, strict=True):
            u = up(h)                               # (B, C/2, 2D, 2H, 2W)
            cat = torch.cat([u, skips.pop()], 1)    # (B, C, 2D, 2H, 2W)
            h = stage(cat, cat)
        logits = self.head(h)                       # (B, num_classes, D, H, W) padded
        return logits[(...,) + tuple(slice(0, s) for s in size)]


def _tile_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """The input replicated along channels to ``channels`` (the paper adds the 1-channel input to 16)."""
    reps = -(-channels // x.shape[1])
    return x.repeat(1, reps, 1, 1, 1)[:, :channels]  # (B, channels, D, H, W)
