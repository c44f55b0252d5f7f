"""`neuralsight app`: a Gradio UI over saved runs.

The handlers are plain functions over the same task APIs the CLI uses (``predict``, ``generate_cli``), so
the app shows exactly what the command line computes; Gradio only lays them out. Install the extra with
``pip install -e '.[app]'``.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from neuralsight.errors import UserError


def list_run_dirs(root: Path) -> list[str]:
    from neuralsight.engine.runs import list_runs

    return [str(p) for p in list_runs(root) if (p / "checkpoints" / "best.safetensors").is_file()]


def run_overview(run: str) -> tuple[str, list[str]]:
    """Markdown summary of a run and its figures (paths)."""
    from neuralsight.report.html import read_summary

    if not run:
        return "Pick a run.", []
    path = Path(run)
    s = read_summary(path)
    head = s.get("headline") or {}
    lines = [f"### {s.get('task', path.parent.name)} · `{path.name}`"]
    if head:
        value = head.get("value")
        lines.append(f"**{head.get('name')}**: {value:.4f}" if isinstance(value, (int, float)) else "")
    fit = s.get("fit") or {}
    if fit:
        lines.append(f"{fit.get('step')} steps in {fit.get('train_seconds', 0):.1f} s ({fit.get('stopped_by')})")
    figures = sorted(str(p) for p in (path / "figures").glob("*.png"))
    return "\n\n".join(x for x in lines if x), figures


def run_predict(run: str, upload: str | None, text: str = "") -> tuple[str, list[str]]:
    """Apply a run to an uploaded file (or, for text and series runs, to the text / its own data).

    Returns (text output, list of image paths written).
    """
    from neuralsight.engine.runs import read_run_task
    from neuralsight.tasks import get_task

    if not run:
        return "Pick a run first.", []
    run_dir = Path(run)
    name = read_run_task(run_dir)
    task = get_task(name)
    out = Path(tempfile.mkdtemp(prefix="neuralsight-app-"))
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            if name == "textgen":
                task.generate_cli(run_dir, {"seed": text or "ROMEO:", "length": 400, "temperature": 0.8,
                                            "top_k": 0, "rng_seed": None})
            else:
                inputs = [Path(upload)] if upload else []
                if not inputs and name not in ("forecast",):
                    return "Upload a file to apply the model to.", []
                task.predict(run_dir, inputs, {"out": out, "json": False, "horizon": None, "tile": None,
                                               "top_k": 3})
    except UserError as err:
        return f"error: {err}", []
    images = sorted(str(p) for p in out.rglob("*.png"))
    return buf.getvalue().strip(), images


def build(root: Path = Path("runs")):
    try:
        import gradio as gr
    except ImportError:
        raise UserError("the app needs gradio", "pip install -e '.[app]' (or pip install gradio)") from None

    runs = list_run_dirs(root)
    with gr.Blocks(title="neuralsight") as demo:
        gr.Markdown("# neuralsight\nSaved runs: look at what each model learned and apply it to your own data.")
        with gr.Row():
            run = gr.Dropdown(choices=runs, value=runs[0] if runs else None, label=f"run (from {root}/)")
            refresh = gr.Button("refresh", scale=0)
        summary = gr.Markdown()
        figures = gr.Gallery(label="figures", columns=3, height="auto")
        with gr.Row():
            upload = gr.File(label="image / volume / CSV to apply the model to", type="filepath")
            text = gr.Textbox(label="seed text (textgen runs)", value="ROMEO:")
        go = gr.Button("run the model", variant="primary")
        output = gr.Textbox(label="output", lines=8)
        outputs = gr.Gallery(label="output images", columns=3, height="auto")

        run.change(run_overview, inputs=run, outputs=[summary, figures])
        refresh.click(lambda: gr.Dropdown(choices=list_run_dirs(root)), outputs=run)
        go.click(run_predict, inputs=[run, upload, text], outputs=[output, outputs])
        demo.load(run_overview, inputs=run, outputs=[summary, figures])
    return demo
