"""Character-level text generation: a CharRNN learns a play one character at a time, then writes on.

Data: Romeo and Juliet (default), tiny shakespeare, or any UTF-8 file (``--set data.text_file=PATH``),
split contiguously 90/10 like nanoGPT. Training draws random windows of ``seq_len + 1`` characters
(truncated backpropagation through time) whose indices are built on the device. Validation covers the
**whole** validation split: it is cut into ``eval_streams`` contiguous streams that are read in chunks with
the recurrent state carried over, so every validation character is predicted exactly once (as char-rnn
evaluates). Metrics: nats per character (the loss), bits per character, perplexity.

During training the same seed is continued (same sampling RNG) untrained at step 0 and at the configured
steps; the final snapshot is the best checkpoint. The report shows them side by side, then the LSTM's gate
traces (Karpathy, Johnson, Fei-Fei 2015) and the recurrence unrolled over the seed.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import TrainConfig, bounded, choice
from neuralsight.errors import ConfigError, DataError, UserError

PRESET = "romeo"
STAGE_NAMES = ("untrained", "short training", "longer training", "further training")


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
    seed: str = "ROMEO:"
    length: int = bounded(300, min=1)
    temperature: float = bounded(0.8, min=0.01)
    top_k: int = bounded(0, min=0)
    rng_seed: int = 1234
    # Steps whose next evaluation continues the seed; the best checkpoint adds the final stage.
    stages: list[int] = field(default_factory=lambda: [0, 200, 1000])
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
            raise ConfigError(f"model.tie_weights needs model.embedding == model.hidden_size, got "
                              f"{self.model.embedding} and {self.model.hidden_size}",
                              "set both to the same value or tie_weights=false")
        if any(s < 0 for s in self.samples.stages):
            raise ConfigError(f"samples.stages = {self.samples.stages} must be steps >= 0")
        if not self.samples.seed:
            raise ConfigError("samples.seed is empty", "give a seed text such as \"ROMEO:\"")


# --------------------------------------------------------------------------------------------- data


@dataclass
class Corpus:
    text: str
    vocab: object           # data.text.Vocab
    train_ids: object       # LongTensor (N_train,)
    val_ids: object         # LongTensor (N_val,)
    source: str


def load_corpus(data: TextData) -> Corpus:
    from neuralsight.data.text import Vocab, check_lengths, corpus_path, encode_corpus, read_text, split_ids

    path = corpus_path(data.dataset, data.data_dir, data.text_file)
    text = read_text(path)
    vocab = Vocab.from_text(text)
    ids = encode_corpus(text, vocab)                                 # (N,)
    train_ids, val_ids = split_ids(ids, data.train_fraction)
    check_lengths(len(train_ids), len(val_ids), data.seq_len, f"text file {path}")
    return Corpus(text, vocab, train_ids, val_ids, str(path))


# --------------------------------------------------------------------------------------------- task


class TextGenTask:
    """The TrainTask the engine's ``fit`` drives (see engine/trainer.py)."""

    monitor = "val_loss"
    monitor_mode = "min"
    channels_last = False
    evaluate_at_start = True

    def __init__(self, cfg: Config, corpus: Corpus, device):
        from neuralsight.models import create_model

        self.cfg = cfg
        self.device = device
        self.vocab = corpus.vocab
        self.seq_len = cfg.data.seq_len
        self.train_ids = corpus.train_ids.to(device)                # (N_train,) on the device
        self.val_ids = corpus.val_ids.to(device)                    # (N_val,)
        kwargs = {"vocab_size": len(corpus.vocab), "cell": cfg.model.cell, "embedding": cfg.model.embedding,
                  "hidden_size": cfg.model.hidden_size, "num_layers": cfg.model.num_layers,
                  "dropout": cfg.model.dropout, "tie_weights": cfg.model.tie_weights}
        self.model = create_model("charrnn", **kwargs).to(device)
        # The vocabulary travels in the checkpoint JSON next to the constructor arguments.
        self.model_spec = {"name": "charrnn", "kwargs": kwargs, "vocab": corpus.vocab.to_json()}
        import torch

        self._offsets = torch.arange(self.seq_len + 1, device=device)  # (T+1,)

    def train_size(self) -> int:
        return len(self.train_ids) - self.seq_len                   # every window start

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


