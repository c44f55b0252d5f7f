"""Character-level text generation: a CharRNN learns a play one character at a time, then writes on.

This module holds the textgen task: config and options, the corpus, the engine adapter (which continues the seed at
each training stage), whole-split evaluation, sampling, evaluate / predict (scores text files) / generate / explain
over a saved run, and the report sections. ``viz/textgen.py`` writes the samples, gate traces and unfolding figure.

Data: Romeo and Juliet, tiny shakespeare or any UTF-8 file, split as nanoGPT does: the first 90 % train, the last
10 % validate, and that one split picks the checkpoint and is reported (no test split). Training draws windows of
``seq_len + 1`` characters (truncated BPTT); validation reads the **whole** split, state carried, in nats/char.
The samples continue ``samples.seed`` when the text has its characters, else a seed from the text itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from itertools import chain
from pathlib import Path

from neuralsight.config import TrainConfig, bounded, choice, validate
from neuralsight.data import text as text_data
from neuralsight.data.text import Vocab, check_lengths, corpus_path, encode_corpus, read_text, split_ids
from neuralsight.errors import ConfigError, DataError, UserError
from neuralsight.report.sections import Card, Cards, Figure, Fragment, Section, Table, Text
from neuralsight.tasks.base import Outcome, expand_inputs, failed, register_task
from neuralsight.viz.textgen import StageSamples, stage_titles, write_explanations


@dataclass
class TextData:
    dataset: str = choice("romeo-juliet", ("romeo-juliet", "tinyshakespeare"),
                          help="catalog corpus (ignored when text_file is set)")
    data_dir: str | None = None
    text_file: str | None = None
    seq_len: int = bounded(128, min=2, help="characters per training window (truncated BPTT length)")
    train_fraction: float = bounded(0.9, min=0.05, max=0.99)
    eval_streams: int = bounded(32, min=1, help="parallel contiguous streams for whole-split evaluation")
    eval_chunk: int = bounded(256, min=8, help="characters per evaluation forward pass")


@dataclass
class TextModel:
    cell: str = choice("lstm", ("rnn", "lstm", "gru"))
    embedding: int = bounded(64, min=1)
    hidden_size: int = bounded(512, min=1)
    num_layers: int = bounded(2, min=1, max=8)
    dropout: float = bounded(0.1, min=0.0, max=0.9)
    tie_weights: bool = False


@dataclass
class TextSamples:
    seed: str = field(default="ROMEO:", metadata={"help": "text the samples continue (empty, or with characters the "
                                                  "text lacks: a seed from the text, e.g. its most frequent line)"})
    length: int = bounded(300, min=1)
    temperature: float = bounded(0.8, min=0.01)
    top_k: int = bounded(0, min=0)
    rng_seed: int = 1234
    stages: list[int] = field(default_factory=lambda: [0, 200, 1000], metadata={
        "help": "steps whose next evaluation continues the seed (the best checkpoint adds the final stage)"})
    passage_length: int = bounded(200, min=8, help="characters of validation text for the gate traces")
    units: int = bounded(8, min=1, max=64, help="units shown in the gate traces")
    unfold_steps: int = bounded(8, min=2, max=24, help="time steps drawn in the unfolding figure")


@dataclass
class Config:
    data: TextData = field(default_factory=TextData)
    model: TextModel = field(default_factory=TextModel)
    samples: TextSamples = field(default_factory=TextSamples)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=0, steps=2000, batch_size=64, lr=3e-3, warmup=100, eval_every=200, grad_clip=1.0))

    def check(self) -> None:
        if self.model.tie_weights and self.model.embedding != self.model.hidden_size:
            m = self.model
            raise ConfigError(f"model.tie_weights needs model.embedding == model.hidden_size, got {m.embedding} and "
                              f"{m.hidden_size}", "set both to the same value or tie_weights=false")
        if any(s < 0 for s in self.samples.stages):
            raise ConfigError(f"samples.stages = {self.samples.stages} must be steps >= 0")


@dataclass
class GenerateOptions:
    seed: str | None = field(default=None, metadata={"help": "text to continue (default: the run's sample seed)"})
    length: int = bounded(500, min=0, help="characters to sample")
    temperature: float = bounded(0.8, min=0.01, help="divides the logits: < 1 conservative, > 1 adventurous")
    top_k: int = bounded(0, min=0, help="sample among the k likeliest characters (0: all)")
    rng_seed: int | None = field(default=None, metadata={"help": "repeatable sampling (default: fresh)"})


@dataclass
class ExplainOptions:
    text: str | None = field(default=None, metadata={"help": "passage to trace (default: from the validation text)"})
    method: str = choice("auto", ("auto", "gates"), help="gates: gate traces and the unfolding figure")


@dataclass
class Corpus:
    vocab: Vocab
    train_ids: object       # LongTensor (N_train,)
    val_ids: object         # LongTensor (N_val,)
    source: str
    seed: str               # a seed from the training text (data/text.py seed_from_text)

    def passage(self, length: int) -> str:
        """A validation passage starting at a line start (what the model did not train on)."""
        val = self.vocab.decode(self.val_ids[: length * 4].tolist())
        start = val.find("\n") + 1 if "\n" in val[: length] else 0
        return val[start:start + length] or val[:length]


def load_corpus(data: TextData) -> Corpus:
    path = corpus_path(data.dataset, data.data_dir, data.text_file)
    text = read_text(path)
    vocab = Vocab.from_text(text)
    train_ids, val_ids = split_ids(encode_corpus(text, vocab), data.train_fraction)   # (N_train,), (N_val,)
    check_lengths(len(train_ids), len(val_ids), data.seq_len, f"text file {path}")
    return Corpus(vocab, train_ids, val_ids, str(path), text_data.seed_from_text(text[: len(train_ids)]))


class TextGenTrain:
    """What the training loop drives (engine/trainer.py ``TrainTask``); ``on_evaluate`` continues the seed (same RNG)
    at the first evaluation (step 0 included) reaching each of ``samples.stages``."""

    monitor = "val_loss"
    monitor_mode = "min"
    evaluate_at_start = True
    item_unit = "windows"   # one item is a window of data.seq_len characters; the summary has tokens_per_s too
    metric_units = {"val_loss": "nats/char", "val_bpc": "bits/char"}

    def __init__(self, cfg: Config, corpus: Corpus, device, run):
        import torch

        from neuralsight.models import create_model

        self.cfg, self.corpus, self.device, self.run = cfg, corpus, device, run
        self.train_ids = corpus.train_ids.to(device)                # (N_train,) on the device
        self.val_ids = corpus.val_ids.to(device)                    # (N_val,)
        kwargs = {"vocab_size": len(corpus.vocab), **asdict(cfg.model)}  # TextModel's fields are CharRNN's arguments
        self.model = create_model("charrnn", **kwargs).to(device)
        self.seed, self.seed_note = text_data.choose_seed(cfg.samples.seed, corpus.vocab, corpus.seed)
        # The vocabulary and the seed the samples continue travel in the checkpoint JSON beside the model's arguments.
        self.model_spec = {"name": "charrnn", "kwargs": kwargs, "vocab": corpus.vocab.to_json(), "seed": self.seed}
        self._offsets = torch.arange(cfg.data.seq_len + 1, device=device)  # (T+1,)
        self.stages = StageSamples(run.samples, cfg.samples.stages)   # a resumed run continues its list

    def train_size(self) -> int:
        return len(self.train_ids) - self.cfg.data.seq_len         # every window start

    def get_batch(self, indices):
        starts = indices.to(self.device, non_blocking=True)         # (B,)
        window = self.train_ids[starts[:, None] + self._offsets]    # (B, T+1)
        return window[:, :-1], window[:, 1:]                        # (B, T) inputs, (B, T) targets

    def training_step(self, model, batch):
        import torch.nn.functional as F

        x, y = batch
        logits, _ = model(x)                                        # (B, T, V)
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))

    def evaluate(self, model) -> dict[str, float]:
        return evaluate_ids(model, self.val_ids, self.cfg.data.eval_streams, self.cfg.data.eval_chunk)

    def on_evaluate(self, model, step: int, metrics: dict) -> None:
        if self.run.writer and (stage := self.stages.due(step)) is not None:
            self.snapshot(model, step, metrics, stage)

    def snapshot(self, model, step: int, metrics: dict, stage_step: int | None, label: str = "") -> None:
        c = self.cfg.samples
        text = "".join(continue_text(model, self.corpus.vocab, self.seed, c.length, c.temperature, c.top_k, c.rng_seed))
        self.stages.add({"step": step, "stage_step": stage_step, "label": label, "val_loss": metrics.get("val_loss"),
                         "val_bpc": metrics.get("val_bpc"), "seed": self.seed, "text": text})


def evaluate_ids(model, ids, streams: int = 32, chunk: int = 256) -> dict[str, float]:
    """Mean next-character loss over every character of ``ids`` (N,), each predicted once: ``streams`` contiguous
    rows read ``chunk`` characters at a time, state carried; the few left over continue the last row's state."""
    import torch
    import torch.nn.functional as F

    from neuralsight.engine.metrics import bits_per_char, perplexity
    from neuralsight.models.charrnn import CharRNN

    n = len(ids) - 1                                                # predictions: every char but the first
    streams = max(1, min(streams, n))
    length = n // streams
    x = ids[: streams * length].view(streams, length)               # (S, L)
    y = ids[1: streams * length + 1].view(streams, length)          # (S, L)
    total = torch.zeros((), dtype=torch.float64, device=ids.device)
    state = None
    with torch.no_grad():
        for t in range(0, length, chunk):
            logits, state = model(x[:, t:t + chunk], state)         # (S, c, V)
            total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y[:, t:t + chunk].reshape(-1),
                                     reduction="sum").double()
        rest = n - streams * length
        if rest:
            last = CharRNN.select_state(state, streams - 1) if state is not None else None
            logits, _ = model(ids[streams * length: n].view(1, rest), last)         # (1, r, V)
            total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[streams * length + 1: n + 1],
                                     reduction="sum").double()
    loss = float(total) / n
    return {"val_loss": loss, "val_bpc": bits_per_char(loss), "val_ppl": perplexity(loss)}


