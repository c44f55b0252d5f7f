"""What the textgen task writes for people to read: the stage samples, the gate traces and the unfolding figure.

- :class:`StageSamples` keeps the seed continued at each stage of training: ``samples/stages.json`` (the list,
  so a resumed run continues it) and one ``samples/stage-<i>-step<step>.txt`` per sample; :func:`stage_titles`
  names and describes them for the report (untrained, short, longer, further training; step and loss).
- :func:`write_explanations` writes, through :mod:`neuralsight.viz.gates`, ``gates.html`` (each character
  coloured by each chosen unit's gates, Karpathy, Johnson and Fei-Fei 2015), ``gates.png`` (the same numbers as
  heatmaps) and ``unfold.png`` (one cell per character of the seed). The report embeds the HTML as a fragment.
"""

from __future__ import annotations

import json
from pathlib import Path

STAGE_NAMES = ("untrained", "short training", "longer training", "further training")


class StageSamples:
    """The samples of one run, in ``folder`` (the run's ``samples/``).

    Args:
        folder: where ``stages.json`` and the ``stage-*.txt`` files live; an existing list is continued.
        stages: training steps to sample at: the first evaluation at or after each one takes a sample.
    """

    def __init__(self, folder: Path, stages: list[int]):
        self.folder = Path(folder)
        path = self.folder / "stages.json"
        self.records: list[dict] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
        self.pending = sorted(s for s in set(stages) if all(r.get("stage_step") != s for r in self.records))

    def due(self, step: int) -> int | None:
        """The latest stage an evaluation at ``step`` reaches (taken from the pending ones), or None."""
        reached = [s for s in self.pending if step >= s]
        self.pending = [s for s in self.pending if s not in reached]
        return max(reached) if reached else None

    def best_label(self, step: int) -> str:
        """The label of the best checkpoint's sample: the last stage name once three stages came before it."""
        return f"{STAGE_NAMES[-1]} (best, step {step})" if len(self.records) >= 3 else f"best checkpoint (step {step})"

    def add(self, record: dict) -> dict:
        """Append ``record`` (``step``, ``seed``, ``text``, metrics...) and write both files; returns it with its
        ``file`` name (``stage-<i>-step<step>.txt``, holding the seed and the text)."""
        from neuralsight.io import atomic_write_json, atomic_write_text

        record = {**record, "file": f"stage-{len(self.records)}-step{record['step']:06d}.txt"}
        atomic_write_text(self.folder / record["file"], record["seed"] + record["text"] + "\n")
        self.records.append(record)
        atomic_write_json(self.folder / "stages.json", self.records)
        return record


def stage_labels(records: list[dict]) -> list[str]:
    """untrained / short / longer / further training (more stages keep the last name); a record's label wins."""
    return [r.get("label") or (STAGE_NAMES[0] if r.get("step") == 0 else STAGE_NAMES[min(i, len(STAGE_NAMES) - 1)])
            for i, r in enumerate(records)]


def stage_titles(records: list[dict]) -> list[tuple[str, str]]:
    """``(label, "step N · val loss X nats/char · Y bits/char")`` of each sample, for the report's cards."""
    def num(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    return [(label, f"step {r['step']} · val loss {num(r.get('val_loss'))} nats/char · {num(r.get('val_bpc'))} "
             "bits/char") for label, r in zip(stage_labels(records), records, strict=True)]


def write_explanations(model, vocab, passage: str, seed: str, figures: Path, out: Path, units: int,
                       unfold_steps: int) -> list[Path]:
    """Gate traces over ``passage`` and the unfolding figure over the first ``unfold_steps`` characters of ``seed``.

    Args:
        model: a CharRNN (any device, eval mode).
        vocab: the run's :class:`~neuralsight.data.text.Vocab`; ``passage`` and ``seed`` use only its characters.
        passage: text whose gate activations are traced (T characters give (T, H) traces).
        seed: text the unfolding figure unrolls.
        figures: folder of ``gates.png`` and ``unfold.png``.
        out: folder of ``gates.html``.
        units: how many units (those whose state varies most over the passage) are shown.
        unfold_steps: time steps drawn in the unfolding figure.

    Returns:
        ``[out/gates.html, figures/gates.png, figures/unfold.png]``.
    """
    from neuralsight.io import atomic_write_text
    from neuralsight.viz import gates

    traces = gates.record_traces(model, vocab, passage)
    chosen = gates.choose_units(traces, units)
    page = Path(out) / "gates.html"
    atomic_write_text(page, gates.trace_html(passage, traces, chosen))
    return [page, gates.trace_heatmap(passage, traces, chosen, Path(figures) / "gates.png"),
            gates.unfold_figure(model, vocab, seed[:unfold_steps], Path(figures) / "unfold.png")]
