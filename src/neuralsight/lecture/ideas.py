"""Every idea of the lecture, once: what it shows, the command that draws it, and the figure it writes.

:data:`IDEAS` is the one list (the README's table, ``neuralsight lecture --list`` and the demo report read it).
An idea with a ``draw`` function is drawn by ``neuralsight lecture IDEA --out DIR`` without training: it
computes on the real layers and models (``layers/``, ``models/``) and writes ``DIR/<idea>.png``. The others
come from trained runs, and the list says which command makes them and where the figure lands.
:func:`lecture_sections` draws the drawable ideas and returns them as report sections (the demo's report).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.errors import DataError, UserError


@dataclass(frozen=True)
class Idea:
    key: str
    title: str
    point: str                                   # the lecture's sentence the figure makes visible
    command: str                                 # what a user runs
    figure: str                                  # the file it writes
    draw: Callable | None = field(default=None, compare=False)   # (Context) -> [(png, caption)]; None: a run makes it


@dataclass
class Context:
    """What the drawing functions share: the output folder, the lecture image and an optional classify run."""

    out: Path
    data_dir: Path | None = None
    classify_run: str | None = None
    _image: tuple | None = None

    def image(self):
        """``(image (28, 28) in [0, 1], description)``: Fashion-MNIST test #0 when the data is found, else a
        synthetic picture (a disc and a bar), so the lecture draws offline too."""
        if self._image is None:
            self._image = lecture_image(self.data_dir)
        return self._image


def lecture_image(data_dir: Path | None = None):
    from neuralsight.data.catalog import find

    if find("fashion-mnist", data_dir) is not None:
        from neuralsight.data.signals import load_gray

        return load_gray(None, "fashion-mnist", 0, data_dir)
    import torch

    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    img = ((yy - 14) ** 2 + (xx - 10) ** 2 < 64).float() * 0.8
    img[5:23, 19:24] = 0.5
    return img, "synthetic image (Fashion-MNIST not found)"


# ---- the drawings ----------------------------------------------------------------------------------------

def _convolution_1d(ctx: Context):
    from neuralsight.data.signals import read_signal
    from neuralsight.viz.filters import filter_signal

    signal, title = read_signal("synthetic")
    png = filter_signal(signal, title, ctx.out / "convolution-1d.png", mode="valid")
    return [(png, "a noisy signal, its Gaussian smoothing and a derivative kernel's response; valid mode: "
                  "each kernel of size k shortens the signal by k - 1")]


def _convolution_2d(ctx: Context):
    from neuralsight.viz.filters import filter_figure, kernel_list

    img, title = ctx.image()
    png = filter_figure(img, kernel_list([]), ctx.out / "convolution-2d.png", title=title)
    return [(png, "classic kernels as valid 2D convolutions, drawn at one pixel scale: a 3x3 kernel turns 28x28 "
                  "into 26x26, the 7x7 Gaussian into 22x22; grey: the input's scale, blue/red: signed edge responses")]


def _channels(ctx: Context):
    import torch
    import torch.nn.functional as F

    from neuralsight.layers.conv import kernel
    from neuralsight.viz.lecture import channels_figure

    img, title = ctx.image()
    kernels = [(name, kernel(name)) for name in ("sobel_x", "sobel_y", "laplacian", "box")]
    # One conv layer with four filters: the kernels stacked into a (4, 1, 3, 3) weight, one F.conv2d call.
    weight = torch.stack([k for _, k in kernels])[:, None]         # (C_out=4, C_in=1, 3, 3)
    maps = F.conv2d(img[None, None], weight)[0]                     # (4, 26, 26)
    png = channels_figure(img, kernels, maps, ctx.out / "channels.png", title=title)
    return [(png, "several kernels in parallel are one convolution layer; its output is a multi-channel "
                  "feature map that the next layer reads as a whole")]


def _pooling(ctx: Context):
    from neuralsight.viz.filters import pool_figure

    img, title = ctx.image()
    png = pool_figure(img, ["avg", "max", "min"], ctx.out / "pooling.png", title=f"{title}: 2x2 pooling")
    return [(png, "average, max and min pooling, 2x2 windows: half the resolution, on the input's grey scale and "
                  "pixel scale (min pooling keeps the dark, max pooling the bright)")]


def _fully_connected(ctx: Context):
    from neuralsight.lecture.params import fc_vs_conv
    from neuralsight.viz.lecture import fc_blowup_figure

    rows = fc_vs_conv(128, 100, 3, 1)
    sides = [8, 16, 28, 32, 64, 96, 128, 192, 256]
    png = fc_blowup_figure(rows, sides, 100, 3, ctx.out / "fully-connected.png", size=128)
    return [(png, "a dense layer on a 128x128 image with 100 neurons needs 1,638,400 weights; a 3x3 conv layer "
                  "with 100 filters needs 900, whatever the image size (`neuralsight params` prints the table)")]


def _flatten_softmax(ctx: Context):
    import torch

    from neuralsight.viz.lecture import softmax_figure

    img, title = ctx.image()
    if ctx.classify_run:
        from neuralsight.tasks.base import SavedRun

        saved = SavedRun.open(ctx.classify_run, device="cpu")
        model = saved.model()
        if saved.task.name != "classify" or tuple(getattr(model, "image_size", ())) != tuple(img.shape):
            raise UserError(f"--run {ctx.classify_run}: flatten-softmax needs a classify run on 28x28 grey images")
        classes = list((saved.read_json("classes.json", None) or {}).get("classes") or _fashion_classes(model.num_classes))
        source = f"run {saved.path.name} (trained) on {title}"
    else:
        from neuralsight.models.cnn import CNN

        torch.manual_seed(0)
        model = CNN.from_preset("lecture", in_channels=1, num_classes=10, image_size=[28, 28]).eval()
        classes = _fashion_classes(10)
        source = (f"the lecture CNN, untrained (torch's initialisation, seed 0), on {title}: near-equal "
                  f"probabilities; `neuralsight lecture flatten-softmax --run RUN` shows a trained classifier")
    with torch.no_grad():
        x = img[None, None].to(next(model.parameters()).device)     # (1, 1, 28, 28)
        features = model.forward_features(x)                        # (1, C, h, w)
        logits = model.forward_head(features)                       # (1, K)
    png = softmax_figure(img, features[0].cpu(), logits[0].cpu(), classes, ctx.out / "flatten-softmax.png", source)
    return [(png, "the last feature map is flattened into one vector, a dense layer maps it to one logit per "
                  "class, and softmax normalises the logits into probabilities that sum to one")]


def _fashion_classes(n: int) -> list[str]:
    from neuralsight.data.catalog import get

    names = list(get("fashion-mnist").class_names)
    return names if len(names) == n else [str(i) for i in range(n)]


def _transposed_convolution(ctx: Context):
    import torch

    from neuralsight.lecture.transpose import transposed_steps
    from neuralsight.viz.lecture import transposed_figure

    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])   # the bilinear "tent", x4
    steps = transposed_steps(x, kernel, stride=2)
    png = transposed_figure(x, kernel, steps, ctx.out / "transposed-convolution.png")
    return [(png, "a stride-2 transposed convolution: each input pixel stamps the kernel scaled by its value, two "
                  "pixels apart, and overlapping stamps add; U-Net's and V-Net's decoders use a 2x2 kernel with "
                  "stride 2 (no overlap)")]


def _preset(name: str) -> dict:
    from neuralsight import config as C

    return C.load_toml(C.preset_path(name))


def _unet(ctx: Context):
    from neuralsight.data.catalog import get
    from neuralsight.lecture.architecture import unet_stages
    from neuralsight.viz.architecture import encoder_decoder_figure

    preset = _preset("pets")
    m, size = preset["model"], int(preset["data"]["image_size"])
    stages = unet_stages(3, len(get("oxford-pets").class_names), (size, size), depth=m["depth"],
                         base_channels=m["base_channels"], up=m["up"], norm=m["norm"])
    png = encoder_decoder_figure(stages, ctx.out / "unet.png",
                                 f"U-Net of `neuralsight train segment` (pets preset) on a 3x{size}x{size} photo")
    return [(png, "the encoder halves the size and doubles the channels, the decoder doubles the size back with "
                  "transposed convolutions, and skip connections bring each encoder level's detail across")]


def hippocampus_volume_shape(data_dir: Path | None = None) -> tuple[tuple[int, int, int], str]:
    """The first MSD hippocampus case's size (from its NIfTI header) when the data is found, else the
    preset's training patch."""
    from neuralsight.data.catalog import find

    folder = find("msd-hippocampus", data_dir)
    if folder is not None:
        try:
            import nibabel

            from neuralsight.data.volumes import find_cases

            name, image, _ = find_cases(folder)[0]
            return tuple(int(s) for s in nibabel.load(str(image)).shape[:3]), f"case {name}"
        except (DataError, OSError, IndexError):
            pass
    return tuple(int(s) for s in _preset("hippocampus")["data"]["patch_size"]), "the preset's training patch"


