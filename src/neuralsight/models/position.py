"""The three contenders of the position experiment (``lecture/position.py``): same pattern, new position.

Each reads a sequence ``(B, L)`` and returns one logit per sequence ``(B,)`` ("is the pattern there?"), with
about the same number of parameters:

- :class:`PositionFFN`: a feed-forward net on the whole sequence; every position has its own weights, so
  what it learns at the positions it was trained on does not carry over to the others.
- :class:`PositionLSTM`: the same cell at every step, max-pooled over time.
- :class:`PositionCNN`: one shared detector slid over every position, max-pooled over positions.
"""

from __future__ import annotations

import torch
from torch import nn

from neuralsight.models.registry import register_model


@register_model("position_ffn")
class PositionFFN(nn.Module):
    """Position experiment: a feed-forward net over the whole sequence (position-specific weights).

    Args:
        length: sequence length ``L``.
        hidden_size: units in each of the two hidden layers.
    """

    def __init__(self, length: int = 24, hidden_size: int = 16):
        super().__init__()
        h = hidden_size
        self.net = nn.Sequential(nn.Linear(length, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]                                   # (B,)


@register_model("position_lstm")
class PositionLSTM(nn.Module):
    """Position experiment: an LSTM read over the sequence, its hidden states max-pooled over time.

    Args:
        hidden_size: LSTM units.
    """

    def __init__(self, hidden_size: int = 16):
        super().__init__()
        self.rnn = nn.LSTM(1, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.rnn(x[..., None])                            # (B, L, h)
        return self.out(seq.amax(dim=1))[:, 0]                     # (B,)


@register_model("position_cnn")
class PositionCNN(nn.Module):
    """Position experiment: a 1D CNN (one detector shared by every position), max-pooled over positions.

    Args:
        hidden_size: detector channels.
        pattern_length: width of the first (valid) convolution, the length of the pattern to find.
    """

    def __init__(self, hidden_size: int = 16, pattern_length: int = 4):
        super().__init__()
        h = hidden_size
        self.conv = nn.Sequential(nn.Conv1d(1, h, kernel_size=pattern_length, padding=0), nn.ReLU(),
                                  nn.Conv1d(h, h, kernel_size=1), nn.ReLU())
        self.out = nn.Linear(h, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x[:, None, :])                               # (B, h, L - P + 1)
        return self.out(f.amax(dim=-1))[:, 0]                      # (B,)
