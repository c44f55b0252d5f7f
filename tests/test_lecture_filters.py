"""The filters figures on rendered pixels: one value scale per figure, one pixel scale (issue 10 item 19)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from neuralsight.layers.conv import kernel
from neuralsight.viz.filters import filter_figure, kernel_scale, pool_figure, value_ranges

ndimage = pytest.importorskip("scipy.ndimage")


def _grey(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float32)


def _panels(mask: np.ndarray, min_side: int = 30) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (top, left, height, width) of the large connected regions of ``mask``, left to right,
    top to bottom: the drawn panels (text and colour-bar slivers are far smaller)."""
    labels, _ = ndimage.label(mask)
    boxes = []
    for sl in ndimage.find_objects(labels):
        h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if h >= min_side and w >= min_side and 0.8 < h / w < 1.25:
            boxes.append((sl[0].start, sl[1].start, h, w))
    return sorted(boxes, key=lambda b: (b[0] // 40, b[1]))


def test_a_constant_image_pooled_by_min_and_max_is_drawn_the_same_grey(tmp_path):
    img = torch.full((28, 28), 0.3)
    png = pool_figure(img, ["avg", "max", "min"], tmp_path / "pool.png")
    pixels = _grey(png)
    boxes = _panels((pixels > 20) & (pixels < 235))
    assert len(boxes) == 4, boxes                          # input, avg, max, min
    greys = [float(np.median(pixels[t + 3:t + h - 3, c + 3:c + w - 3])) for t, c, h, w in boxes]
    assert max(greys) - min(greys) <= 1.0, greys           # one grey scale: the same value, the same grey
    assert 60 < greys[0] < 200                             # a flat range is shown mid-scale, not black or white


def test_min_pooling_is_drawn_darker_than_max_pooling(tmp_path):
    ramp = torch.linspace(0, 1, 28 * 28).reshape(28, 28)
    checker = (torch.arange(28)[:, None] + torch.arange(28)[None, :]) % 2 * 0.8 + ramp * 0.2
    pixels = _grey(pool_figure(checker, ["avg", "max", "min"], tmp_path / "pool.png"))
    boxes = _panels(pixels < 250)
    assert len(boxes) == 4, boxes
    avg, top, low = (float(pixels[t + 3:t + h - 3, c + 3:c + w - 3].mean()) for t, c, h, w in boxes[1:])
    assert low + 100 < avg < top - 100                     # min pooling dark, max pooling bright, avg between


def test_panels_share_one_pixel_scale(tmp_path):
    img = torch.zeros(28, 28)
    img[0, 0] = 1.0                                        # a value range of [0, 1]; everything else black
    png = filter_figure(img, [("box", kernel("box")), ("gaussian", kernel("gaussian"))], tmp_path / "f.png")
    boxes = _panels(_grey(png) < 40)
    sides = [w for _, _, _, w in boxes[:3]]                # input 28x28, box 26x26, Gaussian (7x7) 22x22
    assert len(sides) == 3, boxes
    assert sides[0] > sides[1] > sides[2]
    assert sides[1] / sides[0] == pytest.approx(26 / 28, abs=0.02)
    assert sides[2] / sides[0] == pytest.approx(22 / 28, abs=0.02)


def test_a_pooled_panel_is_half_the_input_panel(tmp_path):
    img = torch.zeros(28, 28)
    img[0, 0] = 1.0
    boxes = _panels(_grey(pool_figure(img, ["avg"], tmp_path / "p.png")) < 40, min_side=20)
    assert len(boxes) == 2 and boxes[1][3] / boxes[0][3] == pytest.approx(0.5, abs=0.03)


def test_edge_kernels_use_the_signed_scale_and_smoothing_the_grey_one():
    assert kernel_scale(kernel("sobel_x")) == kernel_scale(kernel("laplacian")) == "signed"
    assert kernel_scale(kernel("gaussian")) == kernel_scale(kernel("sharpen")) == "intensity"
    panels = [("input", torch.rand(5, 5) * 0.5 + 0.25, "intensity"), ("edge", torch.tensor([[-3.0, 1.0]]), "signed"),
              ("more", torch.tensor([[2.0]]), "signed")]
    ranges = value_ranges(panels)
    assert ranges["signed"] == (-3.0, 3.0)                 # symmetric about 0, over every signed panel
    lo, hi = ranges["intensity"]
    assert lo == pytest.approx(float(panels[0][1].min())) and hi == pytest.approx(float(panels[0][1].max()))