def evaluate_ids(model, ids, streams: int = 32, chunk: int = 256) -> dict[str, float]:
    """Mean next-character loss over every character of ``ids`` (each predicted once, state carried).

    ``ids`` (N,) is cut into ``streams`` contiguous rows read ``chunk`` characters at a time; the few
    characters left over continue the last row's state. Returns nats/char, bits/char and perplexity.
    """
    import torch
    import torch.nn.functional as F

    n = len(ids) - 1                                                # predictions: every char but the first
    streams = max(1, min(streams, n))
    length = n // streams
    x = ids[: streams * length].view(streams, length)               # (S, L)
    y = ids[1: streams * length + 1].view(streams, length)          # (S, L)
    total = torch.zeros((), dtype=torch.float64, device=ids.device)
    state = None
    for t in range(0, length, chunk):
        logits, state = model(x[:, t:t + chunk], state)             # (S, c, V)
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y[:, t:t + chunk].reshape(-1),
                                 reduction="sum").double()
    rest = n - streams * length
    if rest:
        last = _select_state(state, streams - 1) if state is not None else None
        tail_x = ids[streams * length: n].view(1, rest)             # (1, r)
        tail_y = ids[streams * length + 1: n + 1].view(1, rest)     # (1, r)
        logits, _ = model(tail_x, last)
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tail_y.reshape(-1),
                                 reduction="sum").double()
    loss = float(total) / n
    return {"val_loss": loss, "val_bpc": loss / math.log(2), "val_ppl": math.exp(min(loss, 50.0))}


def _select_state(state, row: int):
    if isinstance(state, tuple):
        return tuple(s[:, row:row + 1].contiguous() for s in state)
    return state[:, row:row + 1].contiguous()


# --------------------------------------------------------------------------------------------- generation


def generate(model, vocab, seed: str = "ROMEO:", length: int = 500, temperature: float = 0.8, top_k: int = 0,
             rng_seed: int | None = None, on_text=None) -> str:
    """Continue ``seed`` with ``length`` sampled characters; returns the new text (without the seed).

    Sampling is :meth:`CharRNN.generate <neuralsight.models.charrnn.CharRNN.generate>`; this wrapper checks
    the options and the seed against the vocabulary, and turns the ids into characters.

    Args:
        model: a CharRNN (any device); in eval mode while sampling.
        vocab: the run's :class:`~neuralsight.data.text.Vocab`.
        seed: text to continue; every character must be in the vocabulary (else DataError naming them).
        length: characters to sample.
        temperature: divides the logits; < 1 is more conservative, > 1 more adventurous.
        top_k: sample only among the k likeliest characters (0: all).
        rng_seed: seeds a private generator, so the same seed gives the same text; None draws fresh.
        on_text: called with each new character as it is produced (streaming).
    """
    import torch

    if not seed:
        raise UserError("the seed text is empty", "pass --seed TEXT, e.g. --seed \"ROMEO:\"")
    if temperature <= 0:
        raise UserError(f"--temperature {temperature} must be > 0", "try 0.8")
    if length < 0 or top_k < 0:
        raise UserError("--length and --top-k must be >= 0")
    vocab.check(seed, "seed")
    generator = torch.Generator().manual_seed(rng_seed if rng_seed is not None else int(torch.seed() % 2**63))
    out: list[str] = []
    for token in model.generate(vocab.encode(seed), length, temperature, top_k, generator):
        out.append(vocab.chars[token])
        if on_text is not None:
            on_text(out[-1])
    return "".join(out)


