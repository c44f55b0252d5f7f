"""Recurrent cells written out gate by gate, as the lecture explains them.

Each cell holds exactly the parameters of the matching fused torch module's layer (``weight_ih``,
``weight_hh``, ``bias_ih``, ``bias_hh``, gates stacked in torch's order), so weights copy across both ways
and the tests check outputs, states and gradients against ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` with
``allclose``. Training uses the fused modules (much faster); these cells exist to be read and inspected:
:meth:`LSTMCell.step` returns every gate, which the gate-trace figures plot.

- ``RNNCell`` (Elman 1990): ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.
- ``LSTMCell`` (Hochreiter & Schmidhuber 1997; forget gate of Gers et al. 2000)::

      forget    f_t = sigmoid(W_f x_t + U_f h_{t-1} + b_f)     what to erase from the cell state
      input     i_t = sigmoid(W_i x_t + U_i h_{t-1} + b_i)     how much of the candidate to write
      candidate g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)        the new content
      cell      c_t = f_t * c_{t-1} + i_t * g_t                the memory line
      output    o_t = sigmoid(W_o x_t + U_o h_{t-1} + b_o)     what to expose
      hidden    h_t = o_t * tanh(c_t)

  torch stacks the four blocks as (input, forget, candidate, output).
- ``GRUCell`` (Cho et al. 2014), blocks (reset, update, new) as in torch::

      reset  r_t = sigmoid(W_r x_t + b_ir + U_r h_{t-1} + b_hr)
      update z_t = sigmoid(W_z x_t + b_iz + U_z h_{t-1} + b_hz)
      new    n_t = tanh(W_n x_t + b_in + r_t * (U_n h_{t-1} + b_hn))
      hidden h_t = (1 - z_t) * n_t + z_t * h_{t-1}
"""

from __future__ import annotations

import math

import torch
from torch import nn

# The one map from cell name to torch's fused module (the explicit cells are in CELLS, below).
FUSED: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
CELL_TYPES = tuple(FUSED)


def make_fused(cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
               dropout: float = 0.0) -> nn.RNNBase:
    """The fused, batch-first ``nn.RNN`` (tanh) / ``nn.LSTM`` / ``nn.GRU`` stack that models train with.

    ``dropout`` applies between stacked layers, so it is dropped for a single layer (where torch would warn).
    Shapes: ``(B, T, input_size) -> (B, T, hidden_size)`` and the final state.
    """
    if cell not in FUSED:
        raise ValueError(f"cell must be one of {CELL_TYPES}, got {cell!r}")
    return FUSED[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True,
                       dropout=dropout if num_layers > 1 else 0.0)


