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


def report_figures(html: str) -> list:
    """Every PNG embedded in a report, decoded (a figure that does not decode raises)."""
    import base64
    import io
    import re

    import numpy as np
    from PIL import Image

    out = []
    for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html):
        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            out.append(np.asarray(img.convert("L"), dtype=np.float32))
    return out


def report_ok(run_dir: Path, min_figures: int = 1, min_std: float = 2.0) -> bool:
    """report.html exists, embeds at least ``min_figures`` PNGs, and every one decodes and is not blank
    (its grey levels vary: a figure with content, not one flat colour)."""
    html = Path(run_dir) / "report.html"
    if not html.is_file():
        return False
    figures = report_figures(html.read_text())
    return len(figures) >= min_figures and all(f.size > 0 and float(f.std()) >= min_std for f in figures)
