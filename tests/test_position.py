"""The position-sensitivity experiment at a tiny size: FFN fails at unseen positions, CNN and LSTM do not."""

from __future__ import annotations

import pytest
import torch

from neuralsight.lecture.position import DISTRACTOR, PATTERN, PositionSpec, make_batch, run_experiment


def test_make_batch_places_pattern_and_distractor_exactly():
    spec = PositionSpec(noise=0.0, length=10)
    g = torch.Generator().manual_seed(0)
    x, y = make_batch(spec, 4, torch.tensor([0, 0, 6, 6]), g)
    assert y.tolist() == [1, 0, 1, 0]
    assert x[0, :4].tolist() == list(PATTERN) and x[1, :4].tolist() == list(DISTRACTOR)
    assert x[2, 6:].tolist() == list(PATTERN) and x[2, :6].abs().sum() == 0
    assert PATTERN != DISTRACTOR and sorted(PATTERN) == sorted(DISTRACTOR)   # same energy, other shape


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ffn_fails_at_unseen_positions_cnn_and_lstm_generalise(seed):
    torch.set_num_threads(1)
    r = run_experiment(PositionSpec(seed=seed, steps=150, train_size=256))
    seen, unseen = r["seen"], r["unseen"]
    for kind in ("ffn", "lstm", "cnn"):
        assert seen[kind] > 0.7, (kind, seen)              # every model learned the trained positions
    assert unseen["ffn"] < 0.6, unseen                      # ~chance where it never saw the pattern
    assert unseen["cnn"] > 0.85, unseen
    assert unseen["lstm"] > 0.68, unseen                   # 0.75..0.95 over seeds 0-7 and 1 or 2 threads
    assert min(unseen["cnn"], unseen["lstm"]) - unseen["ffn"] > 0.2, unseen
