"""The textgen task: whole-split evaluation (bits/char known by hand), sampling through the task (deterministic,
lazy, unknown characters), resume, users' own texts (a Hungarian poem, a Hamlet file: the seed and the run's name
follow the text), and a saved run: generate, explain, evaluate (val only), report sections, summary. The model
itself (CharRNN.generate, gate activations) is tested in test_charrnn.py and the shared model tester."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import png_nonblank

from neuralsight.data.text import Vocab
from neuralsight.errors import ConfigError, DataError, UserError
from neuralsight.models import create_model
from neuralsight.report.sections import Cards, Figure, Fragment, Table, Text
from neuralsight.tasks import textgen
from neuralsight.tasks.base import SavedRun, parse_options

TEXT = "ROMEO: But soft, what light through yonder window breaks?\n"
# Petőfi's "Nemzeti dal" (1848), two stanzas, and the pangram every Hungarian typist knows (ő and ű): real UTF-8
# text without a colon, so the preset's seed "ROMEO:" does not fit it.
NEMZETI_DAL = """Nemzeti dal

Talpra magyar, hí a haza!
Itt az idő, most vagy soha!
Rabok legyünk, vagy szabadok?
Ez a kérdés, válasszatok! -
A magyarok istenére
Esküszünk,
Esküszünk, hogy rabok tovább
Nem leszünk!

Rabok voltunk mostanáig,
Kárhozottak ősapáink,
Kik szabadon éltek-haltak,
Szolgaföldben nem nyughatnak.
A magyarok istenére
Esküszünk,
Esküszünk, hogy rabok tovább
Nem leszünk!

Árvíztűrő tükörfúrógép.
"""
HAMLET = """HAMLET.
To be, or not to be, that is the question.

OPHELIA.
Good my lord, how does your honour for this many a day?

HAMLET.
I humbly thank you; well, well, well.

OPHELIA.
My lord, I have remembrances of yours
That I have longed long to re-deliver.

