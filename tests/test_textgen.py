"""The textgen task: whole-split evaluation, generation through the task (deterministic, unknown characters),
resume. The model itself (CharRNN.generate, gate activations) is tested in test_charrnn.py."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neuralsight.data.text import Vocab
from neuralsight.errors import DataError
from neuralsight.models import create_model
from neuralsight.tasks import textgen

TEXT = "ROMEO: But soft, what light through yonder window breaks?\n"


def _model(vocab_size: int, cell: str = "lstm", hidden: int = 32, layers: int = 1, **kw):
    torch.manual_seed(0)
    return create_model("charrnn", vocab_size=vocab_size, cell=cell, embedding=16, hidden_size=hidden,
                        num_layers=layers, **kw)


def test_evaluation_covers_every_character_once():
    model = _model(7).eval()
    ids = torch.randint(0, 7, (103,))
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])                            # one pass, full context
        ref = F.cross_entropy(logits[0], ids[1:]).item()
        one = textgen.evaluate_ids(model, ids, streams=1, chunk=10)  # chunked, state carried
        # Three streams (plus a tail): each stream restarts from a zero state, so compute that reference.
        many = textgen.evaluate_ids(model, ids, streams=3, chunk=8)
        n, length = 102, 34
        total = 0.0
        for s in range(3):
            seg = ids[s * length: (s + 1) * length + 1]
            lg, _ = model(seg[None, :-1])
            total += F.cross_entropy(lg[0], seg[1:], reduction="sum").item()
    assert one["val_loss"] == pytest.approx(ref, rel=1e-5)
    assert one["val_bpc"] == pytest.approx(ref / math.log(2), rel=1e-5)
    assert one["val_ppl"] == pytest.approx(math.exp(ref), rel=1e-5)
    assert many["val_loss"] == pytest.approx(total / n, rel=1e-5)


def test_generation_is_deterministic_with_rng_seed():
    vocab = Vocab.from_text(TEXT)
    model = _model(len(vocab))
    a = textgen.generate(model, vocab, "ROMEO:", 80, temperature=1.0, rng_seed=7)
    b = textgen.generate(model, vocab, "ROMEO:", 80, temperature=1.0, rng_seed=7)
    c = textgen.generate(model, vocab, "ROMEO:", 80, temperature=1.0, rng_seed=8)
    assert a == b and len(a) == 80 and set(a) <= set(vocab.chars)
    assert a != c
    streamed: list[str] = []
    d = textgen.generate(model, vocab, "ROMEO:", 80, temperature=1.0, rng_seed=7, on_text=streamed.append)
    assert "".join(streamed) == d == a
    top1 = textgen.generate(model, vocab, "RO", 20, top_k=1, rng_seed=1)
    assert top1 == textgen.generate(model, vocab, "RO", 20, top_k=1, rng_seed=2)  # greedy ignores the RNG


def test_unknown_seed_characters_error_names_them():
    vocab = Vocab.from_text(TEXT)
    model = _model(len(vocab))
    with pytest.raises(DataError, match=r"3 character\(s\) the model has never seen: .Z., .!., .@."):
        textgen.generate(model, vocab, "ROMEO: Zounds! @", 10, rng_seed=0)


def _train(tmp_path, steps: int, resume=None, name="r"):
    from neuralsight.runner import TrainOptions, train

    text = tmp_path / "play.txt"
    if not text.exists():
        text.write_text((TEXT + "JULIET: It is the east, and Juliet is the sun.\n") * 40, encoding="utf-8")
    sets = [f"data.text_file={text.as_posix()!r}".replace("'", '"'), "data.seq_len=16", "model.hidden_size=24",
            "model.num_layers=2", "model.embedding=8", "model.dropout=0.1", "train.schedule=\"constant\"",
            "train.warmup=0", "train.eval_every=3", "train.batch_size=8", "train.threads=1",
            "samples.stages=[0, 3]", "samples.length=20", "samples.passage_length=30", "samples.units=3",
            "samples.unfold_steps=4"]
    opts = TrainOptions(overrides=sets, steps=steps, out=tmp_path / "runs", name=name, device="cpu",
                        precision="fp32", progress=False, resume=resume)
    return train("textgen", opts)


def test_resume_mid_training_matches_straight_run(tmp_path):
    from safetensors.torch import load_file

    straight = _train(tmp_path, 6, name="straight")
    half = _train(tmp_path, 3, name="half")
    resumed = _train(tmp_path, 6, resume=half)
    assert resumed == half
    a = load_file(str(straight / "checkpoints" / "last.safetensors"))
    b = load_file(str(resumed / "checkpoints" / "last.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], msg=k)
    state = textgen.load_run(resumed, "last")[2]
    assert state["step"] == 6 and state["model"]["vocab"] == Vocab.from_text(
        (tmp_path / "play.txt").read_text(encoding="utf-8")).chars


def test_too_short_text_file_is_refused(tmp_path):
    from neuralsight.runner import TrainOptions, train

    p = tmp_path / "tiny.txt"
    p.write_text("ROMEO: hi\n", encoding="utf-8")
    opts = TrainOptions(overrides=[f'data.text_file="{p.as_posix()}"'], steps=1, out=tmp_path / "runs",
                        device="cpu", progress=False)
    with pytest.raises(DataError, match="too short"):
        train("textgen", opts)