def continue_text(model, vocab, seed: str, length: int, temperature: float = 0.8, top_k: int = 0,
                  rng_seed: int | None = None) -> Iterator[str]:
    """``length`` characters sampled after ``seed`` (checked by the caller) by ``CharRNN.generate``; ``top_k`` 0:
    all; ``rng_seed`` seeds a private CPU generator (the same text on any device; None: a fresh one)."""
    import torch

    generator = torch.Generator()
    generator.manual_seed(rng_seed if rng_seed is not None else int(torch.seed() % 2**63))
    ids = model.generate(vocab.encode(seed).to(next(model.parameters()).device), length, temperature,
                         top_k or None, generator)
    return (vocab.chars[i] for i in ids)


def split_protocol(train_fraction: float) -> str:  # how the text is split and scored (summary, report)
    return (f"The text follows nanoGPT's protocol: the first {train_fraction:.0%} of the characters train, the last "
            f"{1 - train_fraction:.0%} validate; that one held-out split selects the checkpoint and is the one "
            "reported (there is no test split).")


# ---- the task -------------------------------------------------------------------------------------------

@register_task
class TextGen:
    name = "textgen"
    help = "Character-level RNN/LSTM/GRU text generation (Romeo and Juliet, tiny shakespeare or any text file)."
    preset = "romeo"
    splits = ("val",)
    split_note = "it keeps nanoGPT's single held-out split (the last part of the text, data.train_fraction)"
    Config, GenerateOptions, ExplainOptions = Config, GenerateOptions, ExplainOptions

    def run_name(self, cfg: Config) -> str | None:
        return Path(cfg.data.text_file).stem if cfg.data.text_file else None  # a Hamlet run is not "romeo"

    def build(self, cfg: Config, env, run) -> TextGenTrain:
        corpus = load_corpus(cfg.data)
        built = TextGenTrain(cfg, corpus, env.device, run)
        if built.seed_note and run.writer:
            from neuralsight.engine import progress

            progress.line(built.seed_note)
        run.write_json("data.json", {"source": corpus.source, "characters": len(corpus.train_ids) + len(corpus.val_ids),
                                     "vocab_size": len(corpus.vocab), "vocab": corpus.vocab.to_json(),
                                     "train_chars": len(corpus.train_ids), "val_chars": len(corpus.val_ids),
                                     "parameters": built.model.num_parameters(), "sample_seed": built.seed,
                                     "sample_seed_note": built.seed_note})
        return built

    def finish(self, cfg: Config, env, run, built: TextGenTrain, fits: dict) -> Outcome:
        fit, model, samples = fits[""], built.model, cfg.samples
        with env.autocast():
            metrics = evaluate_ids(model, built.val_ids, cfg.data.eval_streams, cfg.data.eval_chunk)
        built.snapshot(model, fit.best_step, metrics, None, built.stages.best_label(fit.best_step))
        write_explanations(model, built.corpus.vocab, built.corpus.passage(samples.passage_length),
                           built.seed, run.figures, run.samples, samples.units, samples.unfold_steps)
        return Outcome("val bits/char", metrics["val_bpc"], "val", val=metrics,
                       extra={"parameters": model.num_parameters(), "vocab_size": len(built.corpus.vocab),
                              "tokens_per_s": fit.items_per_second * cfg.data.seq_len,
                              "split_protocol": split_protocol(cfg.data.train_fraction)})

    def _vocab(self, saved) -> Vocab:
        return Vocab.from_json((saved.state().get("model") or {}).get("vocab"))  # DataError when missing

    def _seed(self, saved) -> str:  # the seed the run's samples continued (runs of 0.1 saved none: samples.seed)
        return (saved.state().get("model") or {}).get("seed") or saved.cfg.samples.seed

    def evaluate(self, saved, split: str) -> dict:
        """Whole-split metrics of the best checkpoint on the held-out split (in fp32, as 0.1 printed them)."""
        if split != "val":  # nanoGPT's protocol: one held-out split selects the checkpoint and is reported
            raise UserError(f"--split {split} does not apply to a textgen run: it keeps nanoGPT's single held-out "
                            f"split (the last {1 - saved.cfg.data.train_fraction:.0%} of the text)", "use --split val")
        vocab, corpus, d = self._vocab(saved), load_corpus(saved.cfg.data), saved.cfg.data
        if corpus.vocab.chars != vocab.chars:
            raise DataError(f"the text {corpus.source} has a different vocabulary from the run's",
                            "evaluate on the text the run was trained on")
        return evaluate_ids(saved.model(), corpus.val_ids.to(saved.device), d.eval_streams, d.eval_chunk)

    def predict(self, saved, inputs: list[Path], out: Path, options) -> list[dict]:
        """Nats/char, bits/char and perplexity of the model on each UTF-8 text file (nothing is written)."""
        if not inputs:
            raise UserError("no text files given", "usage: neuralsight predict RUN TEXT_FILE [TEXT_FILE ...]")
        vocab, d, rows = self._vocab(saved), saved.cfg.data, []
        for path in expand_inputs(inputs, (".txt",)):
            try:
                text = read_text(path)
                vocab.check(text, f"text file {path}")
                if len(text) < 2:
                    raise DataError(f"text file {path} holds one character; scoring needs two or more")
            except DataError as err:
                rows.append(failed(path, err))
                continue
            res = evaluate_ids(saved.model(), vocab.encode(text).to(saved.device), d.eval_streams, d.eval_chunk)
            rows.append({"input": str(path), "characters": len(text), "nats_per_char": res["val_loss"],
                         "bits_per_char": res["val_bpc"], "perplexity": res["val_ppl"]})
        return rows

    def generate(self, saved, options: GenerateOptions) -> Iterator[str]:
        """The seed, then each sampled character; everything is checked before the iterator is returned."""
        validate(options)
        seed = self._seed(saved) if options.seed is None else options.seed
        if not seed:
            raise UserError("the seed text is empty", "pass --seed TEXT, e.g. --seed \"ROMEO:\"")
        vocab = self._vocab(saved)
        vocab.check(seed, "seed")
        return chain([seed], continue_text(saved.model(), vocab, seed, options.length, options.temperature,
                                           options.top_k, options.rng_seed))

    def explain(self, saved, inputs: list[Path], out: Path, options: ExplainOptions) -> list[Path]:
        """Gate traces (HTML + heatmap) of a passage and the unfolding figure (over the passage, else the seed)."""
        validate(options)
        if inputs:
            raise UserError("textgen runs take a passage with --text, not input files",
                            "e.g. neuralsight explain RUN --text \"ROMEO: But soft!\"")
        vocab, samples = self._vocab(saved), saved.cfg.samples
        text = options.text or load_corpus(saved.cfg.data).passage(samples.passage_length)
        vocab.check(text, "text")
        return write_explanations(saved.model(), vocab, text, options.text or self._seed(saved), out, out,
                                  samples.units, samples.unfold_steps)

    def report(self, run_dir: Path) -> list[Section]:
        run_dir, sections = Path(run_dir), []
        samples, figures = run_dir / "samples", run_dir / "figures"
        if (samples / "stages.json").is_file():
            records = json.loads((samples / "stages.json").read_text(encoding="utf-8"))
            cards = [Card(title, r["text"], subtitle, lead=r["seed"])
                     for (title, subtitle), r in zip(stage_titles(records), records, strict=True)]
            note = Text("The same seed continued with the same sampling RNG at each stage of training.")
            sections.append(Section("Samples at each training stage", [note, Cards(cards)], "stages"))
        if (run_dir / "data.json").is_file():
            d = json.loads((run_dir / "data.json").read_text(encoding="utf-8"))
            rows = [[k, d[k]] for k in ("source", "characters", "vocab_size", "train_chars", "val_chars",
                                        "parameters", "sample_seed") if k in d]
            notes = [split_protocol(d["train_chars"] / d["characters"]), d.get("sample_seed_note")]
            sections.append(Section("Data and model", [Table(rows, ["item", "value"]),
                                                       *(Text(n, muted=True) for n in notes if n)], "data"))
        fragment = [Fragment(samples / "gates.html")] if (samples / "gates.html").is_file() else []
        gates = Figure(figures / "gates.png", "gate activations and cell state of the chosen units over a validation "
                       "passage (Karpathy, Johnson, Fei-Fei 2015)")
        unfold = Figure(figures / "unfold.png", "the recurrence unrolled over the seed: one cell per character, the "
                        "hidden state h_t carried to the next step")
        sections += [Section("What the recurrent cells see", [*fragment, gates], "gates"),
                     Section("Unfolding in time", [unfold], "unfold")]
        return sections