def load_run(run_dir: Path, tag: str = "best", device: str = "cpu"):
    """(model on ``device`` in eval mode, vocab, checkpoint state) of a saved textgen run."""
    import torch

    from neuralsight.data.text import Vocab
    from neuralsight.engine import checkpoint as ckpt
    from neuralsight.errors import CheckpointError
    from neuralsight.models import create_model

    run_dir = Path(run_dir)
    state = ckpt.read_state(run_dir / "checkpoints", tag)
    spec = state.get("model") or {}
    if spec.get("name") != "charrnn" or "vocab" not in spec:
        raise CheckpointError(f"{run_dir} holds no character model checkpoint",
                              "pass a run made by `neuralsight train textgen`")
    model = create_model("charrnn", **spec["kwargs"])
    ckpt.load_weights(model, run_dir / "checkpoints", tag)
    model.to(torch.device(device)).eval()
    return model, Vocab.from_json(spec["vocab"]), state


def generate_run(run_dir: Path, seed: str = "ROMEO:", length: int = 500, temperature: float = 0.8,
                 top_k: int = 0, rng_seed: int | None = None, on_text=None, device: str = "cpu") -> str:
    """Python API of ``neuralsight generate``: continue ``seed`` with a saved run's best model."""
    model, vocab, _ = load_run(run_dir, device=device)
    return generate(model, vocab, seed, length, temperature, top_k, rng_seed, on_text)


def generate_cli(run_dir: Path, opts: dict) -> None:
    """``neuralsight generate RUN``: print the seed, then stream each character as it is sampled."""
    model, vocab, _ = load_run(run_dir)
    vocab.check(opts.get("seed") or "", "seed")

    def emit(ch: str) -> None:
        sys.stdout.write(ch)
        sys.stdout.flush()

    seed = opts.get("seed") or ""
    if seed:
        emit(seed)
    generate(model, vocab, seed, int(opts.get("length", 500)), float(opts.get("temperature", 0.8)),
             int(opts.get("top_k") or 0), opts.get("rng_seed"), on_text=emit)
    emit("\n")


# --------------------------------------------------------------------------------------------- snapshots


class StageSnapshots:
    """Continue the same seed with the same sampling RNG at configured steps; write samples/stage-*.txt.

    A snapshot is taken at the first evaluation whose step reaches each configured stage (evaluations
    happen every ``train.eval_every`` steps and at step 0). The list lives in ``samples/stages.json`` so a
    resumed run continues it.
    """

    def __init__(self, run, vocab, samples: TextSamples):
        self.run = run
        self.vocab = vocab
        self.cfg = samples
        self.path = run.samples / "stages.json"
        self.records: list[dict] = []
        if self.path.is_file():
            self.records = json.loads(self.path.read_text(encoding="utf-8"))
        self.pending = sorted(s for s in set(samples.stages) if not any(r.get("stage_step") == s for r in
                                                                          self.records))

    def on_evaluate(self, model, step: int, metrics: dict) -> None:
        due = [s for s in self.pending if step >= s]
        if due:
            self.take(model, step, metrics, stage_step=max(due))
            self.pending = [s for s in self.pending if s not in due]

    def take(self, model, step: int, metrics: dict, stage_step: int | None, label: str | None = None) -> dict:
        from neuralsight.io import atomic_write_json, atomic_write_text

        c = self.cfg
        text = generate(model, self.vocab, c.seed, c.length, c.temperature, c.top_k, c.rng_seed)
        rec = {"step": step, "stage_step": stage_step, "label": label or "",
               "val_loss": metrics.get("val_loss"), "val_bpc": metrics.get("val_bpc"),
               "seed": c.seed, "text": text, "file": f"stage-{len(self.records)}-step{step:06d}.txt"}
        atomic_write_text(self.run.samples / rec["file"], c.seed + text + "\n")
        self.records.append(rec)
        if self.run.writer:
            atomic_write_json(self.path, self.records)
        return rec


def _stage_labels(records: list[dict]) -> list[str]:
    """untrained / short / longer / further training (more stages: 'training, step N')."""
    out = []
    for i, r in enumerate(records):
        if r.get("label"):
            out.append(r["label"])
        elif r.get("step") == 0:
            out.append(STAGE_NAMES[0])
        else:
            out.append(STAGE_NAMES[min(i, len(STAGE_NAMES) - 1)])
    return out