def _vnet(ctx: Context):
    from neuralsight.data.catalog import get
    from neuralsight.lecture.architecture import vnet_stages
    from neuralsight.viz.architecture import encoder_decoder_figure

    m = _preset("hippocampus")["model"]
    shape, source = hippocampus_volume_shape(ctx.data_dir)
    stages = vnet_stages(1, len(get("msd-hippocampus").class_names), shape, base_channels=m["base_channels"],
                         depth=m["depth"], kernel_size=m["kernel_size"], norm=m["norm"])
    png = encoder_decoder_figure(stages, ctx.out / "vnet.png",
                                 f"V-Net of `neuralsight train segment3d` (hippocampus preset) on a "
                                 f"{'x'.join(map(str, shape))} MRI volume ({source})")
    return [(png, "V-Net: the U-Net idea in 3D, with residual 5x5x5 stages, strided convolutions down and "
                  "transposed convolutions up; every stage is a 4D feature map (channels x depth x height x width)")]


def _rnn_unfolding(ctx: Context):
    import torch

    from neuralsight.data.text import Vocab
    from neuralsight.models.charrnn import CharRNN
    from neuralsight.viz.gates import unfold_figure

    seed = "ROMEO: But soft"
    vocab = Vocab.from_text(seed)
    torch.manual_seed(0)
    model = CharRNN(len(vocab), cell="rnn", embedding=8, hidden_size=18, num_layers=1).eval()
    png = unfold_figure(model, vocab, seed[:8], ctx.out / "rnn-unfolding.png")
    return [(png, "one tanh RNN cell applied at every character, its hidden state h_t carried to the next step; "
                  "untrained here, so its next-character guesses are arbitrary (`neuralsight train textgen` draws a "
                  "trained one)")]


