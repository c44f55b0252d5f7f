"""What a report is made of, as data: sections of text, tables, figures and sample cards.

Tasks return these from ``Task.report(run_dir)``; :mod:`neuralsight.report.html` renders them. Nothing here
is HTML: text is plain and escaped by the renderer, figures are PNG paths embedded at render time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Text:
    """A paragraph of plain text (``muted`` for notes and captions)."""

    text: str
    muted: bool = False


@dataclass
class Table:
    """Rows as lists (with ``headers``) or dicts (headers from the first row's keys)."""

    rows: list
    headers: list[str] | None = None
    title: str = ""
    sortable: bool = False


@dataclass
class Figure:
    """A PNG written by viz/; a missing file renders as nothing (a figure that could not be drawn)."""

    path: Path
    caption: str = ""


@dataclass
class Card:
    """A titled block of preformatted text, e.g. a text sample at one stage of training."""

    title: str
    text: str
    subtitle: str = ""
    lead: str = ""          # shown in bold before ``text`` (the seed a sample continues)


@dataclass
class Cards:
    """Cards side by side."""

    cards: list[Card]


@dataclass
class Fragment:
    """An HTML fragment that viz/ wrote as an artefact of its own (e.g. text coloured by gate activation)."""

    path: Path


Block = Text | Table | Figure | Cards | Fragment


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)
    anchor: str = ""

    @property
    def empty(self) -> bool:
        return not any(not isinstance(b, Figure) or Path(b.path).is_file() for b in self.blocks)


def figure_section(title: str, anchor: str, *figures: tuple[Path, str]) -> Section | None:
    """A section of figures, or None when none of them exists."""
    blocks = [Figure(Path(p), c) for p, c in figures if Path(p).is_file()]
    return Section(title, blocks, anchor) if blocks else None


def explain_section(run_dir: Path) -> Section | None:
    """The figures ``neuralsight explain`` wrote into ``RUN/explain`` (captions from its ``captions.json``),
    or None when it holds none."""
    import json

    folder = Path(run_dir) / "explain"
    pngs = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if not pngs:
        return None
    path = folder / "captions.json"
    captions = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    blocks: list = [Text("Written by `neuralsight explain RUN`; rerun it (other inputs, --method, --set) and "
                         "`neuralsight report RUN` to refresh this section.", muted=True)]
    blocks += [Figure(p, captions.get(p.name, p.stem.replace("_", " "))) for p in pngs]
    return Section("Explanations: what the model looks at", blocks, "explain")


def training_batch_section(run_dir: Path) -> Section | None:
    """The augmented training batch the run saved at the end of training (``figures/train_batch.png``)."""
    return figure_section("A training batch after augmentation", "train-batch",
                          (Path(run_dir) / "figures" / "train_batch.png",
                           "what the network was trained on: one batch as the augmentation left it"))