HAMLET.
No, not I, I never gave you aught.
"""


def _model(vocab_size: int, cell: str = "lstm", hidden: int = 32, layers: int = 1, **kw):
    torch.manual_seed(0)
    return create_model("charrnn", vocab_size=vocab_size, cell=cell, embedding=16, hidden_size=hidden,
                        num_layers=layers, **kw)


def _sample(model, vocab, seed, length, **kw) -> str:
    return "".join(textgen.continue_text(model, vocab, seed, length, **kw))


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


def _uniform_head(model, probabilities=None):
    """The model predicts ``probabilities`` (default: uniform) whatever it reads: zero head weights, log-p bias."""
    with torch.no_grad():
        model.head.weight.zero_()
        p = torch.full((model.head.out_features,), 1.0) if probabilities is None else torch.tensor(probabilities)
        model.head.bias.copy_(torch.log(p / p.sum()))
    return model.eval()


def test_reported_bits_per_char_known_by_hand():
    # p(a, b, c, d) = 1/2, 1/4, 1/8, 1/8: the targets a, b, c, d of "aabcd" cost 1, 2, 3 and 3 bits: 2.25 bits/char.
    model = _uniform_head(_model(4), [0.5, 0.25, 0.125, 0.125])
    ids = Vocab("abcd").encode("aabcd")
    for streams, chunk in ((1, 8), (2, 8), (4, 8)):
        res = textgen.evaluate_ids(model, ids, streams=streams, chunk=chunk)
        assert res["val_bpc"] == pytest.approx(2.25, rel=1e-6)
        assert res["val_loss"] == pytest.approx(2.25 * 0.6931471805599453, rel=1e-6)
        assert res["val_ppl"] == pytest.approx(2 ** 2.25, rel=1e-6)


def test_generation_is_deterministic_lazy_and_leaves_grad_mode_alone():
    vocab = Vocab.from_text(TEXT)
    model = _model(len(vocab))
    a = _sample(model, vocab, "ROMEO:", 80, temperature=1.0, rng_seed=7)
    b = _sample(model, vocab, "ROMEO:", 80, temperature=1.0, rng_seed=7)
    c = _sample(model, vocab, "ROMEO:", 80, temperature=1.0, rng_seed=8)
    assert a == b and len(a) == 80 and set(a) <= set(vocab.chars)
    assert a != c
    stream = textgen.continue_text(model, vocab, "ROMEO:", 80, temperature=1.0, rng_seed=7)
    first = next(stream)                                   # one character at a time, as the CLI streams it
    assert len(first) == 1 and torch.is_grad_enabled()     # a suspended generator holds no no_grad
    assert first + "".join(stream) == a
    assert model.training                                  # eval mode only while sampling
    top1 = _sample(model, vocab, "RO", 20, top_k=1, rng_seed=1)
    assert top1 == _sample(model, vocab, "RO", 20, top_k=1, rng_seed=2)  # greedy ignores the RNG


def _train(tmp_path, steps: int, resume=None, name="r", extra=(), file="play.txt", content=None):
    from neuralsight.tasks.base import train

    text = tmp_path / file
    if not text.exists():
        text.write_text(content or (TEXT + "JULIET: It is the east, and Juliet is the sun.\n") * 40, encoding="utf-8")
    sets = [f"data.text_file={text.as_posix()!r}".replace("'", '"'), "data.seq_len=16", "model.hidden_size=24",
            "model.num_layers=2", "model.embedding=8", "model.dropout=0.1", "train.schedule=\"constant\"",
            "train.warmup=0", "train.eval_every=3", "train.batch_size=8", "train.threads=1",
            "samples.stages=[0, 3]", "samples.length=20", "samples.passage_length=30", "samples.units=3",
            "samples.unfold_steps=4", f"train.steps={steps}", "train.device=\"cpu\"", "train.precision=\"fp32\"",
            "train.progress=false", *extra]
    return train("textgen", overrides=sets, out=tmp_path / "runs", name=name, resume=resume)


def test_resume_mid_training_matches_straight_run(tmp_path):
    from safetensors.torch import load_file

    from neuralsight.engine.checkpoint import read_state

    straight = _train(tmp_path, 6, name="straight")
    half = _train(tmp_path, 3, name="half")
    resumed = _train(tmp_path, 6, resume=half)
    assert resumed == half
    a = load_file(str(straight / "checkpoints" / "last.safetensors"))
    b = load_file(str(resumed / "checkpoints" / "last.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], msg=k)
    state = read_state(resumed / "checkpoints", "last")
    assert state["step"] == 6 and state["model"]["vocab"] == Vocab.from_text(
        (tmp_path / "play.txt").read_text(encoding="utf-8")).chars
    # The stage samples (taken by the TrainTask's on_evaluate) are the same whether or not training was resumed.
    s = json.loads((straight / "samples" / "stages.json").read_text(encoding="utf-8"))
    r = json.loads((resumed / "samples" / "stages.json").read_text(encoding="utf-8"))
    assert [x["stage_step"] for x in s[:2]] == [0, 3] and [(x["step"], x["text"]) for x in r[:2]] == \
        [(x["step"], x["text"]) for x in s[:2]]


@pytest.mark.parametrize("file,content,seed,lacks", [
    ("nemzeti_dal.txt", NEMZETI_DAL * 3, "A magyarok istenére", "'O', 'M', ':'"),  # the refrain: its most frequent line
    ("hamlet.txt", HAMLET * 4, "HAMLET.", "'R', ':'"),                           # a play: its most frequent speaker
])
def test_a_users_own_text_trains_with_a_seed_from_it_and_names_the_run(tmp_path, file, content, seed, lacks):
    from typer.testing import CliRunner

    from neuralsight.cli import app

    # The preset's seed "ROMEO:" holds characters the text lacks: training used to stop at step 0.
    run = _train(tmp_path, 3, name=None, file=file, content=content, extra=["samples.stages=[0]"])
    assert run.name.endswith("-" + file.removesuffix(".txt"))        # named after the file, not "romeo"
    data = json.loads((run / "data.json").read_text(encoding="utf-8"))
    assert set(data["vocab"]) == set(content) and data["sample_seed"] == seed
    assert data["sample_seed_note"] == (f"samples.seed 'ROMEO:' holds characters the text lacks ({lacks}); the "
                                        f"samples continue {seed!r}, from the text")
    stages = json.loads((run / "samples" / "stages.json").read_text(encoding="utf-8"))
    assert [s["step"] for s in stages] == [0, 3] and all(s["seed"] == seed for s in stages)
    assert all((run / "samples" / s["file"]).read_text(encoding="utf-8").startswith(seed) for s in stages)
    assert set("".join(s["text"] for s in stages)) <= set(content)
    saved = SavedRun.open(run)
    assert saved.state()["model"]["seed"] == seed
    assert "".join(saved.task.generate(saved, textgen.GenerateOptions(length=8, rng_seed=1)))[:-8] == seed
    with pytest.raises(DataError, match=r"the seed contains .* never seen: .*':'"):
        saved.task.generate(saved, textgen.GenerateOptions(seed="ROMEO:"))      # refused before any character
    res = CliRunner().invoke(app, ["generate", str(run), "--length", "12", "--rng-seed", "2"])
    assert res.exit_code == 0, res.output
    expected = "".join(saved.task.generate(saved, textgen.GenerateOptions(length=12, rng_seed=2)))
    assert res.stdout == expected + "\n" and expected.startswith(seed) and len(expected) == len(seed) + 12
    sections = {s.anchor: s for s in saved.task.report(run)}
    assert ["sample_seed", seed] in sections["data"].blocks[0].rows
    assert data["sample_seed_note"] in [b.text for b in sections["data"].blocks[1:]]
    if file == "nemzeti_dal.txt":
        assert {"ő", "ű"} <= set(data["vocab"])
        score = saved.task.predict(saved, [tmp_path / file], tmp_path / "out", None)[0]
        assert score["characters"] == len(content) and "error" not in score


def test_too_short_text_file_is_refused(tmp_path):
    from neuralsight.tasks.base import train

    p = tmp_path / "tiny.txt"
    p.write_text("ROMEO: hi\n", encoding="utf-8")
    with pytest.raises(DataError, match="too short"):
        train("textgen", overrides=[f'data.text_file="{p.as_posix()}"', "train.steps=1", "train.device=\"cpu\"",
                                    "train.progress=false"], out=tmp_path / "runs")
    assert not (tmp_path / "runs" / "textgen").exists() or not any((tmp_path / "runs" / "textgen").iterdir())


# ---- the task over a saved run ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished 6-step run on a small play, named after its text file (no --name)."""
    return _train(tmp_path_factory.mktemp("textgen"), 6, name=None)