def _lstm_gates(ctx: Context):
    from neuralsight.lecture.gates import lecture_example
    from neuralsight.viz.lecture import lstm_gates_figure

    png = lstm_gates_figure(lecture_example(), ctx.out / "lstm-gates.png")
    return [(png, "the forget gate decides what the cell state keeps, the input gate what it writes, the output "
                  "gate what the hidden state shows; a 4-unit LSTM trained for a few seconds to hold the latest "
                  "pulse opens its input gate and closes its forget gate at each pulse")]


IDEAS: tuple[Idea, ...] = (
    Idea("convolution-1d", "Convolution in 1D: smoothing and edges", "convolution is signal filtering",
         "neuralsight lecture convolution-1d (a CSV column: neuralsight filters --signal FILE.csv)",
         "convolution-1d.png", _convolution_1d),
    Idea("convolution-2d", "Convolution in 2D: classic kernels and the size loss of a valid kernel",
         "edge detection with Sobel, Prewitt, Laplacian; a valid 3x3 kernel loses two pixels per axis",
         "neuralsight lecture convolution-2d (any image: neuralsight filters IMAGE)", "convolution-2d.png",
         _convolution_2d),
    Idea("channels", "Channels: several kernels in parallel", "a conv layer's filters produce a multi-channel "
         "feature map", "neuralsight lecture channels", "channels.png", _channels),
    Idea("pooling", "Pooling: average, max and min", "2x2 pooling halves the resolution",
         "neuralsight lecture pooling (any image: neuralsight filters IMAGE --pool avg,max,min)", "pooling.png",
         _pooling),
    Idea("fully-connected", "Fully connected layers scale badly", "128x128 inputs and 100 neurons: 1,638,400 weights",
         "neuralsight lecture fully-connected (the table: neuralsight params)", "fully-connected.png",
         _fully_connected),
    Idea("flatten-softmax", "Flatten and softmax", "softmax normalises so the sum is one",
         "neuralsight lecture flatten-softmax [--run CLASSIFY_RUN]", "flatten-softmax.png", _flatten_softmax),
    Idea("transposed-convolution", "Transposed convolution (\"deconvolution\")",
         "a stride-2 kernel builds a larger output; overlaps add", "neuralsight lecture transposed-convolution",
         "transposed-convolution.png", _transposed_convolution),
    Idea("unet", "U-Net: encoder, decoder, skip connections", "semantic segmentation with an encoder-decoder",
         "neuralsight lecture unet", "unet.png", _unet),
    Idea("vnet", "V-Net on a volume", "the encoder-decoder in 3D", "neuralsight lecture vnet", "vnet.png", _vnet),
    Idea("rnn-unfolding", "RNN unfolding in time", "one cell, applied at every step, carries its state",
         "neuralsight lecture rnn-unfolding (trained: neuralsight train textgen)", "rnn-unfolding.png",
         _rnn_unfolding),
    Idea("lstm-gates", "LSTM: forget, input and output gates", "gates decide what the memory keeps, writes, shows",
         "neuralsight lecture lstm-gates (trained: neuralsight explain TEXTGEN_RUN)", "lstm-gates.png", _lstm_gates),
    Idea("text-stages", "Text at training stages", "a char model learns words, then names, then form",
         "neuralsight train textgen", "RUN/report.html, section \"Samples at each training stage\" "
         "(RUN/samples/stages.json)"),
    Idea("confusion-matrix", "Confusion matrix", "which classes the CNN confuses",
         "neuralsight train classify", "RUN/figures/confusion_matrix.png"),
    Idea("segmentation-panels", "Input / Training mask / Output / Error", "segmentation, checked pixel by pixel",
         "neuralsight train segment (3D: neuralsight train segment3d)",
         "RUN/figures/panels.png (3D: RUN/figures/panel.png, orthogonal.png)"),
    Idea("which-pixels", "Which pixels decide", "attributions and feature maps of every trained model: saliency, "
         "Grad-CAM, occlusion (classify); Grad-CAM and integrated gradients of a class region, U-Net / V-Net "
         "feature maps by stage (segment, segment3d); the input days that decide a forecast (forecast)",
         "neuralsight explain RUN (any task)", "RUN/explain/*.png (classify: *_attributions.png, *_features.png; "
         "segment: *_region.png, *_stages.png; segment3d: *_slices.png, *_stages.png; forecast: *_ig.png, *_gates_lstm.png)"),
    Idea("position", "Position sensitivity of dense, recurrent and convolutional nets",
         "a dense net does not recognise a pattern at a new position", "neuralsight position",
         "runs/position/position.png"),
)


