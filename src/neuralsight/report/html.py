"""Sections -> one self-contained ``report.html`` (figures embedded as PNG data).

The caller hands over the task's sections (:mod:`neuralsight.report.sections`); this module adds what every
run has, read from the run directory: the overview (headline, validation and test metrics, hardware, time),
training curves, the evaluation log and the resolved config, and, when the run holds them, the augmented training
batch (``figures/train_batch.png``) and what ``neuralsight explain`` wrote into ``RUN/explain``. It imports no task.
"""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

from neuralsight.io import atomic_write_text
from neuralsight.report.sections import (
    Card,
    Cards,
    Figure,
    Fragment,
    Section,
    Table,
    Text,
    explain_section,
    training_batch_section,
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:.2rem 0} h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #dde}
h3{font-size:1.05rem}
.card{background:#fff;border:1px solid #e3e6ec;border-radius:8px;padding:16px;margin:12px 0}
.cards{display:flex;gap:6px;align-items:stretch;flex-wrap:wrap}
.cards .card{flex:1 1 0;min-width:220px;margin:4px} .cards pre{white-space:pre-wrap;font-size:.72rem}
.kpi{display:inline-block;margin-right:28px} .kpi b{font-size:1.4rem;display:block}
table{border-collapse:collapse;font-size:.88rem;margin:8px 0} td,th{border:1px solid #dde;padding:3px 8px;text-align:right}
th{background:#eef1f6} td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto} figure{margin:10px 0} figcaption{font-size:.85rem;color:#556}
pre{background:#0f1420;color:#dfe6f3;padding:12px;border-radius:6px;overflow:auto;font-size:.8rem}
.cards pre{background:#fff;color:#1d2330;padding:0}
nav a{margin-right:14px} .muted{color:#667} .bad{color:#b00020} .good{color:#0a7a32}
"""

SORT_JS = """
<script>
document.querySelectorAll('table.sortable th').forEach((th, i) => {
  th.style.cursor = 'pointer';
  th.addEventListener('click', () => {
    const tb = th.closest('table').tBodies[0];
    const rows = Array.from(tb.rows);
    const dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    rows.sort((a, b) => { const x = a.cells[i].innerText, y = b.cells[i].innerText;
      const nx = parseFloat(x.replace(/,/g, '')), ny = parseFloat(y.replace(/,/g, ''));
      return (isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny) * dir; });
    rows.forEach(r => tb.appendChild(r));
  });
});
</script>
"""


def esc(text) -> str:
    return html.escape(str(text))


def fmt(value) -> str:
    """Numbers as people read them: 4 decimals below 1000, thousands separators above, integers as integers."""
    if isinstance(value, bool):
        return esc(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if abs(value) >= 1000 or value == int(value):
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
        return f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return esc(value)


def _figure(fig: Figure) -> str:
    path = Path(fig.path)
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    cap = f"<figcaption>{esc(fig.caption)}</figcaption>" if fig.caption else ""
    return f'<figure><img alt="{esc(fig.caption or path.stem)}" src="data:image/png;base64,{data}">{cap}</figure>'


def _table(t: Table) -> str:
    rows, headers = t.rows, t.headers
    title = f"<h3>{esc(t.title)}</h3>" if t.title else ""
    if not rows:
        return title + '<p class="muted">(no rows)</p>'
    if isinstance(rows[0], dict):
        headers = headers or list(rows[0].keys())
        rows = [[r.get(h, "") for h in headers] for r in rows]
    attr = ' class="sortable"' if t.sortable else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers) if headers else ""
    body = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (title + f"<table{attr}>" + (f"<thead><tr>{head}</tr></thead>" if head else "")
            + f"<tbody>{body}</tbody></table>")


def _card(c: Card) -> str:
    sub = f'<br><span class="muted">{esc(c.subtitle)}</span>' if c.subtitle else ""
    lead = f"<b>{esc(c.lead)}</b>" if c.lead else ""
    return f'<div class="card"><b>{esc(c.title)}</b>{sub}<pre>{lead}{esc(c.text)}</pre></div>'


class _Raw(Text):
    """Markup this module builds itself (the overview card); never accepted from a task."""


class _Pre(Text):
    """Preformatted text (the config)."""


def render_block(block) -> str:
    if isinstance(block, _Raw):
        return block.text
    if isinstance(block, _Pre):
        return f"<pre>{esc(block.text)}</pre>"
    if isinstance(block, Text):
        return f'<p class="muted">{esc(block.text)}</p>' if block.muted else f"<p>{esc(block.text)}</p>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, Cards):
        return '<div class="cards">' + "".join(_card(c) for c in block.cards) + "</div>"
    if isinstance(block, Fragment):
        path = Path(block.path)
        return path.read_text(encoding="utf-8") if path.is_file() else ""
    raise TypeError(f"not a report block: {type(block).__name__}")


def render_sections(sections: list[Section], level: int = 2, prefix: str = "") -> str:
    out = []
    for i, s in enumerate(sections):
        anchor = prefix + (s.anchor or f"s{i}")
        body = "".join(render_block(b) for b in s.blocks)
        out.append(f'<section id="{esc(anchor)}"><h{level}>{esc(s.title)}</h{level}>{body}</section>')
    return "\n".join(out)


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{CSS}</style></head>"
            f"<body><main>{body}</main>{SORT_JS}</body></html>")


# ---- what every run has ----------------------------------------------------------------------------------

def _kpi(label: str, value: str) -> str:
    return f'<div class="kpi">{esc(label)}<b>{esc(value)}</b></div>'


def _scalar_rows(metrics: dict, units: dict | None = None) -> list[list]:
    return [[with_unit(k, units), v] for k, v in metrics.items() if isinstance(v, (int, float))
            and not isinstance(v, bool)]


def with_unit(name: str, units: dict | None) -> str:
    """``val_loss (nats/char)``: a metric's name with the unit the task declares for it (``fit.metric_units``)."""
    unit = (units or {}).get(name)
    return f"{name} ({unit})" if unit else name


SPLIT_NAMES = {"val": "validation split", "test": "test split", "train": "training split"}


def overview(run_dir: Path, task_name: str, summary: dict) -> Section:
    """Headline, fit statistics, hardware, and the final metrics by split."""
    kpis = []
    head = summary.get("headline") or {}
    fit = summary.get("fit") or {}
    units = fit.get("metric_units") or {}
    if head:
        split = f", {SPLIT_NAMES.get(head['split'], head['split'])}" if head.get("split") else ""
        kpis.append(_kpi(f"{with_unit(head.get('name', ''), units)}{split}", fmt(head.get("value"))))
    if fit:
        kpis.append(_kpi("training time", f"{fit.get('train_seconds', 0):.1f} s"))
        kpis.append(_kpi("steps", str(fit.get("step", 0))))
        if fit.get("items_per_second"):
            kpis.append(_kpi("throughput", f"{fit['items_per_second']:,.0f} {fit.get('item_unit', 'items')}/s"))
        kpis.append(_kpi("stopped by", str(fit.get("stopped_by", ""))))
    if summary.get("wall_seconds") is not None:
        kpis.append(_kpi("wall time", f"{summary['wall_seconds']:.1f} s"))
    hw = summary.get("hardware") or {}
    hw_line = ", ".join(f"{k}: {v}" for k, v in hw.items())
    when = f"started {esc(summary['started'])} &middot; " if summary.get("started") else ""
    card = (f'<div class="card">{"".join(kpis)}<p class="muted">task <b>{esc(task_name)}</b> &middot; '
            f'run <code>{esc(run_dir)}</code><br>hardware: {esc(hw_line) or "unknown"}<br>'
            f'precision: {esc(summary.get("precision", "?"))} &middot; {when}'
            f'finished {esc(summary.get("finished", "?"))}</p></div>')
    blocks: list = [_Raw(card)]
    if summary.get("interrupted"):
        blocks.append(Text(f"This run was interrupted; its figures show the last checkpoint. Continue it with "
                           f"`neuralsight train {task_name} --resume {run_dir}`."))
    metrics = summary.get("metrics") or {}
    if isinstance(metrics.get("val"), dict) or isinstance(metrics.get("test"), dict):
        for split, note in (("val", "validation split: chooses the checkpoint"),
                            ("test", "test split: evaluated once, by the best checkpoint")):
            rows = _scalar_rows(metrics.get(split) or {}, units)
            if rows:
                blocks.append(Table(rows, ["metric", "value"], title=f"Final metrics, {note}"))
    else:  # written before summaries kept the splits apart
        rows = _scalar_rows(metrics, units)
        if rows:
            blocks.append(Table(rows, ["metric", "value"], title="Final metrics (split not recorded by this run)"))
    return Section("Overview", blocks, "overview")


def common_sections(run_dir: Path) -> list[Section]:
    """Training curves, the evaluation log and the resolved config of a run directory."""
    from neuralsight.engine.runs import read_metrics, read_summary
    from neuralsight.viz.figures import training_curves

    run_dir = Path(run_dir)
    out = []
    records = read_metrics(run_dir)
    units = (read_summary(run_dir).get("fit") or {}).get("metric_units") or {}
    curve = training_curves(records, run_dir / "figures" / "training_curves.png")
    if curve is not None:
        caption = "training loss (blue) and validation metrics by step"
        if units:
            caption += "; units: " + ", ".join(f"{k} in {v}" for k, v in units.items())
        out.append(Section("Training curves", [Figure(curve, caption)], "curves"))
    evals = [r for r in records if r.get("kind") == "eval"]
    if evals:
        names = sorted({k for r in evals for k, v in r.items()
                        if k not in ("kind", "step", "epoch", "time") and isinstance(v, (int, float))})
        rows = [[r.get("step"), r.get("epoch"), *[r.get(k, "") for k in names]] for r in evals[-30:]]
        blocks: list = [Text(f"last {len(rows)} of {len(evals)} evaluations", muted=True)] if len(evals) > 30 else []
        blocks.append(Table(rows, ["step", "epoch", *[with_unit(k, units) for k in names]], sortable=True))
        out.append(Section("Evaluations (validation split)", blocks, "evaluations"))
    cfg = run_dir / "config.toml"
    if cfg.is_file():
        out.append(Section("Resolved configuration", [_Pre(cfg.read_text(encoding="utf-8"))], "config"))
    return out


def run_sections(run_dir: Path, task_sections: list[Section]) -> list[Section]:
    from neuralsight.engine.runs import read_run_task, read_summary

    run_dir = Path(run_dir)
    head = overview(run_dir, read_run_task(run_dir), read_summary(run_dir))
    extra = [s for s in (training_batch_section(run_dir), explain_section(run_dir)) if s is not None]
    return [head, *[s for s in task_sections if not s.empty], *extra, *common_sections(run_dir)]


def write_report(run_dir: Path, task_sections: list[Section]) -> Path:
    """Write ``run_dir/report.html`` from the task's sections and what the run directory holds."""
    from neuralsight.engine.runs import read_run_task

    run_dir = Path(run_dir)
    task_name = read_run_task(run_dir)
    sections = run_sections(run_dir, task_sections)
    nav = "<nav>" + "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections if s.anchor) + "</nav>"
    body = f"<h1>neuralsight · {esc(task_name)} · {esc(run_dir.name)}</h1>{nav}" + render_sections(sections)
    path = run_dir / "report.html"
    atomic_write_text(path, page(f"neuralsight {task_name} {run_dir.name}", body))
    return path


def write_combined(demo_dir: Path, entries: list[dict], extra: list[Section] = ()) -> Path:
    """The demo's one report: a table of the tasks (status, headline, time, link to the run's report), each
    ok task's sections inline (``entry["sections"]``: the task's own), skipped or failed ones with the reason,
    and ``extra`` sections at the end (the lecture figures)."""
    demo_dir = Path(demo_dir)
    total = sum(e.get("seconds", 0.0) for e in entries)
    parts = [f"<h1>neuralsight demo · {esc(demo_dir.name)}</h1>",
             f'<p class="muted">written {esc(time.strftime("%Y-%m-%d %H:%M:%S"))} &middot; '
             f"{len(entries)} tasks in {total:.0f} s</p>"]
    rows = []
    for e in entries:
        link = ""
        if e.get("run"):
            rel = Path(e["run"]).resolve().relative_to(demo_dir.resolve())
            link = f'<a href="{esc(rel.as_posix())}/report.html">run report</a>'
        cls = {"ok": "good", "skipped": "muted", "failed": "bad"}.get(e["status"], "")
        rows.append(f"<tr><td><a href=\"#{esc(e['key'])}\">{esc(e['label'])}</a></td>"
                    f"<td class=\"{cls}\">{esc(e['status'])}</td><td>{esc(e.get('headline', ''))}</td>"
                    f"<td>{fmt(float(e.get('seconds', 0.0)))} s</td><td>{link}</td></tr>")
    parts.append("<div class=\"card\"><table><thead><tr><th>run</th><th>status</th><th>headline</th>"
                 "<th>time</th><th>report</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    for e in entries:
        parts.append(f'<h2 id="{esc(e["key"])}">{esc(e["label"])}</h2>')
        if e.get("run"):
            secs = [s for s in run_sections(Path(e["run"]), e.get("sections") or []) if s.anchor != "config"]
            parts.append(render_sections(secs, level=3, prefix=f"{e['key']}-"))
        else:
            parts.append(f'<p class="bad">{esc(e["status"])}: {esc(e.get("reason", ""))}</p>')
    if extra:
        parts.append(render_sections(list(extra), level=2, prefix="extra-"))
    path = demo_dir / "report.html"
    atomic_write_text(path, page(f"neuralsight demo {demo_dir.name}", "\n".join(parts)))
    return path