class _Cell(nn.Module):
    """Parameters shared by every cell: input-to-hidden and hidden-to-hidden weights and biases."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        n = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(n, input_size))    # (G*H, I)
        self.weight_hh = nn.Parameter(torch.empty(n, hidden_size))   # (G*H, H)
        self.bias_ih = nn.Parameter(torch.empty(n))                  # (G*H,)
        self.bias_hh = nn.Parameter(torch.empty(n))                  # (G*H,)
        bound = 1.0 / math.sqrt(hidden_size)                         # torch's default initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _blocks(self, x: torch.Tensor, h: torch.Tensor):
        """The gate pre-activations from the input and from the previous hidden state, split per gate."""
        gx = x @ self.weight_ih.T + self.bias_ih                     # (B, G*H)
        gh = h @ self.weight_hh.T + self.bias_hh                     # (B, G*H)
        return gx.chunk(self.gates, dim=-1), gh.chunk(self.gates, dim=-1)

    def zero_state(self, batch_size: int, device=None, dtype=None):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)


class RNNCell(_Cell):
    """Elman RNN cell with tanh: ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Args:
        input_size: features per input vector.
        hidden_size: units in the hidden state.
    """

    gates = 1

    def step(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """One time step. ``x``: (B, I), ``h``: (B, H) -> new ``h`` (B, H) and ``{"hidden": h}``."""
        (ax,), (ah,) = self._blocks(x, h)
        h = torch.tanh(ax + ah)                                      # (B, H)
        return h, {"hidden": h}

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.step(x, h)[0]


class LSTMCell(_Cell):
    """Long short-term memory cell with the lecture's named gates (see the module docstring).

    The state is the pair ``(h, c)``: hidden state (what the next layer and the output see) and the cell
    state (the memory line that the forget and input gates edit).

    Args:
        input_size: features per input vector.
        hidden_size: units in the hidden and cell states.
    """

    gates = 4

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """One time step. ``x``: (B, I); ``state``: ((B, H), (B, H)) -> ``(h, c)`` and every gate (B, H)."""
        h_prev, c_prev = state
        (xi, xf, xg, xo), (hi, hf, hg, ho) = self._blocks(x, h_prev)  # torch order: i, f, g, o
        forget_gate = torch.sigmoid(xf + hf)                          # (B, H) 1 keeps, 0 erases
        input_gate = torch.sigmoid(xi + hi)                           # (B, H) how much to write
        candidate = torch.tanh(xg + hg)                               # (B, H) what to write
        cell = forget_gate * c_prev + input_gate * candidate          # (B, H) the memory line
        output_gate = torch.sigmoid(xo + ho)                          # (B, H) what to expose
        hidden = output_gate * torch.tanh(cell)                       # (B, H)
        gates = {"forget": forget_gate, "input": input_gate, "candidate": candidate,
                 "output": output_gate, "cell": cell, "hidden": hidden}
        return (hidden, cell), gates

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        return self.step(x, state)[0]

    def zero_state(self, batch_size: int, device=None, dtype=None):
        z = super().zero_state(batch_size, device, dtype)
        return z, z.clone()


class GRUCell(_Cell):
    """Gated recurrent unit cell (Cho et al. 2014) with torch's gate order (reset, update, new).

    Args:
        input_size: features per input vector.
        hidden_size: units in the hidden state.
    """

    gates = 3

    def step(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """One time step. ``x``: (B, I), ``h``: (B, H) -> new ``h`` (B, H) and its gates (B, H)."""
        (xr, xz, xn), (hr, hz, hn) = self._blocks(x, h)
        reset_gate = torch.sigmoid(xr + hr)                          # (B, H)
        update_gate = torch.sigmoid(xz + hz)                         # (B, H) 1 keeps the old state
        new = torch.tanh(xn + reset_gate * hn)                       # (B, H) candidate state
        h = (1 - update_gate) * new + update_gate * h                # (B, H)
        return h, {"reset": reset_gate, "update": update_gate, "new": new, "hidden": h}

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.step(x, h)[0]


CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


class UnrolledRecurrent(nn.Module):
    """A stack of explicit cells run step by step over a sequence: the fused module, written out.

    Takes ``(B, T, input_size)`` (batch first, like the fused modules built with ``batch_first=True``)
    and returns ``(output (B, T, H), final state, trace)``, where the final state has torch's layout
    (``h_n`` (L, B, H), or ``(h_n, c_n)`` for the LSTM) and ``trace`` (when asked for) maps
    ``(layer, gate name)`` to a (B, T, H) tensor. Dropout between layers is not applied (inspection only).

    Args:
        cell: "rnn", "lstm" or "gru".
        input_size: features per input vector.
        hidden_size: units per layer.
        num_layers: stacked layers; layer k > 0 reads layer k-1's hidden states.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELL_TYPES}, got {cell!r}")
        self.cell_type = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.cells = nn.ModuleList(
            CELLS[cell](input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers))

    @classmethod
    def from_fused(cls, module: nn.Module) -> UnrolledRecurrent:
        """Build the explicit stack holding a copy of a fused ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``'s weights."""
        kind = next((name for name, fused in FUSED.items() if type(module) is fused), None)
        if kind is None:
            raise TypeError(f"expected torch.nn.RNN, LSTM or GRU, got {type(module).__name__}")
        if kind == "rnn" and module.nonlinearity != "tanh":
            raise ValueError("only tanh RNNs are supported")
        if module.bidirectional or getattr(module, "proj_size", 0) or not module.bias:
            raise ValueError("only unidirectional modules with biases and no projection are supported")
        out = cls(kind, module.input_size, module.hidden_size, module.num_layers)
        out.load_fused(module)
        return out.to(next(module.parameters()).device)

    def load_fused(self, module: nn.Module) -> None:
        """Copy the fused module's per-layer weights (``weight_ih_l{k}`` ...) into the cells."""
        with torch.no_grad():
            for k, cell in enumerate(self.cells):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, name).copy_(getattr(module, f"{name}_l{k}"))

    def forward(self, x: torch.Tensor, state=None, trace: bool = False):
        batch, steps, _ = x.shape                                    # (B, T, I)
        if state is None:
            states = [c.zero_state(batch, x.device, x.dtype) for c in self.cells]
        elif self.cell_type == "lstm":
            h0, c0 = state                                           # (L, B, H) each
            states = [(h0[k], c0[k]) for k in range(self.num_layers)]
        else:
            states = [state[k] for k in range(self.num_layers)]     # (B, H) per layer
        record: dict = {}
        layer_in = x
        for k, cell in enumerate(self.cells):
            outputs = []
            gate_steps: dict[str, list] = {}
            s = states[k]
            for t in range(steps):
                s, gates = cell.step(layer_in[:, t], s)
                outputs.append(gates["hidden"])                      # (B, H)
                if trace:
                    for name, value in gates.items():
                        gate_steps.setdefault(name, []).append(value)
            states[k] = s
            layer_in = torch.stack(outputs, dim=1)                   # (B, T, H)
            for name, values in gate_steps.items():
                record[(k, name)] = torch.stack(values, dim=1)       # (B, T, H)
        if self.cell_type == "lstm":
            final = (torch.stack([s[0] for s in states]), torch.stack([s[1] for s in states]))  # (L, B, H) x2
        else:
            final = torch.stack(states)                              # (L, B, H)
        return layer_in, final, record if trace else None