def test_run_is_named_after_its_text_and_summary_keeps_the_val_split(run_dir):
    assert run_dir.name.endswith("-play")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["headline"] == {"name": "val bits/char", "value": summary["metrics"]["val"]["val_bpc"],
                                   "split": "val"}
    val = summary["metrics"]["val"]
    assert set(val) == {"val_loss", "val_bpc", "val_ppl"} and summary["metrics"]["test"] == {}
    assert summary["split_protocol"] == ("The text follows nanoGPT's protocol: the first 90% of the characters "
                                         "train, the last 10% validate; that one held-out split selects the "
                                         "checkpoint and is the one reported (there is no test split).")
    assert val["val_bpc"] == pytest.approx(val["val_loss"] / math.log(2))
    data = json.loads((run_dir / "data.json").read_text())
    assert summary["parameters"] == data["parameters"] and summary["vocab_size"] == data["vocab_size"]
    assert summary["tokens_per_s"] == pytest.approx(summary["fit"]["items_per_second"] * 16, rel=1e-3)
    stages = json.loads((run_dir / "samples" / "stages.json").read_text(encoding="utf-8"))
    assert [s["step"] for s in stages] == [0, 3, summary["fit"]["best_step"]]
    assert stages[-1]["label"] == f"best checkpoint (step {summary['fit']['best_step']})"
    for s in stages:
        assert (run_dir / "samples" / s["file"]).read_text(encoding="utf-8") == s["seed"] + s["text"] + "\n"


