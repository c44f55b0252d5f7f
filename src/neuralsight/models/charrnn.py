"""Character-level recurrent language model (Karpathy's char-rnn, 2015), in nanoGPT's reading order.

``CharRNN``: embedding -> fused ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` stack -> dropout -> linear head over
the vocabulary. Training runs the fused module (cuDNN on a GPU, oneDNN on a CPU); :meth:`CharRNN.unrolled`
returns the same weights as the explicit gate-by-gate cells of ``layers/recurrent.py`` for gate traces.
"""

from __future__ import annotations

import torch
from torch import nn

from neuralsight.layers.recurrent import CELL_TYPES, UnrolledRecurrent
from neuralsight.models import register_model

FUSED = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@register_model("charrnn")
class CharRNN(nn.Module):
    """Predict the next character from the characters so far.

    Args:
        vocab_size: number of distinct characters.
        cell: "rnn" (tanh), "lstm" or "gru".
        embedding: size of each character's learned vector.
        hidden_size: units per recurrent layer.
        num_layers: stacked recurrent layers.
        dropout: dropout between layers and before the head (0 disables).
        tie_weights: share the embedding matrix with the output head (Press & Wolf 2017); needs
            ``embedding == hidden_size``.
    """

    def __init__(self, vocab_size: int, cell: str = "lstm", embedding: int = 64, hidden_size: int = 512,
                 num_layers: int = 2, dropout: float = 0.0, tie_weights: bool = False):
        super().__init__()
        if cell not in CELL_TYPES:
            raise ValueError(f"cell must be one of {CELL_TYPES}, got {cell!r}")
        if tie_weights and embedding != hidden_size:
            raise ValueError(f"tie_weights needs embedding == hidden_size, got {embedding} and {hidden_size}")
        self.vocab_size = vocab_size
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embed = nn.Embedding(vocab_size, embedding)
        self.rnn = FUSED[cell](embedding, hidden_size, num_layers=num_layers, batch_first=True,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.head.weight = self.embed.weight

    def forward(self, idx: torch.Tensor, state=None):
        """``idx`` (B, T) character ids -> logits (B, T, V) and the final recurrent state."""
        x = self.embed(idx)                                          # (B, T, E)
        out, state = self.rnn(x, state)                              # (B, T, H)
        logits = self.head(self.drop(out))                           # (B, T, V)
        return logits, state

    def unrolled(self) -> UnrolledRecurrent:
        """The recurrent stack as explicit cells holding a copy of these weights (for inspection)."""
        return UnrolledRecurrent.from_fused(self.rnn)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