def get_idea(key: str) -> Idea:
    for idea in IDEAS:
        if idea.key == key:
            return idea
    raise UserError(f"'{key}' is not a lecture idea", f"choose from {', '.join(i.key for i in IDEAS)}")


def markdown_table() -> str:
    """The README's table: each idea, the command that makes its figure, and the figure."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| lecture idea | command | figure |", "| --- | --- | --- |"]
    for i in IDEAS:
        command, _, note = i.command.partition(" (")
        shown = f"`{command}`" + (f" ({note.rstrip(')')})" if note else "")
        figure = i.figure if "/" in i.figure else f"runs/lecture/{i.figure}"        # the default --out
        lines.append(f"| {cell(i.title)} | {cell(shown)} | {cell(figure)} |")
    return "\n".join(lines)


def draw(keys: list[str] | None, out: Path, data_dir: Path | None = None,
         classify_run: str | None = None) -> dict[str, list[tuple[Path, str]]]:
    """Draw the ideas ``keys`` (default: every drawable one) into ``out``: ``{key: [(png, caption)]}``;
    an idea that a trained run makes maps to ``[]`` (:data:`IDEAS` says which command makes it)."""
    ideas = [get_idea(k) for k in keys] if keys else [i for i in IDEAS if i.draw is not None]
    ctx = Context(Path(out), data_dir, classify_run)
    ctx.out.mkdir(parents=True, exist_ok=True)
    return {idea.key: idea.draw(ctx) if idea.draw is not None else [] for idea in ideas}


def lecture_sections(out: Path, keys: list[str] | None = None, data_dir: Path | None = None,
                     classify_run: str | None = None) -> list:
    """The lecture's figures as report sections: one per drawn idea (its point, figure and command), then a
    table of the ideas that trained runs show, with the command that makes each.

    An idea that cannot be drawn (``classify_run`` of another image size, say) gets a section saying why, so one
    figure never costs the report the others.
    """
    from neuralsight.report.sections import Figure, Section, Table, Text

    ideas = [get_idea(k) for k in keys] if keys else [i for i in IDEAS if i.draw is not None]
    ctx = Context(Path(out), data_dir, classify_run)
    ctx.out.mkdir(parents=True, exist_ok=True)
    sections = []
    for idea in ideas:
        if idea.draw is None:
            continue
        blocks: list = [Text(f"{idea.point}. Drawn by `{idea.command}`.", muted=True)]
        try:
            blocks += [Figure(png, caption) for png, caption in idea.draw(ctx)]
        except UserError as err:
            blocks.append(Text(f"not drawn: {err}"))
        sections.append(Section(f"Lecture: {idea.title}", blocks, f"lecture-{idea.key}"))
    from_runs = [i for i in IDEAS if i.draw is None]
    sections.append(Section("Lecture ideas shown by trained runs", [
        Table([[i.title, i.command, i.figure] for i in from_runs], ["idea", "command", "figure"])],
        "lecture-runs"))
    return sections