def test_evaluate_val_matches_whole_split_and_refuses_test(run_dir):
    saved = SavedRun.open(run_dir)
    res = saved.task.evaluate(saved, "val")
    corpus = textgen.load_corpus(saved.cfg.data)
    assert res == pytest.approx(textgen.evaluate_ids(saved.model(), corpus.val_ids, 32, 256), rel=1e-9)
    with pytest.raises(UserError, match=r"--split test does not apply to a textgen run: it keeps nanoGPT's "
                       r"single held-out split \(the last 10% of the text\) \(use --split val\)"):
        saved.task.evaluate(saved, "test")


def test_reported_metrics_of_a_uniform_model_are_log2_of_the_vocabulary(run_dir, tmp_path, monkeypatch):
    # A model that gives every character the same probability scores log2(V) bits/char and perplexity V, on the
    # validation split (evaluate) and on any file (predict): the numbers the task reports, known by hand.
    saved = SavedRun.open(run_dir)
    vocab_size = saved.model().head.out_features
    uniform = _uniform_head(_model(vocab_size))
    monkeypatch.setattr(saved, "model", lambda child="": uniform)
    res = saved.task.evaluate(saved, "val")
    assert res["val_bpc"] == pytest.approx(math.log2(vocab_size), rel=1e-6)
    assert res["val_loss"] == pytest.approx(math.log(vocab_size), rel=1e-6)
    assert res["val_ppl"] == pytest.approx(vocab_size, rel=1e-6)
    (tmp_path / "scene.txt").write_text("JULIET: It is the east.\n", encoding="utf-8")
    (row,) = saved.task.predict(saved, [tmp_path / "scene.txt"], tmp_path / "out", None)
    assert row["bits_per_char"] == pytest.approx(math.log2(vocab_size), rel=1e-6)
    assert row["perplexity"] == pytest.approx(vocab_size, rel=1e-6)


def test_generate_yields_seed_then_sample_and_validates_before_returning(run_dir):
    saved = SavedRun.open(run_dir)
    vocab = Vocab.from_json(saved.state()["model"]["vocab"])
    opts = textgen.GenerateOptions(seed="JULIET:", length=30, temperature=0.9, top_k=5, rng_seed=3)
    out = list(saved.task.generate(saved, opts))
    assert out[0] == "JULIET:" and all(len(ch) == 1 for ch in out[1:]) and len(out) == 31
    assert "".join(out[1:]) == _sample(saved.model(), vocab, "JULIET:", 30, temperature=0.9, top_k=5, rng_seed=3)
    default = "".join(saved.task.generate(saved, textgen.GenerateOptions(length=5, rng_seed=1)))
    assert default.startswith(saved.cfg.samples.seed) and len(default) == len(saved.cfg.samples.seed) + 5
    # Refused at the call, before any character is produced (no iteration here).
    with pytest.raises(DataError, match=r"3 character\(s\) the model has never seen: .Z., .!., .@."):
        saved.task.generate(saved, textgen.GenerateOptions(seed="ROMEO: Zounds! @"))
    with pytest.raises(UserError, match="seed text is empty"):
        saved.task.generate(saved, textgen.GenerateOptions(seed=""))
    with pytest.raises(ConfigError, match="'temperature' = 0 is too small"):
        saved.task.generate(saved, textgen.GenerateOptions(temperature=0))
    with pytest.raises(ConfigError, match="'index' does not apply to a textgen run.*seed, length"):
        parse_options(textgen.GenerateOptions, {"index": 3}, "generate", "textgen")


def test_explain_writes_traces_and_refuses_other_methods_and_files(run_dir, tmp_path):
    saved = SavedRun.open(run_dir)
    paths = saved.task.explain(saved, [], tmp_path / "ex", textgen.ExplainOptions(text="JULIET: the sun"))
    assert [p.name for p in paths] == ["gates.html", "gates.png", "unfold.png"]
    assert all(png_nonblank(p) for p in paths[1:]) and "forget gate" in paths[0].read_text(encoding="utf-8")
    default = saved.task.explain(saved, [], tmp_path / "ex2", textgen.ExplainOptions(method="gates"))
    assert all(p.is_file() for p in default)                          # a validation passage by default
    with pytest.raises(ConfigError, match=r"'method' = 'saliency' is not allowed; expected one of \['auto', 'gates'\]"):
        parse_options(textgen.ExplainOptions, {"method": "saliency"}, "explain", "textgen")
    with pytest.raises(ConfigError, match="expected one of"):
        saved.task.explain(saved, [], tmp_path, textgen.ExplainOptions(method="gradcam"))
    with pytest.raises(UserError, match="passage with --text, not input files"):
        saved.task.explain(saved, [tmp_path / "a.txt"], tmp_path, textgen.ExplainOptions())
    with pytest.raises(DataError, match="never seen"):
        saved.task.explain(saved, [], tmp_path, textgen.ExplainOptions(text="ROMEO: \u4e16"))


