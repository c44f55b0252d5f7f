"""CharRNN's own interface: generate (against the 0.1 sampling loop), gate activations (against the fused
module), tied weights.

Shapes, gradients, overfit-one-batch and the checkpoint round trip are the shared checks of
tests/model_tester.py (tests/test_models.py); the 0.1 fixture run's text and traces are in test_model_compat.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neuralsight.models import create_model
from neuralsight.models.charrnn import CharRNN


def _model(cell: str = "lstm", vocab_size: int = 13, hidden: int = 16, layers: int = 2, **kw) -> CharRNN:
    torch.manual_seed(0)
    return create_model("charrnn", vocab_size=vocab_size, cell=cell, embedding=8, hidden_size=hidden,
                        num_layers=layers, **kw)


def _reference_generate(model, ids, length, temperature, top_k, rng_seed) -> list[int]:
    """The sampling loop of 0.1 (``tasks/textgen.generate`` and ``_next_probs``), verbatim but for chars."""
    gen = torch.Generator()
    gen.manual_seed(rng_seed)
    model.eval()
    out = []
    with torch.no_grad():
        logits, state = model(ids[None])
        last = logits[0, -1].float().cpu()
        for _ in range(length):
            logits_t = last / temperature
            if top_k and top_k < logits_t.numel():
                kth = torch.topk(logits_t, top_k).values[-1]
                logits_t = logits_t.masked_fill(logits_t < kth, float("-inf"))
            probs = torch.softmax(logits_t, dim=-1)
            nxt = int(torch.multinomial(probs, 1, generator=gen))
            out.append(nxt)
            logits, state = model(torch.tensor([[nxt]]), state)
            last = logits[0, -1].float().cpu()
    return out


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("temperature, top_k, rng_seed", [(1.0, 0, 7), (0.6, 3, 1), (1.7, None, 2), (0.8, 1, 0)])
def test_generate_samples_exactly_what_0_1_sampled(cell, temperature, top_k, rng_seed):
    model = _model(cell)
    ids = torch.tensor([3, 1, 4, 1, 5])
    mine = list(model.generate(ids, 25, temperature, top_k, torch.Generator().manual_seed(rng_seed)))
    assert mine == _reference_generate(model, ids, 25, temperature, top_k or 0, rng_seed)
    assert all(isinstance(t, int) and 0 <= t < 13 for t in mine)


def test_generate_streams_restores_the_mode_and_checks_arguments_at_the_call():
    model = _model().train()
    stream = model.generate(torch.tensor([[2, 3]]), 5, generator=torch.Generator().manual_seed(0))
    first = next(stream)                                  # one id at a time, as it is drawn
    assert not model.training                             # sampling runs in eval mode (no dropout)
    rest = list(stream)
    assert len(rest) == 4 and model.training              # and gives the mode back
    again = list(model.generate(torch.tensor([2, 3]), 5, generator=torch.Generator().manual_seed(0)))
    assert again == [first, *rest]
    assert list(model.generate(torch.tensor([2]), 0)) == []
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.generate(torch.tensor([2]), 5, temperature=0)
    with pytest.raises(ValueError, match="one non-empty sequence"):
        model.generate(torch.zeros(2, 3, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="must be >= 0"):
        model.generate(torch.tensor([2]), 5, top_k=-1)


def test_top_1_generation_is_the_greedy_chain():
    model = _model("gru").eval()
    ids = torch.tensor([1, 2, 3])
    greedy = []
    with torch.no_grad():
        logits, state = model(ids[None])
        for _ in range(12):
            greedy.append(int(logits[0, -1].argmax()))
            logits, state = model(torch.tensor([[greedy[-1]]]), state)
    for seed in (0, 1):
        assert list(model.generate(ids, 12, top_k=1, generator=torch.Generator().manual_seed(seed))) == greedy


@pytest.mark.parametrize("cell, names", [
    ("lstm", {"forget", "input", "candidate", "output", "cell", "hidden"}),
    ("gru", {"reset", "update", "new", "hidden"}),
    ("rnn", {"hidden"})])
def test_gate_activations_are_the_fused_computation_gate_by_gate(cell, names):
    model = _model(cell, layers=2).eval()
    idx = torch.randint(0, 13, (3, 9))
    last = model.gate_activations(idx)
    assert set(last) == names and all(v.shape == (3, 9, 16) for v in last.values())
    with torch.no_grad():
        logits, state = model(idx)
        # The head applied to the explicit cells' last hidden states gives the fused model's logits.
        torch.testing.assert_close(model.head(last["hidden"]), logits, atol=1e-5, rtol=1e-4)
        first = model.gate_activations(idx, layer=0)
        h_n = state[0] if cell == "lstm" else state
        torch.testing.assert_close(first["hidden"][:, -1], h_n[0], atol=1e-5, rtol=1e-4)
    if cell == "lstm":
        torch.testing.assert_close(last["cell"][:, -1], state[1][1], atol=1e-5, rtol=1e-4)
        for gate in ("forget", "input", "output"):
            assert ((last[gate] > 0) & (last[gate] < 1)).all()
    with pytest.raises(ValueError, match="layer must be in"):
        model.gate_activations(idx, layer=2)


def test_select_state_keeps_one_row_as_a_batch_of_one():
    model = _model("lstm")
    _, (h, c) = model(torch.randint(0, 13, (4, 3)))
    h1, c1 = CharRNN.select_state((h, c), 2)
    assert h1.shape == (2, 1, 16) and torch.equal(h1[:, 0], h[:, 2]) and torch.equal(c1[:, 0], c[:, 2])
    _, g = _model("gru")(torch.randint(0, 13, (4, 3)))
    assert torch.equal(CharRNN.select_state(g, 3)[:, 0], g[:, 3])


def test_tied_weights_share_the_matrix_and_need_equal_sizes():
    model = create_model("charrnn", vocab_size=9, embedding=16, hidden_size=16, num_layers=1, tie_weights=True)
    assert model.head.weight is model.embed.weight
    with pytest.raises(ValueError, match="embedding == hidden_size"):
        create_model("charrnn", vocab_size=9, embedding=8, hidden_size=16, tie_weights=True)
    with pytest.raises(ValueError, match="cell must be one of"):
        create_model("charrnn", vocab_size=9, cell="transformer")


def test_overfit_a_line_then_generate_it_back_exactly():
    text = torch.tensor([5, 1, 7, 7, 2, 0, 9, 3, 3, 8, 1, 12, 4, 6, 10, 11, 2, 5, 0, 9])
    model = _model("lstm", hidden=64, layers=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        logits, _ = model(text[None, :-1])
        loss = F.cross_entropy(logits[0], text[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    assert list(model.generate(text[:3], len(text) - 3, top_k=1)) == text[3:].tolist()
