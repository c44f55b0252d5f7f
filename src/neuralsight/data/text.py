"""Plain text for character models: read any UTF-8 file or a catalog corpus, build the vocabulary, split.

- ``read_text(path)`` reads a UTF-8 file, refuses empty or binary data with a one-line error, turns CRLF
  into LF and strips a Project Gutenberg header/footer when present.
- ``corpus_path(dataset, data_dir, text_file)`` is ``--text FILE`` when given, else the catalog corpus's
  main file (``romeo-juliet``, ``tinyshakespeare``: any entry whose task is ``textgen``).
- :class:`Vocab` maps characters to ids; it is a plain string so it is stored in the checkpoint's JSON
  (never pickled) and a saved run rebuilds it exactly.
- ``split_ids(ids, 0.9)`` is the contiguous 90/10 train/validation split of nanoGPT's
  ``shakespeare_char/prepare.py``: the first 90% of the characters train, the last 10% validate.
- ``seed_from_text(text)`` is a sampling seed the text itself supports; ``choose_seed`` takes it when the
  configured seed holds characters the text lacks.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from neuralsight.data.catalog import CATALOG, locate_file, names_for
from neuralsight.errors import DataError

_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.I | re.M)
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.I | re.M)


def strip_gutenberg(text: str) -> str:
    """The book between Project Gutenberg's ``*** START OF ...`` and ``*** END OF ...`` lines, if present."""
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end():]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[:end.start()]
    if start or end:
        text = text.strip("\n\r ") + "\n"
    return text


def decode_text(data: bytes, source: str = "text") -> str:
    """UTF-8 bytes -> str with LF line ends; DataError for empty or binary data."""
    if not data.strip():
        raise DataError(f"{source} is empty", "pass a UTF-8 text file with some text in it")
    if b"\x00" in data[:65536]:
        raise DataError(f"{source} looks binary (it contains NUL bytes)", "pass a plain UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{source} is not UTF-8 text (bad byte at offset {err.start})",
                        "convert it, e.g. `iconv -f latin1 -t utf-8 FILE > out.txt`") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\n\t\f\v")
    if controls > 0.01 * min(len(text), 65536):
        raise DataError(f"{source} looks binary ({controls} control characters)", "pass a plain UTF-8 text file")
    return text


def read_text(path: Path | str) -> str:
    """Read a UTF-8 text file, strip a Gutenberg header/footer; DataError with the fix on any problem."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"text file {path} does not exist", "pass --set data.text_file=PATH to a UTF-8 file")
    text = strip_gutenberg(decode_text(path.read_bytes(), f"text file {path}"))
    if not text.strip():
        raise DataError(f"text file {path} holds no text after stripping the Gutenberg header/footer")
    return text


def corpus_path(dataset: str, data_dir: Path | str | None = None, text_file: Path | str | None = None) -> Path:
    """The file to read: ``text_file`` when given, else the catalog corpus ``dataset``."""
    if text_file:
        return Path(text_file).expanduser()
    if dataset not in CATALOG or CATALOG[dataset].task != "textgen":
        raise DataError(f"unknown text corpus '{dataset}'",
                        f"use one of {', '.join(names_for('textgen'))}, or --set data.text_file=PATH for your own text")
    return locate_file(dataset, data_dir)


@dataclass(frozen=True)
class Vocab:
    """The characters a model knows, in id order (sorted, as char-rnn and nanoGPT do).

    Args:
        chars: every character once; ``chars[i]`` has id ``i``.
    """

    chars: str

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("vocabulary characters must be unique")

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def index(self) -> dict[str, int]:
        return {ch: i for i, ch in enumerate(self.chars)}

    def unknown(self, text: str) -> list[str]:
        """Characters of ``text`` that are not in the vocabulary (each once, in order of appearance)."""
        known = set(self.chars)
        out: list[str] = []
        for ch in text:
            if ch not in known and ch not in out:
                out.append(ch)
        return out

    def check(self, text: str, what: str = "seed") -> None:
        """DataError naming every character of ``text`` the model has never seen."""
        bad = self.unknown(text)
        if bad:
            shown = ", ".join(repr(ch) for ch in bad[:12]) + (" ..." if len(bad) > 12 else "")
            raise DataError(f"the {what} contains {len(bad)} character(s) the model has never seen: {shown}",
                            "use only characters from the training text (see the run's vocabulary)")

    def encode(self, text: str):
        """str -> LongTensor (N,) of ids; unknown characters raise DataError."""
        import torch

        self.check(text, "text")
        index = self.index
        return torch.tensor([index[ch] for ch in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> str:
        return self.chars

    @classmethod
    def from_json(cls, chars: str) -> Vocab:
        if not isinstance(chars, str) or not chars:
            raise DataError("the checkpoint's vocabulary is missing or not a string",
                            "this run was not saved by `neuralsight train textgen`")
        return cls(chars)


def encode_corpus(text: str, vocab: Vocab):
    """The whole text as a uint8/int16/long id tensor, built with numpy in one pass (fast for MBs)."""
    import numpy as np
    import torch

    lut = np.full(max(ord(c) for c in vocab.chars) + 1, -1, dtype=np.int64)
    for i, ch in enumerate(vocab.chars):
        lut[ord(ch)] = i
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    if codes.max() >= len(lut) or (lut[codes] < 0).any():
        vocab.check(text, "text")
    return torch.from_numpy(lut[codes])


def split_ids(ids, train_fraction: float = 0.9):
    """Contiguous split: the first ``train_fraction`` of the ids train, the rest validate (nanoGPT's)."""
    n = int(len(ids) * train_fraction)
    return ids[:n], ids[n:]


def seed_from_text(text: str, max_chars: int = 40) -> str:
    """A seed to continue that the text supports: its most frequent short line when one repeats (a speaker's name
    in a play, a refrain in a song), else the start of its first line with a letter, cut at a space."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if any(ch.isalpha() for ch in ln)] or [ln for ln in lines if ln]
    if not lines:
        return text.strip()[:max_chars] or text[:1]
    short = Counter(ln for ln in lines if len(ln) <= max_chars)
    if short and (best := short.most_common(1)[0])[1] >= 2:   # ties: the line that came first
        return best[0]
    first = lines[0]
    return first if len(first) <= max_chars else first[:max_chars].rsplit(" ", 1)[0] or first[:max_chars]


def choose_seed(configured: str, vocab: Vocab, from_text: str) -> tuple[str, str]:
    """``(seed, note)``: ``configured`` when ``vocab`` holds its characters, else ``from_text`` (a preset's "ROMEO:"
    must not stop training on a poem without capitals or colons) with a note that says why; empty: ``from_text``."""
    missing = vocab.unknown(configured)
    if not configured or not missing:
        return configured or from_text, ""
    shown = ", ".join(repr(ch) for ch in missing[:8]) + (" ..." if len(missing) > 8 else "")
    return from_text, (f"samples.seed {configured!r} holds characters the text lacks ({shown}); the samples continue "
                       f"{from_text!r}, from the text")


def check_lengths(train_len: int, val_len: int, seq_len: int, source: str) -> None:
    if train_len < seq_len + 2:
        raise DataError(f"{source} is too short: its training split has {train_len} characters but one "
                        f"training window needs {seq_len + 2}",
                        "use a longer text or a smaller data.seq_len")
    if val_len < 2:
        raise DataError(f"{source} is too short to leave a validation split ({val_len} characters)",
                        "use a longer text or a smaller data.train_fraction")