def test_predict_scores_each_text_file_and_reports_broken_ones(run_dir, tmp_path):
    from typer.testing import CliRunner

    from neuralsight.cli import app

    saved = SavedRun.open(run_dir)
    vocab = Vocab.from_json(saved.state()["model"]["vocab"])
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "scene.txt").write_text("JULIET: It is the east.\n", encoding="utf-8")
    (folder / "notes.md").write_text("not a .txt, not in a folder expansion", encoding="utf-8")
    unknown, binary, short = tmp_path / "zounds.txt", tmp_path / "broken.txt", tmp_path / "one.txt"
    unknown.write_text("ROMEO: Zounds!", encoding="utf-8")
    binary.write_bytes(b"\x00\x01 not text")
    short.write_text("R", encoding="utf-8")
    missing = tmp_path / "missing.txt"
    rows = saved.task.predict(saved, [folder, unknown, binary, short, missing], tmp_path / "out", None)
    assert [r["input"] for r in rows] == [str(p) for p in (folder / "scene.txt", unknown, binary, short, missing)]
    good, *bad = rows
    ref = textgen.evaluate_ids(saved.model(), vocab.encode("JULIET: It is the east.\n"), 32, 256)
    assert good["characters"] == 24 and good["nats_per_char"] == pytest.approx(ref["val_loss"], rel=1e-9)
    assert good["bits_per_char"] == pytest.approx(ref["val_bpc"]) and good["perplexity"] == pytest.approx(ref["val_ppl"])
    assert all("error" in r and r["input"] in r["error"] for r in bad), bad
    assert "never seen: 'Z'" in bad[0]["error"] and "binary" in bad[1]["error"] and "one character" in bad[2]["error"]
    assert not (tmp_path / "out").exists()                           # scoring writes nothing
    with pytest.raises(UserError, match="no text files given"):
        saved.task.predict(saved, [], tmp_path, None)
    res = CliRunner().invoke(app, ["predict", str(run_dir), str(folder / "scene.txt"), str(unknown), "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)[0]["bits_per_char"] == pytest.approx(ref["val_bpc"])


def test_report_sections_are_data(run_dir):
    saved = SavedRun.open(run_dir)
    sections = {s.anchor: s for s in saved.task.report(run_dir)}
    assert list(sections) == ["stages", "data", "gates", "unfold"]
    stages = json.loads((run_dir / "samples" / "stages.json").read_text(encoding="utf-8"))
    (cards,) = [b for b in sections["stages"].blocks if isinstance(b, Cards)]
    assert [c.title for c in cards.cards] == ["untrained", "short training", stages[-1]["label"]]
    assert [(c.lead, c.text) for c in cards.cards] == [(s["seed"], s["text"]) for s in stages]
    assert cards.cards[0].subtitle == (f"step 0 · val loss {stages[0]['val_loss']:.4f} nats/char · "
                                       f"{stages[0]['val_bpc']:.4f} bits/char")
    table, note = sections["data"].blocks
    assert isinstance(table, Table) and ["vocab_size", saved.model().head.out_features] in table.rows
    assert isinstance(note, Text) and "nanoGPT's protocol" in note.text and "no test split" in note.text
    fragment, heatmap = sections["gates"].blocks
    assert isinstance(fragment, Fragment) and fragment.path == run_dir / "samples" / "gates.html"
    assert isinstance(heatmap, Figure) and png_nonblank(heatmap.path)
    assert png_nonblank(sections["unfold"].blocks[0].path)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "forget gate" in html and "untrained" in html and "nanoGPT&#x27;s protocol" in html