# --------------------------------------------------------------------------------------------- train


def train(cfg: Config, env, run, resume: bool = False) -> dict:
    from neuralsight import runner
    from neuralsight.config import to_dict
    from neuralsight.engine import checkpoint as ckpt
    from neuralsight.engine.trainer import fit

    corpus = load_corpus(cfg.data)
    task = TextGenTask(cfg, corpus, env.device)
    snaps = StageSnapshots(run, corpus.vocab, cfg.samples) if run.writer else None
    if run.writer:
        run.write_json("data.json", {"source": corpus.source, "characters": len(corpus.text),
                                     "vocab_size": len(corpus.vocab), "vocab": corpus.vocab.to_json(),
                                     "train_chars": len(corpus.train_ids), "val_chars": len(corpus.val_ids),
                                     "parameters": task.model.num_parameters()})
    result = fit(task, env, cfg.train, run, {"task": "textgen", **to_dict(cfg)}, resume=resume,
                 on_evaluate=snaps.on_evaluate if snaps else None)
    model = task.model
    ckpt.load_weights(model, run.checkpoints, "best", device=env.device)
    model.eval()
    import torch

    with torch.no_grad(), env.autocast():
        metrics = evaluate_ids(model, task.val_ids, cfg.data.eval_streams, cfg.data.eval_chunk)
    if snaps is not None and not result.interrupted:
        snaps.take(model, result.best_step, metrics, None, label=f"{STAGE_NAMES[-1]} (best, step {result.best_step})"
                   if len(snaps.records) >= 3 else f"best checkpoint (step {result.best_step})")
        passage = explain_passage(corpus, cfg.samples.passage_length)
        write_explanations(model, corpus.vocab, passage, cfg.samples.seed, run.path / "figures",
                           run.samples, cfg.samples.units, cfg.samples.unfold_steps)
    metrics = {**metrics, "parameters": task.model.num_parameters(), "vocab_size": len(corpus.vocab),
               "tokens_per_s": result.items_per_second * cfg.data.seq_len}
    return {"headline": {"name": "val bits/char", "value": metrics["val_bpc"]}, "metrics": metrics,
            "fit": runner.fit_summary(result), "interrupted": result.interrupted}


# --------------------------------------------------------------------------------------------- explain


def explain_passage(corpus: Corpus, length: int) -> str:
    """A validation passage starting at a line start (what the model did not train on)."""
    val = corpus.vocab.decode(corpus.val_ids[: length * 4].tolist())
    start = val.find("\n") + 1 if "\n" in val[: length] else 0
    return val[start:start + length] or val[:length]


def write_explanations(model, vocab, passage: str, seed: str, figures: Path, out: Path, units: int,
                       unfold_steps: int) -> list[Path]:
    """Gate traces (HTML + heatmap) over ``passage`` and the unfolding figure over ``seed``."""
    from neuralsight.io import atomic_write_text
    from neuralsight.viz import gates as G

    traces = G.record_traces(model, vocab, passage)
    chosen = G.choose_units(traces, units)
    html = G.trace_html(passage, traces, chosen)
    paths = [out / "gates.html"]
    atomic_write_text(paths[0], html)
    paths.append(G.trace_heatmap(passage, traces, chosen, figures / "gates.png"))
    paths.append(G.unfold_figure(model, vocab, seed[:unfold_steps], figures / "unfold.png"))
    return paths


def explain(run_dir: Path, inputs: list, opts: dict) -> list[Path]:
    """``neuralsight explain RUN --text "..."``: gate traces and the unfolding figure for a saved run."""
    from neuralsight.config import from_dict, load_toml

    run_dir = Path(run_dir)
    if inputs:
        raise UserError("textgen runs take a passage with --text, not input files",
                        "e.g. neuralsight explain RUN --text \"ROMEO: But soft!\"")
    if opts.get("method") not in (None, "auto", "gates"):
        raise UserError(f"--method {opts['method']} does not apply to a textgen run", "use --method gates")
    data = load_toml(run_dir / "config.toml")
    data.pop("task", None)
    cfg = from_dict(Config, data)
    model, vocab, _ = load_run(run_dir)
    text = opts.get("text")
    if not text:
        text = explain_passage(load_corpus(cfg.data), cfg.samples.passage_length)
    vocab.check(text, "text")
    out = Path(opts.get("out") or run_dir / "explain")
    return write_explanations(model, vocab, text, cfg.samples.seed if not opts.get("text") else text,
                              out, out, cfg.samples.units, cfg.samples.unfold_steps)


