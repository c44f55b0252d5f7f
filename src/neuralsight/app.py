"""`neuralsight app`: a Gradio UI over saved runs.

The handlers are plain functions over the same task API the CLI uses (``Task.predict`` and ``Task.generate`` on
a :class:`~neuralsight.tasks.base.SavedRun`), so the app shows exactly what the command line computes: the
rows ``predict`` returns as a table, every image it wrote (masks, overlays, forecast plots, volume slices), every
CSV it wrote as a second table, and every file offered for download, with the result table as ``results.csv``.
Each click works in a fresh temporary folder of its browser session, deleted by the session's next click or
when its tab closes; gradio's own copies of uploads and outputs live in the same temporary root, removed when
the server stops. Install the extra with ``pip install -e '.[app]'``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
TABLE_SUFFIXES = (".csv",)
MAX_TABLE_ROWS = 500  # a CSV output shown in the page (the download has all of it)


def list_run_dirs(root: Path) -> list[str]:
    from neuralsight.engine.runs import list_runs

    return [str(p) for p in list_runs(root) if (p / "checkpoints" / "best.json").is_file()]


def run_overview(run: str) -> tuple[str, list[tuple[str, str]]]:
    """Markdown summary of a run and its figures as ``(path, caption)`` pairs."""
    from neuralsight.engine.runs import read_summary

    if not run:
        return "Pick a run.", []
    path = Path(run)
    s = read_summary(path)
    head = s.get("headline") or {}
    lines = [f"### {s.get('task', path.parent.name)} · `{path.name}`"]
    value = head.get("value")
    fit = s.get("fit") or {}
    if isinstance(value, (int, float)):
        split = f" ({head['split']} split)" if head.get("split") else ""
        unit = (fit.get("metric_units") or {}).get(head.get("name"))
        lines.append(f"**{head.get('name')}**{split}: {value:.4f}" + (f" {unit}" if unit else ""))
    if fit:
        unit = fit.get("item_unit", "items")
        lines.append(f"{fit.get('step')} steps in {fit.get('train_seconds', 0):.1f} s ({fit.get('stopped_by')}), "
                     f"{fit.get('items_per_second', 0):,.0f} {unit}/s")
    figures = [(str(p), p.stem.replace("_", " ")) for p in sorted((path / "figures").glob("*.png"))]
    return "\n\n".join(lines), figures


def _temporary_root() -> Path:
    # Inside GRADIO_TEMP_DIR when the user set one (they chose the disk), else the system's temporary folder.
    parent = os.environ.get("GRADIO_TEMP_DIR") or None
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="neuralsight-app-", dir=parent))


@dataclass
class Workspace:
    """The app's temporary folders: one per click, kept per browser session until its next click or until its
    tab closes; all of them (and gradio's cache, which :func:`launch` puts under ``root``) go with :meth:`close`.
    """

    root: Path = field(default_factory=_temporary_root)
    current: dict[str, Path] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fresh(self, session: str = "") -> Path:
        """A new empty folder for ``session``'s click; its previous click's folder is deleted."""
        self.clear(session)
        self.root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="click-", dir=self.root))
        with self._lock:
            self.current[session] = folder
        return folder

    def clear(self, session: str = "") -> None:
        with self._lock:
            folder = self.current.pop(session, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self.current.clear()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Prediction:
    """What one click of "run the model" shows."""

    message: str
    headers: list[str] = field(default_factory=list)       # the rows predict returned, as a table
    rows: list[list[str]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)   # (path, caption) of every image output
    table_name: str = ""                                    # the first CSV output, read back as a table
    table_headers: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)          # every output, and results.csv, for download


def _outputs(rows: list[dict]) -> list[Path]:
    files: list[Path] = []
    for r in rows:
        for value in (r.get("outputs") or {}).values():
            if Path(value).is_file() and Path(value) not in files:
                files.append(Path(value))
    return files


def _table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    from neuralsight.cli.core import format_value

    headers: list[str] = []
    for r in rows:
        headers += [k for k in r if k not in headers and k != "outputs"]
    return headers, [[format_value(r.get(h)) for h in headers] for r in rows]


def _write_csv(path: Path, headers: list[str], rows: list[list[str]]) -> Path:
    import csv
    import io

    from neuralsight.io import atomic_write_text

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headers)
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return path


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        data = list(csv.reader(f))
    return (data[0], data[1:MAX_TABLE_ROWS + 1]) if data else ([], [])


def run_predict(run: str, upload: str | None, workspace: Workspace, session: str = "", **options) -> Prediction:
    """Apply a run to an uploaded file (a task that needs no file, like forecast, may run without one)."""
    from neuralsight.tasks.base import SavedRun, parse_options

    if not run:
        return Prediction("Pick a run first.")
    inputs = [Path(upload)] if upload else []
    try:
        saved = SavedRun.open(run)
        opts = parse_options(saved.task.PredictOptions,
                             {k: v for k, v in options.items() if k in _fields(saved.task.PredictOptions)},
                             "predict", saved.task.name)
        out = workspace.fresh(session)
        rows = saved.task.predict(saved, inputs, out, opts)
    except UserError as err:
        if not inputs:
            return Prediction(f"Upload a file to apply the model to ({err.message}).")
        return Prediction(f"error: {err}")
    headers, cells = _table(rows)
    files = _outputs(rows)
    result = Prediction("; ".join(r["error"] for r in rows if "error" in r) or f"{len(rows)} result(s)",
                        headers, cells, [(str(f), f.name) for f in files if f.suffix.lower() in IMAGE_SUFFIXES])
    tables = [f for f in files if f.suffix.lower() in TABLE_SUFFIXES]
    if tables:
        result.table_name = tables[0].name
        result.table_headers, result.table_rows = _read_csv(tables[0])
    if headers:
        files.insert(0, _write_csv(out / "results.csv", headers, cells))
    result.files = [str(f) for f in files]
    return result


def run_generate(run: str, seed: str, length: int, temperature: float, top_k: int,
                 rng_seed: float | None = None) -> str:
    """Text from a textgen run (the same call as `neuralsight generate`): the seed, then ``length`` characters."""
    from neuralsight.tasks.base import SavedRun, parse_options

    if not run:
        return "Pick a run first."
    try:
        saved = SavedRun.open(run)
        if not hasattr(saved.task, "generate"):
            return f"a {saved.task.name} run does not generate text"
        values = {"seed": seed or None, "length": int(length), "temperature": float(temperature),
                  "top_k": int(top_k), "rng_seed": None if rng_seed in (None, "") else int(rng_seed)}
        opts = parse_options(saved.task.GenerateOptions, values, "generate", saved.task.name)
        return "".join(saved.task.generate(saved, opts))
    except UserError as err:
        return f"error: {err}"


def _fields(cls) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(cls)}


def _frame(headers: list[str], rows: list[list[str]]):
    import pandas as pd  # a gradio dependency

    return pd.DataFrame(rows, columns=headers) if headers else None


def build(root: Path = Path("runs"), workspace: Workspace | None = None):
    try:
        import gradio as gr
    except ImportError:
        raise UserError("the app needs gradio", "pip install -e '.[app]' (or pip install gradio)") from None

    workspace = workspace or Workspace()
    runs = list_run_dirs(root)
    with gr.Blocks(title="neuralsight") as demo:
        gr.Markdown("# neuralsight\nSaved runs: look at what each model learned and apply it to your own data.")
        with gr.Row():
            run = gr.Dropdown(choices=runs, value=runs[0] if runs else None, label=f"run (from {root}/)",
                              elem_id="run")
            refresh = gr.Button("refresh", scale=0)
        summary = gr.Markdown(elem_id="summary")
        figures = gr.Gallery(label="figures", columns=2, height="auto", object_fit="contain", elem_id="figures")
        with gr.Tab("apply to a file"):
            with gr.Row():
                upload = gr.File(label="image / volume / CSV to apply the model to", type="filepath",
                                 elem_id="upload")
                with gr.Column():
                    tile = gr.Number(label="tile size (segment runs; 0: whole image)", value=0, precision=0)
                    horizon = gr.Number(label="horizon (forecast runs; 0: the run's)", value=0, precision=0)
            go = gr.Button("run the model", variant="primary", elem_id="go")
            message = gr.Markdown(elem_id="message")
            table = gr.Dataframe(label="results", interactive=False, wrap=True, elem_id="results")
            images = gr.Gallery(label="output images", columns=2, height="auto", object_fit="contain",
                                elem_id="outputs")
            output_table = gr.Dataframe(label="table output (CSV)", interactive=False, wrap=True, visible=False,
                                        elem_id="output-table")
            files = gr.File(label="download the outputs", file_count="multiple", interactive=False,
                            elem_id="downloads")
        with gr.Tab("generate text"):
            with gr.Row():
                seed = gr.Textbox(label="seed text (empty: the run's own)", value="", elem_id="seed")
                length = gr.Slider(20, 2000, value=400, step=10, label="length (characters)", elem_id="length")
                temperature = gr.Slider(0.1, 2.0, value=0.8, step=0.05, label="temperature",
                                        elem_id="temperature")
                top_k = gr.Slider(0, 100, value=0, step=1, label="top-k (0: all)")
                rng_seed = gr.Number(label="sampling seed (empty: fresh)", value=None, precision=0)
            gen = gr.Button("generate", variant="primary", elem_id="generate")
            text = gr.Textbox(label="generated text", lines=12, elem_id="text")

        def predict(run_value, file_value, tile_value, horizon_value, request):
            options = {"tile": int(tile_value or 0) or None, "horizon": int(horizon_value or 0) or None}
            r = run_predict(run_value, file_value, workspace, _session(request), **options)
            label = f"table output: {r.table_name}" if r.table_name else "table output (CSV)"
            message = f"{r.message} · run `{Path(run_value).name}`" if run_value else r.message
            return (message, _frame(r.headers, r.rows), r.images,
                    gr.Dataframe(value=_frame(r.table_headers, r.table_rows), label=label, visible=bool(r.table_name)),
                    r.files or None)

        def session_closed(request):
            workspace.clear(_session(request))

        # gradio hands the browser session to a parameter annotated gr.Request; the annotation must be the class
        # itself (this module's postponed annotations are strings that gradio cannot resolve to it).
        for handler in (predict, session_closed):
            handler.__annotations__ = {"request": gr.Request}

        run.change(run_overview, inputs=run, outputs=[summary, figures])
        refresh.click(lambda: gr.Dropdown(choices=list_run_dirs(root)), outputs=run)
        go.click(predict, inputs=[run, upload, tile, horizon],
                 outputs=[message, table, images, output_table, files])
        gen.click(run_generate, inputs=[run, seed, length, temperature, top_k, rng_seed], outputs=text)
        demo.load(run_overview, inputs=run, outputs=[summary, figures])
        demo.unload(session_closed)
    demo.workspace = workspace
    return demo


def _session(request) -> str:
    return str(getattr(request, "session_hash", "") or "")


def launch(root: Path, host: str = "127.0.0.1", port: int = 7860, share: bool = False, block: bool = True):
    """Serve the app over the runs under ``root`` (any folder: its figures are allowed to be served).

    With ``block=False`` the server runs in a thread and the app is returned; :func:`shutdown` stops it.
    """
    workspace = Workspace()
    previous = os.environ.get("GRADIO_TEMP_DIR")
    # gradio copies every upload and every file it serves into its cache: keep that cache in the workspace,
    # so stopping the app leaves no temporary folder behind.
    os.environ["GRADIO_TEMP_DIR"] = str(workspace.root / "gradio")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a lecture tool does not phone home
    demo = build(root, workspace)
    demo.previous_temp_dir = previous
    try:
        demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                    allowed_paths=[str(Path(root).resolve()), str(workspace.root)])
    except BaseException:
        shutdown(demo)
        raise
    if block:
        shutdown(demo)
    return demo


def shutdown(demo) -> None:
    """Stop a launched app and remove every temporary file it made."""
    demo.close(verbose=False)
    demo.workspace.close()
    previous = getattr(demo, "previous_temp_dir", None)
    if previous is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = previous
