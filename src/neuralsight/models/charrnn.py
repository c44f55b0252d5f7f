"""Character-level recurrent language model (Karpathy's char-rnn, 2015), in nanoGPT's reading order.

``CharRNN``: embedding -> fused ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` stack -> dropout -> linear head over
the vocabulary. Training runs the fused module (cuDNN on a GPU, oneDNN on a CPU). The model owns what is
done with it afterwards: :meth:`CharRNN.generate` samples a continuation (nanoGPT's ``GPT.generate``), and
:meth:`CharRNN.gate_activations` runs the same weights through the explicit gate-by-gate cells of
``layers/recurrent.py`` and returns every gate at every step (the gate-trace figures).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from neuralsight.layers.recurrent import CELL_TYPES, UnrolledRecurrent, make_fused
from neuralsight.models.registry import register_model

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]   # h (L, B, H), or (h, c) for the LSTM


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    """Sampling distribution ``(V,)`` from next-token logits ``(V,)``: divide by ``temperature``, keep the
    ``top_k`` likeliest (``None`` or 0 keeps all; ties with the k-th are kept), softmax."""
    logits = logits / temperature                                   # (V,)
    if top_k and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.softmax(logits, dim=-1)


@register_model("charrnn")
class CharRNN(nn.Module):
    """Predict the next character from the characters so far (embedding, RNN/LSTM/GRU stack, linear head).

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
        self.rnn = make_fused(cell, embedding, hidden_size, num_layers, dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.head.weight = self.embed.weight

    def forward(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """``idx`` (B, T) character ids -> logits (B, T, V) and the final recurrent state."""
        x = self.embed(idx)                                          # (B, T, E)
        out, state = self.rnn(x, state)                              # (B, T, H)
        logits = self.head(self.drop(out))                           # (B, T, V)
        return logits, state

    @staticmethod
    def select_state(state: State, row: int) -> State:
        """The recurrent state of one batch row, kept as a batch of one: (L, 1, H) (or a pair of them)."""
        if isinstance(state, tuple):
            return tuple(s[:, row:row + 1].contiguous() for s in state)
        return state[:, row:row + 1].contiguous()

    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> Iterator[int]:
        """Continue the ids ``idx`` one sampled character at a time, yielding each new id as it is drawn.

        The seed is read once, then every sampled id is fed back with the carried state (no re-reading of
        the context, unlike a transformer). Sampling happens on the CPU with a CPU ``generator``, whatever
        the model's device, as 0.1 did. The model is in eval mode while the iterator runs.

        Args:
            idx: seed ids ``(T,)`` or ``(1, T)``, ``T >= 1``, on the model's device.
            max_new_tokens: how many ids to sample.
            temperature: divides the logits; < 1 is more conservative, > 1 more adventurous.
            top_k: sample only among the k likeliest ids (``None`` or 0: all).
            generator: a seeded ``torch.Generator`` (CPU) for reproducible text; ``None`` uses torch's global RNG.

        Yields:
            Each sampled id (an ``int``), ``max_new_tokens`` of them.

        Example::

            ids = model.generate(vocab.encode("ROMEO:"), 200, temperature=0.8, generator=torch.Generator().manual_seed(1))
            text = vocab.decode(list(ids))
        """
        # Checked here, not in the iterator, so a bad argument fails at the call, not at the first next().
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if max_new_tokens < 0 or (top_k is not None and top_k < 0):
            raise ValueError(f"max_new_tokens and top_k must be >= 0, got {max_new_tokens} and {top_k}")
        idx = idx.reshape(1, -1) if idx.dim() == 1 else idx          # (1, T)
        if idx.shape[0] != 1 or idx.shape[1] == 0:
            raise ValueError(f"generate continues one non-empty sequence (T,) or (1, T), got {tuple(idx.shape)}")
        return self._sample(idx, max_new_tokens, temperature, top_k, generator)

    @torch.no_grad()
    def _sample(self, idx: torch.Tensor, max_new_tokens: int, temperature: float, top_k: int | None,
                generator: torch.Generator | None) -> Iterator[int]:
        device = self.head.weight.device
        was_training = self.training
        self.eval()
        try:
            logits, state = self(idx.to(device))                     # (1, T, V)
            for step in range(max_new_tokens):
                probs = next_token_probs(logits[0, -1].float().cpu(), temperature, top_k)  # (V,)
                token = int(torch.multinomial(probs, 1, generator=generator))
                yield token
                if step + 1 < max_new_tokens:                        # the last id needs no forward pass
                    logits, state = self(torch.tensor([[token]], device=device), state)  # (1, 1, V)
        finally:
            self.train(was_training)

    def unrolled(self) -> UnrolledRecurrent:
        """The recurrent stack as explicit cells holding a copy of these weights (for inspection)."""
        return UnrolledRecurrent.from_fused(self.rnn)

    @torch.no_grad()
    def gate_activations(self, idx: torch.Tensor, layer: int = -1) -> dict[str, torch.Tensor]:
        """Every gate of one recurrent layer at every step, from the explicit cells with these weights.

        Args:
            idx: character ids ``(B, T)``.
            layer: which layer (``-1``: the last, whose hidden state the head reads).

        Returns:
            ``{name: (B, T, H)}`` in float32. LSTM: ``forget``, ``input``, ``candidate``, ``output``,
            ``cell`` (the cell state c_t) and ``hidden``; GRU: ``reset``, ``update``, ``new``, ``hidden``;
            RNN: ``hidden``. Dropout is not applied (inspection only).
        """
        if not -self.num_layers <= layer < self.num_layers:
            raise ValueError(f"layer must be in [-{self.num_layers}, {self.num_layers - 1}], got {layer}")
        x = self.embed(idx).float()                                  # (B, T, E)
        _, _, record = self.unrolled()(x, trace=True)
        layer %= self.num_layers
        return {name: value for (k, name), value in record.items() if k == layer}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
