"""The lecture's ideas: every drawable one drawn by a command, each computation checked against torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import png_nonblank
from typer.testing import CliRunner

from neuralsight.cli import app
from neuralsight.lecture.architecture import unet_stages, vnet_stages
from neuralsight.lecture.ideas import IDEAS, get_idea, lecture_sections
from neuralsight.lecture.transpose import output_size, transposed_steps

# ---- transposed convolution ------------------------------------------------------------------------------

@pytest.mark.parametrize("h,w,k,stride,padding,output_padding", [
    (2, 2, 3, 2, 0, 0), (3, 4, 2, 2, 0, 0), (4, 3, 3, 2, 1, 1), (5, 5, 4, 3, 1, 2), (1, 3, 3, 1, 0, 0),
    (3, 2, 5, 2, 2, 0)])
def test_transposed_steps_equal_conv_transpose2d(h, w, k, stride, padding, output_padding):
    g = torch.Generator().manual_seed(h * 100 + w * 10 + k)
    x, kernel = torch.randn(h, w, generator=g), torch.randn(k, k, generator=g)
    steps = transposed_steps(x, kernel, stride, padding, output_padding)
    want = F.conv_transpose2d(x[None, None], kernel[None, None], stride=stride, padding=padding,
                              output_padding=output_padding)[0, 0]
    assert steps.output.shape == want.shape
    assert steps.output.shape == (output_size(h, k, stride, padding, output_padding),
                                  output_size(w, k, stride, padding, output_padding))
    torch.testing.assert_close(steps.output, want, rtol=1e-5, atol=1e-5)
    assert len(steps.stamps) == h * w
    torch.testing.assert_close(sum(s.canvas for s in steps.stamps), steps.canvas)
    ones = F.conv_transpose2d(torch.ones(1, 1, h, w), torch.ones(1, 1, k, k), stride=stride,
                              output_padding=output_padding)[0, 0]
    assert torch.equal(steps.overlap, ones.long())       # how many stamps cover each cell


def test_a_2x2_stride_2_kernel_does_not_overlap_and_a_3x3_one_does():
    assert transposed_steps(torch.ones(3, 3), torch.ones(2, 2), 2).overlap.max() == 1     # U-Net's upsampling
    steps = transposed_steps(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.ones(3, 3), 2)
    assert steps.output.shape == (5, 5) and steps.overlap[2, 2] == 4 and steps.output[2, 2] == 1 + 2 + 3 + 4


def test_transposed_steps_refuse_bad_arguments():
    with pytest.raises(ValueError, match="output_padding < stride"):
        transposed_steps(torch.ones(2, 2), torch.ones(3, 3), 2, output_padding=2)
    with pytest.raises(ValueError, match="must be 2D"):
        transposed_steps(torch.ones(2), torch.ones(3, 3))
    with pytest.raises(ValueError, match="crops"):
        transposed_steps(torch.ones(1, 1), torch.ones(2, 2), 1, padding=1)


# ---- U-Net and V-Net stage shapes ------------------------------------------------------------------------

@pytest.mark.parametrize("spatial", [(32, 32), (30, 22)])
def test_unet_stages_match_the_real_forward_pass(spatial):
    from neuralsight.models.unet import UNet

    stages = unet_stages(3, 4, spatial, depth=3, base_channels=4)
    torch.manual_seed(0)
    model = UNet(2, 3, 4, depth=3, base_channels=4).eval()
    padded = stages["padded"][1:]
    assert all(p % 8 == 0 and p >= s for p, s in zip(padded, spatial, strict=True))
    with torch.no_grad():
        feats = model.forward_features(torch.zeros(1, 3, *padded))
        out = model(torch.zeros(1, 3, *spatial))
    assert [lv["encoder"] for lv in stages["levels"]] == [tuple(f.shape[1:]) for f in feats]
    assert stages["output"] == tuple(out.shape[1:]) == (4, *spatial)
    for lv in stages["levels"][:-1]:                      # a skip joins levels of the same size
        assert lv["decoder"][1:] == lv["encoder"][1:] == lv["up"][1:]
    assert stages["levels"][-1]["decoder"] is None        # the bottleneck
    assert stages["parameters"] == sum(p.numel() for p in model.parameters())


def test_vnet_stages_on_a_hippocampus_sized_volume():
    from neuralsight.models.vnet import VNet

    stages = vnet_stages(1, 3, (35, 51, 35), base_channels=16, depth=3, kernel_size=5)
    assert stages["padded"] == (1, 40, 56, 40)
    assert [lv["encoder"] for lv in stages["levels"]] == [
        (16, 40, 56, 40), (32, 20, 28, 20), (64, 10, 14, 10), (128, 5, 7, 5)]
    assert [lv["decoder"] for lv in stages["levels"][:-1]] == [(32, 40, 56, 40), (64, 20, 28, 20), (128, 10, 14, 10)]
    assert stages["output"] == (3, 35, 51, 35)
    small = vnet_stages(1, 2, (9, 10, 11), base_channels=2, depth=2, kernel_size=3)   # meta device vs real
    torch.manual_seed(0)
    model = VNet(1, 2, base_channels=2, depth=2, kernel_size=3).eval()
    with torch.no_grad():
        assert tuple(model(torch.zeros(1, 1, 9, 10, 11)).shape[1:]) == small["output"]
    assert small["parameters"] == sum(p.numel() for p in model.parameters())


# ---- LSTM gates ------------------------------------------------------------------------------------------

def test_lstm_gate_trace_matches_torch_lstm():
    from neuralsight.lecture.gates import lstm_gate_trace

    torch.manual_seed(1)
    lstm, head = torch.nn.LSTM(1, 3, batch_first=True).eval(), torch.nn.Linear(3, 1)
    x = torch.rand(9, 1)
    trace = lstm_gate_trace(lstm, head, x)
    with torch.no_grad():
        out, _ = lstm(x[None])
    torch.testing.assert_close(torch.from_numpy(trace["hidden"]), out[0], rtol=1e-5, atol=1e-6)
    f, i, g, c = (torch.from_numpy(trace[k]) for k in ("forget", "input", "candidate", "cell"))
    c_prev = torch.cat([torch.zeros(1, 3), c[:-1]])
    torch.testing.assert_close(c, f * c_prev + i * g)      # the memory line's equation, step by step
    assert ((f >= 0) & (f <= 1)).all() and ((i >= 0) & (i <= 1)).all()


def test_sample_and_hold_training_beats_the_mean():
    from neuralsight.lecture.gates import sample_and_hold, train_sample_and_hold

    x, y = sample_and_hold(4, 10, generator=torch.Generator().manual_seed(0))
    for row in range(4):                                   # the target holds the latest pulse
        last = 0.0
        for t in range(10):
            last = float(x[row, t, 0]) if x[row, t, 0] > 0 else last
            assert float(y[row, t]) == pytest.approx(last)
    model = train_sample_and_hold(steps=80)
    assert model["losses"][-1] < 0.5 * model["baseline"] < model["losses"][0]


# ---- the list of ideas, the command, the sections ---------------------------------------------------------

REQUIRED = {"convolution-1d", "convolution-2d", "channels", "pooling", "fully-connected", "flatten-softmax",
            "transposed-convolution", "unet", "vnet", "rnn-unfolding", "lstm-gates", "text-stages",
            "confusion-matrix", "segmentation-panels", "which-pixels"}


def test_every_lecture_idea_is_listed_with_a_command_and_a_figure():
    keys = [i.key for i in IDEAS]
    assert len(keys) == len(set(keys)) and REQUIRED <= set(keys)
    assert all(i.command.startswith("neuralsight ") and i.figure for i in IDEAS)
    res = CliRunner().invoke(app, ["lecture", "--list"])
    assert res.exit_code == 0 and all(k in res.output for k in keys)


def test_lecture_command_refuses_an_unknown_idea_before_drawing(tmp_path):
    res = CliRunner().invoke(app, ["lecture", "unet", "nonsense", "--out", str(tmp_path / "l")])
    assert res.exit_code == 2 and "'nonsense' is not a lecture idea" in res.output
    assert not (tmp_path / "l").exists()


def test_lecture_command_draws_ideas_and_points_to_run_commands(tmp_path):
    res = CliRunner().invoke(app, ["lecture", "unet", "transposed-convolution", "confusion-matrix",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert png_nonblank(tmp_path / "unet.png") and png_nonblank(tmp_path / "transposed-convolution.png")
    assert "neuralsight train classify" in res.output and get_idea("confusion-matrix").draw is None


def test_flatten_softmax_with_a_trained_classify_run(tmp_path):
    from pathlib import Path

    run = next((Path(__file__).parent / "fixtures" / "runs-v0.1" / "classify").iterdir())
    res = CliRunner().invoke(app, ["lecture", "flatten-softmax", "--run", str(run), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert png_nonblank(tmp_path / "flatten-softmax.png")


@pytest.mark.slow
def test_lecture_sections_draw_every_drawable_idea(tmp_path):
    from neuralsight.report.html import render_sections
    from neuralsight.report.sections import Figure, Table

    sections = lecture_sections(tmp_path)
    drawable = [i.key for i in IDEAS if i.draw is not None]
    figures = [b for s in sections for b in s.blocks if isinstance(b, Figure)]
    assert [s.anchor for s in sections[:-1]] == [f"lecture-{k}" for k in drawable]
    assert len(figures) == len(drawable) and all(png_nonblank(f.path) for f in figures)
    table = sections[-1].blocks[0]
    assert isinstance(table, Table) and {r[1] for r in table.rows} >= {"neuralsight train classify",
                                                                       "neuralsight explain RUN (any task)"}
    html = render_sections(sections)
    assert html.count("data:image/png;base64,") == len(drawable)
    from neuralsight.report.html import write_combined

    report = write_combined(tmp_path / "demo", [], extra=sections)    # how `neuralsight demo` embeds them
    assert report.read_text().count("data:image/png;base64,") == len(drawable)


def test_hippocampus_volume_shape_reads_a_real_case():
    from conftest import shared_data

    from neuralsight.lecture.ideas import hippocampus_volume_shape

    folder = shared_data("msd-hippocampus")
    import nibabel

    from neuralsight.data.volumes import find_cases

    name, image, _ = find_cases(folder)[0]
    assert hippocampus_volume_shape() == (tuple(nibabel.load(str(image)).shape[:3]), f"case {name}")


def test_an_idea_that_cannot_be_drawn_says_why_and_spares_the_others(tmp_path):
    from pathlib import Path

    from neuralsight.report.sections import Figure, Text

    segment_run = next((Path(__file__).parent / "fixtures" / "runs-v0.1" / "segment").iterdir())
    res = CliRunner().invoke(app, ["lecture", "flatten-softmax", "--run", str(segment_run), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "needs a classify run" in res.output
    sections = lecture_sections(tmp_path, ["flatten-softmax", "transposed-convolution"], classify_run=str(segment_run))
    assert any(isinstance(b, Text) and b.text.startswith("not drawn:") for b in sections[0].blocks)
    assert any(isinstance(b, Figure) for b in sections[1].blocks)


def test_the_readme_table_comes_from_the_list_of_ideas():
    res = CliRunner().invoke(app, ["lecture", "--list", "--markdown"])
    assert res.exit_code == 0
    lines = res.output.strip().splitlines()
    assert lines[0] == "| lecture idea | command | figure |" and len(lines) == len(IDEAS) + 2
    for idea, line in zip(IDEAS, lines[2:], strict=True):
        assert line.startswith(f"| {idea.title} | `neuralsight ") and line.count(" | ") == 2