def evaluate(run_dir: Path, opts: dict) -> dict:
    """``neuralsight eval RUN``: whole-validation-split metrics of the best checkpoint."""
    import torch

    from neuralsight.config import from_dict, load_toml

    if opts.get("split") not in (None, "val", "test"):
        raise UserError(f"--split {opts['split']}: a textgen run has one held-out split", "use --split val")
    data = load_toml(Path(run_dir) / "config.toml")
    data.pop("task", None)
    cfg = from_dict(Config, data)
    if opts.get("data_dir"):
        cfg.data.data_dir = str(opts["data_dir"])
    model, vocab, _ = load_run(run_dir)
    corpus = load_corpus(cfg.data)
    if corpus.vocab.chars != vocab.chars:
        raise DataError(f"the text {corpus.source} has a different vocabulary from the run's",
                        "evaluate on the text the run was trained on")
    with torch.no_grad():
        return evaluate_ids(model, corpus.val_ids, cfg.data.eval_streams, cfg.data.eval_chunk)


# --------------------------------------------------------------------------------------------- report


def report_sections(run_dir: Path) -> list:
    from neuralsight.report.html import Section, esc, figure, fmt, table

    run_dir = Path(run_dir)
    sections = []
    stages_path = run_dir / "samples" / "stages.json"
    if stages_path.is_file():
        records = json.loads(stages_path.read_text(encoding="utf-8"))
        cards = []
        for label, r in zip(_stage_labels(records), records, strict=True):
            loss = r.get("val_loss")
            bpc = r.get("val_bpc")
            head = (f"<b>{esc(label)}</b><br><span class=\"muted\">step {r['step']} &middot; val loss "
                    f"{fmt(loss) if loss is not None else '-'} nats/char &middot; "
                    f"{fmt(bpc) if bpc is not None else '-'} bits/char</span>")
            body = f"<b>{esc(r['seed'])}</b>{esc(r['text'])}"
            cards.append(f'<div class="card" style="flex:1 1 0;min-width:220px;margin:4px">{head}'
                         f'<pre style="white-space:pre-wrap;font-size:.72rem">{body}</pre></div>')
        html = ('<p>The same seed continued with the same sampling RNG at each stage of training.</p>'
                '<div style="display:flex;gap:6px;align-items:stretch">' + "".join(cards) + "</div>")
        sections.append(Section("Samples at each training stage", html, "stages"))
    data_path = run_dir / "data.json"
    if data_path.is_file():
        d = json.loads(data_path.read_text(encoding="utf-8"))
        rows = [[k, d[k]] for k in ("source", "characters", "vocab_size", "train_chars", "val_chars", "parameters")
                if k in d]
        sections.append(Section("Data and model", table(rows, ["item", "value"]), "data"))
    gates_html = run_dir / "samples" / "gates.html"
    parts = []
    if gates_html.is_file():
        parts.append(gates_html.read_text(encoding="utf-8"))
    parts.append(figure(run_dir / "figures" / "gates.png", "gate activations and cell state of the chosen units "
                        "over a validation passage (Karpathy, Johnson, Fei-Fei 2015)"))
    if any(parts):
        sections.append(Section("What the recurrent cells see", "".join(parts), "gates"))
    unfold = figure(run_dir / "figures" / "unfold.png",
                    "the recurrence unrolled over the seed: one cell per character, the hidden state h_t carried "
                    "to the next step")
    if unfold:
        sections.append(Section("Unfolding in time", unfold, "unfold"))
    return sections
