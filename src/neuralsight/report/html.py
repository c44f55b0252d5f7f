"""Run directory -> one self-contained ``report.html`` (figures embedded as PNG data).

Each task contributes sections through ``report_sections(run_dir) -> list[Section]``; this module adds
the header (headline metric, hardware, time), training curves and the resolved config, and the demo's
combined page.
"""

from __future__ import annotations

import base64
import html
import json
import time
from dataclasses import dataclass
from pathlib import Path

from neuralsight.io import atomic_write_text

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:.2rem 0} h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #dde}
h3{font-size:1.05rem}
.card{background:#fff;border:1px solid #e3e6ec;border-radius:8px;padding:16px;margin:12px 0}
.kpi{display:inline-block;margin-right:28px} .kpi b{font-size:1.4rem;display:block}
table{border-collapse:collapse;font-size:.88rem;margin:8px 0} td,th{border:1px solid #dde;padding:3px 8px;text-align:right}
th{background:#eef1f6} td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto} figure{margin:10px 0} figcaption{font-size:.85rem;color:#556}
pre{background:#0f1420;color:#dfe6f3;padding:12px;border-radius:6px;overflow:auto;font-size:.8rem}
nav a{margin-right:14px} .muted{color:#667} .bad{color:#b00020} .good{color:#0a7a32}
"""


@dataclass
class Section:
    title: str
    html: str
    anchor: str = ""


def esc(text) -> str:
    return html.escape(str(text))


def image_data_uri(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def figure(path: Path, caption: str = "") -> str:
    """An embedded PNG with a caption; empty string when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return ""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(caption or path.stem)}" src="{image_data_uri(path)}">{cap}</figure>'


def fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "nan"
        if abs(value) >= 1000 or value == int(value):
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
        return f"{value:.4f}"
    return esc(value)


def table(rows: list, headers: list[str] | None = None, sortable: bool = False) -> str:
    """An HTML table from a list of dicts (headers from the first) or a list of lists."""
    if not rows:
        return '<p class="muted">(no rows)</p>'
    if isinstance(rows[0], dict):
        headers = headers or list(rows[0].keys())
        rows = [[r.get(h, "") for h in headers] for r in rows]
    attr = ' class="sortable"' if sortable else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers) if headers else ""
    body = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table{attr}>" + (f"<thead><tr>{head}</tr></thead>" if head else "") + f"<tbody>{body}</tbody></table>"


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


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{CSS}</style></head>"
            f"<body><main>{body}</main>{SORT_JS}</body></html>")


def read_summary(run_dir: Path) -> dict:
    path = Path(run_dir) / "summary.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return {}
    return {}


def _kpi(label: str, value: str) -> str:
    return f'<div class="kpi">{esc(label)}<b>{value}</b></div>'


def run_sections(run_dir: Path) -> list[Section]:
    """Overview (headline, hardware, time), the task's own sections, curves, eval table and config."""
    from neuralsight.engine.runs import read_metrics, read_run_task
    from neuralsight.errors import UserError
    from neuralsight.tasks import get_task
    from neuralsight.viz.figures import training_curves

    run_dir = Path(run_dir)
    task_name = read_run_task(run_dir)
    summary = read_summary(run_dir)
    sections: list[Section] = []

    kpis = []
    head = summary.get("headline") or {}
    if head:
        kpis.append(_kpi(str(head.get("name", "")), fmt(head.get("value"))))
    fit = summary.get("fit") or {}
    if fit:
        kpis.append(_kpi("training time", f"{fit.get('train_seconds', 0):.1f} s"))
        kpis.append(_kpi("steps", esc(fit.get("step", 0))))
        if fit.get("items_per_second"):
            kpis.append(_kpi("throughput", f"{fit['items_per_second']:,.0f} items/s"))
        kpis.append(_kpi("stopped by", esc(fit.get("stopped_by", ""))))
    if summary.get("wall_seconds") is not None:
        kpis.append(_kpi("wall time", f"{summary['wall_seconds']:.1f} s"))
    hw = summary.get("hardware") or {}
    hw_line = ", ".join(f"{k}: {v}" for k, v in hw.items())
    when = f"started {summary['started']} &middot; " if summary.get("started") else ""
    overview = (f'<div class="card">{"".join(kpis)}<p class="muted">task <b>{esc(task_name)}</b> &middot; '
                f'run <code>{esc(run_dir)}</code><br>hardware: {esc(hw_line) or "unknown"}<br>'
                f'precision: {esc(summary.get("precision", "?"))} &middot; {when}'
                f'finished {esc(summary.get("finished", "?"))}</p></div>')
    if summary.get("interrupted"):
        overview += ('<p class="bad">This run was interrupted; its figures show the last checkpoint. Continue it '
                     f"with <code>neuralsight train {esc(task_name)} --resume {esc(run_dir)}</code>.</p>")
    metrics = summary.get("metrics") or {}
    scalar = [[k, v] for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if scalar:
        overview += "<h3>Final metrics</h3>" + table(scalar, ["metric", "value"])
    sections.append(Section("Overview", overview, "overview"))

    try:
        task = get_task(task_name)
    except UserError as err:
        task = None
        sections.append(Section("Task", f'<p class="muted">no task sections: {esc(err)}</p>', "task"))
    contribute = getattr(task, "report_sections", None)
    if callable(contribute):
        sections.extend(contribute(run_dir))

    records = read_metrics(run_dir)
    curve = training_curves(records, run_dir / "figures" / "training_curves.png")
    if curve is not None:
        sections.append(Section("Training curves", figure(curve, "training loss and validation metrics by step"),
                                "curves"))
    evals = [r for r in records if r.get("kind") == "eval"]
    if evals:
        names = sorted({k for r in evals for k, v in r.items()
                        if k not in ("kind", "step", "epoch", "time") and isinstance(v, (int, float))})
        rows = [[r.get("step"), r.get("epoch"), *[r.get(k, "") for k in names]] for r in evals[-30:]]
        note = f'<p class="muted">last {len(rows)} of {len(evals)} evaluations</p>' if len(evals) > 30 else ""
        sections.append(Section("Evaluations", note + table(rows, ["step", "epoch", *names], sortable=True),
                                "evaluations"))
    cfg_text = (run_dir / "config.toml").read_text() if (run_dir / "config.toml").is_file() else ""
    sections.append(Section("Resolved configuration", f"<pre>{esc(cfg_text)}</pre>", "config"))
    return sections


def render_sections(sections: list[Section], level: int = 2, prefix: str = "") -> str:
    out = []
    for i, s in enumerate(sections):
        anchor = prefix + (s.anchor or f"s{i}")
        out.append(f'<section id="{esc(anchor)}"><h{level}>{esc(s.title)}</h{level}>{s.html}</section>')
    return "\n".join(out)


def write_report(run_dir: Path) -> Path:
    from neuralsight.engine.runs import read_run_task

    run_dir = Path(run_dir)
    task_name = read_run_task(run_dir)
    sections = run_sections(run_dir)
    nav = "<nav>" + "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections if s.anchor) + "</nav>"
    body = f"<h1>neuralsight · {esc(task_name)} · {esc(run_dir.name)}</h1>{nav}" + render_sections(sections)
    path = run_dir / "report.html"
    atomic_write_text(path, page(f"neuralsight {task_name} {run_dir.name}", body))
    return path


def write_combined(demo_dir: Path, entries: list[dict]) -> Path:
    """The demo's one report: a table linking each task's section (its run's sections inline), and the
    tasks that were skipped or failed with the reason."""
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
        rows.append(f"<tr><td><a href=\"#{esc(e['task'])}\">{esc(e['task'])}</a></td>"
                    f"<td class=\"{cls}\">{esc(e['status'])}</td><td>{esc(e.get('headline', ''))}</td>"
                    f"<td>{fmt(float(e.get('seconds', 0.0)))} s</td><td>{link}</td></tr>")
    parts.append("<div class=\"card\"><table><thead><tr><th>task</th><th>status</th><th>headline</th>"
                 "<th>time</th><th>report</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    if not entries:
        parts.append('<p class="muted">No task modules are part of this version of neuralsight, so nothing ran.</p>')
    for e in entries:
        parts.append(f'<h2 id="{esc(e["task"])}">{esc(e["task"])}</h2>')
        if e.get("run"):
            secs = [s for s in run_sections(Path(e["run"])) if s.anchor != "config"]
            parts.append(render_sections(secs, level=3, prefix=f"{e['task']}-"))
        else:
            parts.append(f'<p class="bad">{esc(e["status"])}: {esc(e.get("reason", ""))}</p>')
    path = demo_dir / "report.html"
    atomic_write_text(path, page(f"neuralsight demo {demo_dir.name}", "\n".join(parts)))
    return path
