"""Export of a textgen run: one step of the CharRNN with its recurrent state in and out.

The graph maps character ids ``(B, T)`` and the state to the next-character logits ``(B, T, V)`` and the new
state: ``(h, c)`` for an LSTM, ``h`` for a GRU or tanh RNN, each ``(num_layers, B, hidden_size)``. ``T`` may be
the whole seed (read once, from a zero state) or one character: generation feeds each sampled id back with the
returned state, so it runs without PyTorch (the vocabulary travels in the metadata). Checked on a passage of the
run's validation text, then on single steps that carry the state on. Tolerance: 1e-4 + 1e-4 x |value| (fp32).
"""

from __future__ import annotations

import torch
from torch import nn

from neuralsight.errors import DataError
from neuralsight.export.spec import ExportSpec, Tolerance, architecture, cpu_copy, no_model_choice

TOLERANCE = Tolerance(atol=1e-4, rtol=1e-4)
PASSAGE = 200
STEPS = 16


class LSTMStep(nn.Module):
    """``ids`` (B, T), ``h``, ``c`` (L, B, H) -> ``logits`` (B, T, V), ``h_out``, ``c_out``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        logits, (h, c) = self.model(ids, (h, c))
        return logits, h, c


class RecurrentStep(nn.Module):
    """``ids`` (B, T), ``h`` (L, B, H) -> ``logits`` (B, T, V), ``h_out`` (a GRU or tanh RNN)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, h: torch.Tensor):
        logits, h = self.model(ids, h)
        return logits, h


def validation_passage(saved, vocab, length: int = PASSAGE) -> tuple[str, str]:
    """``(passage, description)``: text from the start of the run's validation part (nanoGPT's last part)."""
    from neuralsight.data.text import corpus_path, read_text

    d = saved.cfg.data
    path = corpus_path(d.dataset, d.data_dir, d.text_file)
    text = read_text(path)
    val = text[int(len(text) * d.train_fraction):]
    start = val.find("\n") + 1 if "\n" in val[:length] else 0           # from a line start, as the task does
    passage = val[start:start + length] or val[:length]
    if len(passage) < 2:
        raise DataError(f"the validation part of {path} is too short to check the export with")
    vocab.check(passage, f"validation text of {path}")
    return passage, f"{len(passage)} characters of the validation text of {path}"


def spec(saved, model: str | None = None) -> ExportSpec:
    from neuralsight.data.text import Vocab

    no_model_choice("textgen", model)
    net = cpu_copy(saved.model())
    vocab = Vocab.from_json((saved.state().get("model") or {}).get("vocab"))
    lstm = net.cell == "lstm"
    passage, described = validation_passage(saved, vocab)
    ids = vocab.encode(passage)[None]                                          # (1, T)
    zeros = torch.zeros(net.num_layers, 1, net.hidden_size)                   # (L, 1, H)
    state = (zeros, zeros.clone()) if lstm else zeros
    head = ids[:, : len(passage) - STEPS] if len(passage) > STEPS + 1 else ids[:, :1]

    def pack(i, s) -> tuple:
        return (i, *s) if lstm else (i, s)

    cases = [pack(head, state)]
    with torch.no_grad():
        _, carried = net(head, state)
        for t in range(head.shape[1], ids.shape[1]):                          # one character at a time
            cases.append(pack(ids[:, t:t + 1], carried))
            _, carried = net(ids[:, t:t + 1], carried)
    windows = ids[0, : (ids.shape[1] // 3) * 3].view(3, -1)                   # (3, T/3): a batch of three
    batch_zeros = torch.zeros(net.num_layers, 3, net.hidden_size)
    cases.append(pack(windows, (batch_zeros, batch_zeros.clone()) if lstm else batch_zeros))

    def reference(ids, h, c=None):
        logits, out = net(ids, (h, c) if lstm else h)
        return (logits, *out) if lstm else (logits, out)

    states = ["h", "c"] if lstm else ["h"]
    axes = {"ids": {0: "batch", 1: "steps"}, "logits": {0: "batch", 1: "steps"},
            **{n: {1: "batch"} for n in states}, **{f"{n}_out": {1: "batch"} for n in states}}
    metadata = {
        "architecture": architecture(saved),
        "vocab": vocab.chars, "cell": net.cell, "num_layers": net.num_layers, "hidden_size": net.hidden_size,
        "state": {"names": states, "shape": [net.num_layers, "batch", net.hidden_size], "initial": "zeros"},
        "seed": saved.cfg.samples.seed, "temperature": saved.cfg.samples.temperature,
        "generation": ("ids = [vocab.index(ch) for ch in seed]; run the graph on ids (1, T) from a zero state; "
                       "then repeat: take logits[0, -1] / temperature, softmax, draw an id, feed it (1, 1) with "
                       "the returned state"),
        "output_meaning": f"logits (B, T, V) over 'vocab' for the character after each input; "
                   f"{', '.join(n + '_out' for n in states)}: the state after the last input",
    }
    module = (LSTMStep if lstm else RecurrentStep)(net).eval()
    return ExportSpec("textgen", module, ["ids", *states], ["logits", *[f"{n}_out" for n in states]], axes, cases,
                      reference, f"{described}: {head.shape[1]} at once, {ids.shape[1] - head.shape[1]} one at a "
                      "time with the state carried, then a batch of 3", metadata, TOLERANCE)
