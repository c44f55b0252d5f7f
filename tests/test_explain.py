"""Attributions against cases with a known answer (issue 14 item 1), the models' intermediates, and the figures.

Hand-built tiny models whose output depends only on one region of the image / volume or one day of the window:
integrated gradients must put every bit of attribution there (a region with zero weight gets exactly 0), and
Grad-CAM must concentrate there too.
"""

from __future__ import annotations

import pytest
import torch
from helpers import png_nonblank
from torch import nn

from neuralsight.errors import UserError


class MaskedPixelNet(nn.Module):
    """Per-pixel logits ``(B, 2, *S)`` from a 1x1 convolution, multiplied by a fixed 0/1 spatial mask: every
    pixel outside the mask has zero weight. ``gradcam_layer`` is the (full-resolution) masked feature map."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        dims = mask.dim()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.features = conv(1, 2, 1)
        self.head = conv(2, 2, 1)
        with torch.no_grad():
            self.features.weight.fill_(1.0)
            self.features.bias.zero_()
            self.head.weight.copy_(torch.eye(2).view(2, 2, *([1] * dims)))
            self.head.bias.zero_()
        self.register_buffer("mask", mask.float())
        self.gate = nn.ReLU()

    @property
    def gradcam_layer(self):
        return self.gate

    def forward(self, x):
        return self.head(self.gate(self.features(x) * self.mask))


def _square(shape, lo, hi):
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[tuple(slice(lo, hi) for _ in shape)] = True
    return mask


@pytest.mark.parametrize("dims", [2, 3])
def test_integrated_gradients_stay_inside_the_only_region_that_matters(dims):
    from neuralsight.viz.explain_seg import mass_inside, region_attributions

    shape = (12,) * dims
    inside = _square(shape, 3, 8)
    model = MaskedPixelNet(inside).eval()
    x = torch.rand(1, 1, *shape) + 0.1
    everywhere = torch.ones(shape, dtype=torch.bool)           # the score reads every pixel's class-1 logit
    attr = region_attributions(model, x, 1, everywhere, "ig", steps=8)
    assert attr.shape == shape
    assert torch.all(attr[~inside] == 0)                       # zero weight: exactly zero attribution
    assert mass_inside(attr, inside) > 0.9 and attr[inside].min() > 0
    # completeness: the attributions (signed) add up to score(x) - score(baseline)
    from captum.attr import IntegratedGradients

    from neuralsight.viz.explain_seg import region_score

    score = region_score(model, 1, everywhere)
    signed = IntegratedGradients(score).attribute(x, baselines=torch.zeros_like(x), n_steps=8)
    assert torch.isclose(signed.sum(), score(x).sum() - score(torch.zeros_like(x)).sum(), rtol=1e-4)


def test_a_box_limits_the_attribution_to_the_box():
    from neuralsight.viz.explain_seg import mass_inside, region_attributions

    model = MaskedPixelNet(torch.ones(16, 16, dtype=torch.bool)).eval()  # a per-pixel model, no mixing
    box = torch.zeros(16, 16, dtype=torch.bool)
    box[2:6, 9:14] = True
    attr = region_attributions(model, torch.rand(1, 1, 16, 16) + 0.1, 1, box, "ig", steps=6)
    assert torch.all(attr[~box] == 0) and mass_inside(attr, box) == pytest.approx(1.0)


def test_gradcam_concentrates_where_the_features_fire():
    from neuralsight.viz.explain_seg import mass_inside, region_attributions

    inside = _square((16, 16), 4, 10)
    model = MaskedPixelNet(inside).eval()
    attr = region_attributions(model, torch.rand(1, 1, 16, 16) + 0.1, 1, torch.ones(16, 16, dtype=torch.bool),
                               "gradcam")
    assert attr.min() >= 0 and mass_inside(attr, inside) > 0.9


def test_unet_and_vnet_intermediates_go_down_then_up_and_end_in_the_logits():
    from neuralsight.models.unet import UNet
    from neuralsight.models.vnet import VNet

    unet = UNet(2, 3, 3, depth=2, base_channels=4).eval()
    x = torch.randn(1, 3, 30, 30)                               # padded to 32 inside
    stages = unet.forward_intermediates(x)
    assert [n for n, _ in stages] == ["encoder 0", "encoder 1", "bottleneck", "decoder 1", "decoder 0"]
    assert [t.shape[-1] for _, t in stages] == [32, 16, 8, 16, 32]
    with torch.no_grad():
        assert torch.allclose(unet.head(stages[-1][1])[..., :30, :30], unet(x), atol=1e-6)
    vnet = VNet(1, 2, base_channels=2, depth=2, kernel_size=3).eval()
    v = torch.randn(1, 1, 16, 16, 16)
    stages = vnet.forward_intermediates(v)
    assert [t.shape[-1] for _, t in stages] == [16, 8, 4, 8, 16]
    with torch.no_grad():
        assert torch.allclose(vnet.head(stages[-1][1]), vnet(v), atol=1e-6)
    assert unet.gradcam_layer is unet.downs[-1] and vnet.gradcam_layer is vnet.encoder[-1]


class OneDayForecaster(nn.Module):
    """Forecasts ``(B, H, 1)``: step h is ``weight * x[:, day]`` (only that day of the window matters)."""

    def __init__(self, day: int, horizon: int = 3):
        super().__init__()
        self.day, self.horizon = day, horizon
        self.weight = nn.Parameter(torch.tensor(2.5))

    def forward(self, x):
        return (self.weight * x[:, self.day])[:, None, None].expand(-1, self.horizon, 1)


@pytest.mark.parametrize("method", ["ig", "gradxinput"])
def test_only_the_day_the_forecast_reads_gets_attribution(method):
    from neuralsight.viz.explain_series import window_attributions

    x = torch.randn(1, 14)
    attr = window_attributions(OneDayForecaster(day=9), x, step=2, method=method, steps=16)
    assert attr.shape == (14,)
    assert torch.all(attr[torch.arange(14) != 9] == 0) and attr[9] != 0
    if method == "ig":  # completeness with the flat-window baseline: f(x) - f(mean) = 2.5 (x_9 - mean)
        assert float(attr[9]) == pytest.approx(2.5 * float(x[0, 9] - x.mean()), rel=1e-4)


def test_recurrent_traces_match_the_fused_lstm():
    from neuralsight.models.forecaster import RecurrentForecaster
    from neuralsight.viz.explain_series import recurrent_traces

    model = RecurrentForecaster("lstm", input_window=10, horizon=3, hidden_size=5).eval()
    x = torch.randn(1, 10)
    traces = recurrent_traces(model, x)
    assert traces["kind"] == "lstm" and traces["forget"].shape == (10, 5)
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(traces["hidden"][-1]), model.forward_features(x)[0], atol=1e-5)


def test_options_say_what_they_expect():
    from neuralsight.tasks.explaining import choose_class, parse_box, parse_methods

    assert parse_box("1,2,10,12", 2) == (1, 2, 10, 12) and parse_box(None, 2) is None
    for bad in ("1,2,3", "5,5,2,9", "a,b,c,d"):
        with pytest.raises(UserError, match="x0,y0,x1,y1"):
            parse_box(bad, 2)
    with pytest.raises(UserError, match="z0,y0,x0,z1,y1,x1"):
        parse_box("1,2,3,4", 3)
    with pytest.raises(UserError, match="gradcam, ig"):
        parse_methods("saliency", ("gradcam", "ig"), "segment")
    pred = torch.tensor([[0, 2, 2], [1, 2, 0]])
    assert choose_class(pred, ["bg", "a", "b"], None) == 2
    assert choose_class(pred, ["bg", "a", "b"], "a") == 1
    with pytest.raises(UserError, match="bg, a, b"):
        choose_class(pred, ["bg", "a", "b"], "cat")


def test_region_and_stage_figures(tmp_path):
    import numpy as np

    from neuralsight.models.unet import UNet
    from neuralsight.viz.explain_seg import feature_stages, region_figure, slices_figure, stage_figure

    region = np.zeros((16, 16), dtype=bool)
    region[4:9, 4:9] = True
    image = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    attr = np.random.default_rng(1).random((16, 16))
    assert png_nonblank(region_figure(image, region, {"ig": attr}, "t", tmp_path / "r.png"))
    vol = np.random.default_rng(2).random((8, 10, 12))
    assert png_nonblank(slices_figure(vol, vol > 0.7, {"gradcam": vol, "ig": vol}, "t", tmp_path / "s.png"))
    stages = feature_stages(UNet(2, 3, 2, depth=2, base_channels=2).eval(), torch.randn(1, 3, 16, 16))
    assert png_nonblank(stage_figure(stages, "t", tmp_path / "f.png"))


def test_classifier_kernels_and_head(tmp_path):
    from neuralsight.models.cnn import CNN
    from neuralsight.viz.explain import first_conv, head_figure, kernel_grid

    model = CNN.from_preset("lecture", in_channels=1, num_classes=4, image_size=(12, 12)).eval()
    assert first_conv(model).weight.shape[:2] == (32, 1)
    assert png_nonblank(kernel_grid(model, tmp_path / "k.png"))
    assert png_nonblank(head_figure(model, torch.rand(1, 1, 12, 12), list("abcd"), tmp_path / "h.png"))


def test_explain_section_lists_the_figures_with_their_captions(tmp_path):
    import json

    from neuralsight.report.sections import Figure, explain_section
    from neuralsight.viz.figures import batch_grid

    assert explain_section(tmp_path) is None
    batch_grid(torch.rand(4, 3, 8, 8).numpy(), tmp_path / "explain" / "a_region.png",
               masks=torch.randint(0, 3, (4, 8, 8)).numpy(), num_classes=3)
    (tmp_path / "explain" / "captions.json").write_text(json.dumps({"a_region.png": "the caption"}))
    section = explain_section(tmp_path)
    figures = [b for b in section.blocks if isinstance(b, Figure)]
    assert [(f.path.name, f.caption) for f in figures] == [("a_region.png", "the caption")]


def test_segment_regions_leave_the_square_padding_out(tmp_path, monkeypatch):
    """A wide image is padded to a square below it; the explained region and the figures hold the image only."""
    from types import SimpleNamespace

    import numpy as np
    import torch
    from PIL import Image

    from neuralsight.models.unet import UNet
    from neuralsight.tasks import explaining as E

    torch.manual_seed(0)
    model = UNet(2, 3, 2, depth=1, base_channels=2).eval()
    with torch.no_grad():                        # predict class 1 everywhere, padding included
        model.head.bias.copy_(torch.tensor([-50.0, 50.0]))
    saved = SimpleNamespace(cfg=SimpleNamespace(data=SimpleNamespace(image_size=32)), device=torch.device("cpu"),
                            model=lambda: model)
    Image.fromarray(np.full((20, 40, 3), 128, np.uint8)).save(tmp_path / "wide.png")
    seen = []
    monkeypatch.setattr(E, "_region_maps", lambda m, x, c, region, methods, steps: seen.append(region) or {})
    E.explain_segment(saved, [tmp_path / "wide.png"], tmp_path / "out",
                      E.SegmentExplainOptions(method="ig"), ["background", "thing"], held_out=None)
    (region,) = seen
    assert region.shape == (32, 32) and not region[16:].any()   # 40x20 -> 32x16, rows 16.. are padding
    assert region[:16].any()
