"""The textgen benchmark's peer (benchmarks/peers/char_transformer.py): nanoGPT's baby GPT over characters.

Causal (no position sees a later one), nanoGPT's initialisation (loss ln V at the start), whole-split evaluation
that predicts every character once, nanoGPT's warmup + cosine on the budget's clock, weight decay on matrices
only, and a short timed training through benchmarks/common.py that learns."""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
from peers import char_transformer as ct  # noqa: E402

TINY = ct.PeerConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, batch_size=4, warmup_iters=3)


def _model(vocab_size: int = 11, cfg: ct.PeerConfig = TINY) -> ct.CharGPT:
    torch.manual_seed(0)
    return ct.CharGPT(vocab_size, cfg).eval()


def test_no_position_sees_a_later_character():
    model = _model()
    x = torch.randint(0, 11, (3, 8))
    with torch.no_grad():
        full = model(x)                                              # (3, 8, 11)
        y = x.clone()
        y[:, 5] = (y[:, 5] + 1) % 11                                 # change position 5 only
        changed = model(y)
        prefix = model(x[:, :5])                                     # (3, 5, 11)
    torch.testing.assert_close(changed[:, :5], full[:, :5])
    assert not torch.allclose(changed[:, 5:], full[:, 5:])
    torch.testing.assert_close(prefix, full[:, :5])
    with pytest.raises(ValueError, match="longer than block_size 8"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_initial_loss_is_close_to_uniform_and_weights_are_tied():
    model = _model(65, ct.PeerConfig(n_layer=2, n_head=2, n_embd=32, block_size=16))
    x = torch.randint(0, 65, (16, 16))
    with torch.no_grad():
        loss = F.cross_entropy(model(x).reshape(-1, 65), torch.randint(0, 65, (16 * 16,)))
    assert abs(loss.item() - math.log(65)) < 0.1                     # N(0, 0.02) weights: near-uniform predictions
    assert model.wte.weight is model.lm_head.weight
    assert model.num_parameters() == sum(p.numel() for p in model.parameters()) - 16 * 32


def test_evaluation_predicts_every_character_once_within_windows():
    model = _model()
    ids = torch.randint(0, 11, (30,))                                # 29 predictions: windows of 8, 8, 8 and 5
    total, n = 0.0, 0
    with torch.no_grad():
        for start in range(0, 29, 8):
            x, y = ids[start:min(start + 8, 29)], ids[start + 1:min(start + 9, 30)]
            total += F.cross_entropy(model(x[None])[0], y, reduction="sum").item()
            n += len(y)
    assert n == 29
    got = ct.evaluate(model, ids, contextlib.nullcontext, batch_windows=2)   # 3 full windows in batches of 2
    assert got == pytest.approx(total / n, rel=1e-6)


def test_learning_rate_warms_up_then_follows_the_budget_to_min_lr():
    cfg = ct.PeerConfig(learning_rate=1e-3, min_lr=1e-4, warmup_iters=100)
    assert ct.learning_rate(cfg, 0, 0.0, None) == pytest.approx(1e-3 / 101)
    assert ct.learning_rate(cfg, 99, 0.05, None) == pytest.approx(1e-3 * 100 / 101)
    assert ct.learning_rate(cfg, 100, 0.1, 0.1) == pytest.approx(1e-3)
    assert ct.learning_rate(cfg, 500, 0.55, 0.1) == pytest.approx(1e-4 + 0.5 * 9e-4)   # half way: the mean
    assert ct.learning_rate(cfg, 900, 1.0, 0.1) == pytest.approx(1e-4)


def test_weight_decay_on_matrices_only():
    model = _model()
    opt = ct.configure_optimizer(model, ct.PeerConfig(weight_decay=0.1), "cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert opt.defaults["betas"] == (0.9, 0.99)


def test_timed_training_learns_and_reports_like_a_peer_run():
    text = "to be or not to be that is the question\n" * 40
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])
    train_ids, val_ids = ids[:1400], ids[1400:]
    result = ct.train(train_ids, val_ids, len(chars), 0, math.inf, TINY, torch.device("cpu"), common.timed_loop,
                      eval_every_seconds=0.05, max_steps=150)
    assert result["stopped_by"] == "steps" and result["steps"] == 150
    assert result["wall_seconds"] >= result["train_seconds"] > 0
    steps = [s for s, _ in result["curve"]]
    assert steps[-1] == 150 and len(steps) >= 2 and steps == sorted(set(steps))   # periodic ones, the last once
    assert result["value"] == pytest.approx(min(v for _, v in result["curve"]), abs=1e-4)
    assert result["value"] < math.log(len(chars)) - 0.5              # it learned something
    assert result["precision"] == "fp32" and result["config"]["n_layer"] == 2
    value = result.pop("value")
    record = common.peer_run("char-transformer", 0, result, value, "best_val_loss")
    assert record["id"] == "char-transformer/seed0" and record["kind"] == "peer"
