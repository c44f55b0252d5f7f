"""`neuralsight app`: a Gradio UI over saved runs.

The handlers are plain functions over the same task API the CLI uses (``Task.predict`` and ``Task.generate`` on
a :class:`~neuralsight.tasks.base.SavedRun`), so the app shows exactly what the command line computes: the
rows ``predict`` returns as a table, the images it wrote, and every file it wrote offered for download. Each
click works in a fresh temporary folder; the previous click's folder is deleted. Install the extra with
``pip install -e '.[app]'``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


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
    if isinstance(value, (int, float)):
        split = f" ({head['split']} split)" if head.get("split") else ""
        lines.append(f"**{head.get('name')}**{split}: {value:.4f}")
    fit = s.get("fit") or {}
    if fit:
        unit = fit.get("item_unit", "items")
        lines.append(f"{fit.get('step')} steps in {fit.get('train_seconds', 0):.1f} s ({fit.get('stopped_by')}), "
                     f"{fit.get('items_per_second', 0):,.0f} {unit}/s")
    figures = [(str(p), p.stem.replace("_", " ")) for p in sorted((path / "figures").glob("*.png"))]
    return "\n\n".join(lines), figures


@dataclass
class Workspace:
    """The temporary folder of the last click (deleted when the next click starts or the app closes)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="neuralsight-app-")))
    current: Path | None = None

    def fresh(self) -> Path:
        self.clear()
        self.current = Path(tempfile.mkdtemp(dir=self.root))
        return self.current

    def clear(self) -> None:
        if self.current is not None:
            shutil.rmtree(self.current, ignore_errors=True)
            self.current = None

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _outputs(rows: list[dict]) -> list[Path]:
    files = []
    for r in rows:
        for value in (r.get("outputs") or {}).values():
            if Path(value).is_file():
                files.append(Path(value))
    return files


def _table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    from neuralsight.cli.core import format_value

    headers: list[str] = []
    for r in rows:
        headers += [k for k in r if k not in headers and k != "outputs"]
    return headers, [[format_value(r.get(h)) for h in headers] for r in rows]


def run_predict(run: str, upload: str | None, workspace: Workspace, **options):
    """Apply a run to an uploaded file; returns ``(message, table headers, table rows, images, files)``."""
    from neuralsight.tasks.base import SavedRun, parse_options

    if not run:
        return "Pick a run first.", [], [], [], []
    try:
        saved = SavedRun.open(run)
        inputs = [Path(upload)] if upload else []
        if not inputs and saved.task.name != "forecast":
            return "Upload a file to apply the model to.", [], [], [], []
        opts = parse_options(saved.task.PredictOptions,
                             {k: v for k, v in options.items() if k in _fields(saved.task.PredictOptions)},
                             "predict", saved.task.name)
        rows = saved.task.predict(saved, inputs, workspace.fresh(), opts)
    except UserError as err:
        return f"error: {err}", [], [], [], []
    headers, cells = _table(rows)
    files = _outputs(rows)
    images = [(str(f), f.stem) for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    errors = [r["error"] for r in rows if "error" in r]
    message = "; ".join(errors) if errors else f"{len(rows)} result(s)"
    return message, headers, cells, images, [str(f) for f in files]


def run_generate(run: str, seed: str, length: int, temperature: float, top_k: int) -> str:
    """Text from a textgen run (the same call as `neuralsight generate`)."""
    from neuralsight.tasks.base import SavedRun, parse_options

    if not run:
        return "Pick a run first."
    try:
        saved = SavedRun.open(run)
        if not hasattr(saved.task, "generate"):
            return f"a {saved.task.name} run does not generate text"
        opts = parse_options(saved.task.GenerateOptions, {"seed": seed or None, "length": int(length),
                             "temperature": float(temperature), "top_k": int(top_k)}, "generate", saved.task.name)
        return "".join(saved.task.generate(saved, opts))
    except UserError as err:
        return f"error: {err}"


def _fields(cls) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(cls)}


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
            files = gr.File(label="download the outputs", file_count="multiple", interactive=False,
                            elem_id="downloads")
        with gr.Tab("generate text"):
            with gr.Row():
                seed = gr.Textbox(label="seed text (empty: the run's own)", value="")
                length = gr.Slider(20, 2000, value=400, step=10, label="length (characters)")
                temperature = gr.Slider(0.1, 2.0, value=0.8, step=0.05, label="temperature")
                top_k = gr.Slider(0, 100, value=0, step=1, label="top-k (0: all)")
            gen = gr.Button("generate", variant="primary")
            text = gr.Textbox(label="generated text", lines=12, elem_id="text")

        def predict(run_value, file_value, tile_value, horizon_value):
            options = {"tile": int(tile_value) or None, "horizon": int(horizon_value) or None}
            msg, headers, cells, imgs, downloads = run_predict(run_value, file_value, workspace, **options)
            frame = {"headers": headers, "data": cells} if headers else None
            return msg, frame, imgs, downloads or None

        run.change(run_overview, inputs=run, outputs=[summary, figures])
        refresh.click(lambda: gr.Dropdown(choices=list_run_dirs(root)), outputs=run)
        go.click(predict, inputs=[run, upload, tile, horizon], outputs=[message, table, images, files])
        gen.click(run_generate, inputs=[run, seed, length, temperature, top_k], outputs=text)
        demo.load(run_overview, inputs=run, outputs=[summary, figures])
        demo.unload(workspace.close)
    demo.workspace = workspace
    return demo


def launch(root: Path, host: str = "127.0.0.1", port: int = 7860, share: bool = False, block: bool = True):
    """Serve the app; figures and outputs are served from ``root`` and the app's temporary folder."""
    demo = build(root)
    try:
        demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                    allowed_paths=[str(Path(root).resolve()), str(demo.workspace.root)])
    finally:
        if block:
            demo.workspace.close()
    return demo
