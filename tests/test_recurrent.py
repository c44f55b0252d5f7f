"""The explicit gate-by-gate cells equal torch's fused RNN/LSTM/GRU: outputs, states and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuralsight.layers.recurrent import FUSED, GRUCell, LSTMCell, RNNCell, UnrolledRecurrent, make_fused


def _pair(cell: str, input_size: int, hidden: int, layers: int):
    torch.manual_seed(0)
    fused = FUSED[cell](input_size, hidden, num_layers=layers, batch_first=True).double()
    explicit = UnrolledRecurrent.from_fused(fused).double()
    return fused, explicit


def _initial_state(cell: str, layers: int, batch: int, hidden: int):
    h0 = torch.randn(layers, batch, hidden, dtype=torch.double)
    return (h0, torch.randn_like(h0)) if cell == "lstm" else h0


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers,batch,steps,input_size,hidden", [(1, 1, 5, 3, 4), (3, 2, 7, 5, 6)])
@pytest.mark.parametrize("with_state", [False, True])
def test_explicit_cells_match_fused_forward_and_backward(cell, layers, batch, steps, input_size, hidden, with_state):
    fused, explicit = _pair(cell, input_size, hidden, layers)
    x = torch.randn(batch, steps, input_size, dtype=torch.double)
    state = _initial_state(cell, layers, batch, hidden) if with_state else None
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    out1, s1 = fused(x1, state)
    out2, s2, _ = explicit(x2, state)
    assert out2.shape == (batch, steps, hidden)
    torch.testing.assert_close(out2, out1)
    finals1 = s1 if cell == "lstm" else (s1,)
    finals2 = s2 if cell == "lstm" else (s2,)
    for a, b in zip(finals2, finals1, strict=True):
        torch.testing.assert_close(a, b)

    # A loss touching every output and final state, with random weights so no gradient cancels.
    w = torch.randn_like(out1)
    ws = [torch.randn_like(s) for s in finals1]
    loss1 = (out1 * w).sum() + sum((s * v).sum() for s, v in zip(finals1, ws, strict=True))
    loss2 = (out2 * w).sum() + sum((s * v).sum() for s, v in zip(finals2, ws, strict=True))
    loss1.backward()
    loss2.backward()
    torch.testing.assert_close(x2.grad, x1.grad)
    for k, c in enumerate(explicit.cells):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            mine = getattr(c, name).grad
            ref = getattr(fused, f"{name}_l{k}").grad
            assert mine is not None and torch.isfinite(mine).all()
            torch.testing.assert_close(mine, ref, msg=f"{cell} layer {k} {name}")


def test_lstm_gates_are_named_and_bounded():
    cell = LSTMCell(3, 5).double()
    x = torch.randn(2, 3, dtype=torch.double)
    (h, c), gates = cell.step(x, cell.zero_state(2, dtype=torch.double))
    assert set(gates) >= {"forget", "input", "candidate", "output", "cell", "hidden"}
    for name in ("forget", "input", "output"):
        assert ((gates[name] > 0) & (gates[name] < 1)).all()
    # From a zero cell state the update is just input_gate * candidate.
    torch.testing.assert_close(c, gates["input"] * gates["candidate"])
    torch.testing.assert_close(h, gates["output"] * torch.tanh(c))


def test_single_cells_match_torch_cells():
    torch.manual_seed(1)
    x = torch.randn(4, 3)
    for mine_cls, ref_cls in ((RNNCell, nn.RNNCell), (GRUCell, nn.GRUCell), (LSTMCell, nn.LSTMCell)):
        ref = ref_cls(3, 6)
        mine = mine_cls(3, 6)
        mine.load_state_dict(ref.state_dict())
        if mine_cls is LSTMCell:
            state = (torch.randn(4, 6), torch.randn(4, 6))
            torch.testing.assert_close(mine(x, state), ref(x, state))
        else:
            h = torch.randn(4, 6)
            torch.testing.assert_close(mine(x, h), ref(x, h))


def test_from_fused_rejects_what_it_cannot_mirror():
    with pytest.raises(ValueError, match="tanh"):
        UnrolledRecurrent.from_fused(nn.RNN(3, 4, nonlinearity="relu"))
    with pytest.raises(ValueError, match="unidirectional"):
        UnrolledRecurrent.from_fused(nn.LSTM(3, 4, bidirectional=True))
    with pytest.raises(TypeError):
        UnrolledRecurrent.from_fused(nn.Linear(3, 4))


def test_make_fused_builds_the_batch_first_module_and_names_bad_cells():
    lstm = make_fused("lstm", 3, 5, num_layers=2, dropout=0.2)
    assert isinstance(lstm, nn.LSTM) and lstm.batch_first and lstm.num_layers == 2 and lstm.dropout == 0.2
    assert make_fused("gru", 3, 5, dropout=0.2).dropout == 0.0       # no between-layer dropout for one layer
    assert set(FUSED) == {"rnn", "lstm", "gru"}
    with pytest.raises(ValueError, match=r"cell must be one of \('rnn', 'lstm', 'gru'\), got 'tcn'"):
        make_fused("tcn", 3, 5)
