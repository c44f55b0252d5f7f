"""Writes the lecture notebooks without outputs: edit the cells here, then run `python notebooks/build.py`."""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parent

SETUP = '''from pathlib import Path

from IPython.display import Image, display

from neuralsight.data.catalog import find

RUNS = Path("runs")          # runs/<task>/<stamp>-<name>/, as the command line writes them
OUT = Path("notebook-output") / "{name}"
OUT.mkdir(parents=True, exist_ok=True)


def show(*paths):
    """Display PNGs that neuralsight's figure functions wrote."""
    for path in paths:
        display(Image(filename=str(path)))'''


def notebook(name, cells):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    out = []
    for kind, text in cells:
        out.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    nb.cells = out
    for i, c in enumerate(nb.cells):
        c["id"] = f"{name[:2]}-{i:02d}"
    nbformat.validate(nb)
    nbformat.write(nb, OUT / f"{name}.ipynb")


notebook("01-convolution-and-pooling", [
    ("md", "# Convolution and pooling as signal processing\n\n"
           "The lecture's first half: a convolution is a filter, classic kernels find edges, a *valid* 3x3 kernel "
           "turns 28x28 into 26x26, several kernels in parallel make a multi-channel feature map, pooling halves "
           "the resolution, and a transposed convolution builds a larger output. Everything here runs in seconds "
           "on a CPU; the figures are the ones `neuralsight filters` and `neuralsight lecture` write.\n\n"
           "Data comes from neuralsight's catalog: `$NEURALSIGHT_DATA/fashion-mnist`, the system copy "
           "(Debian's `dataset-fashion-mnist` installs `/usr/share/datasets/fashion-mnist`), or the user cache."),
    ("code", SETUP.format(name="01-convolution-and-pooling") + '''

print("Fashion-MNIST found in:", find("fashion-mnist"))'''),
    ("md", "## One image, one kernel\n\n`convolve` flips the kernel (true convolution); deep-learning "
           "libraries compute the cross-correlation (`flip=False`). For the antisymmetric Sobel kernel the two "
           "differ in sign; `torch.nn.functional.conv2d` agrees with the correlation."),
    ("code", '''import torch
import torch.nn.functional as F

from neuralsight.data.signals import load_gray
from neuralsight.layers.conv import convolve, kernel, output_size

image, title = load_gray(None, "fashion-mnist", 0, None)      # (28, 28) in [0, 1]
sobel_x = kernel("sobel_x")
edges = convolve(image, sobel_x, mode="valid")                  # true convolution
print(title, tuple(image.shape), "->", tuple(edges.shape), "(valid 3x3: two pixels lost per axis)")
print("output_size(28, 3) =", output_size(28, 3, "valid"), "; same padding keeps", output_size(28, 3, "same"))

correlation = convolve(image, sobel_x, mode="valid", flip=False)
torch_result = F.conv2d(image[None, None], sobel_x[None, None])[0, 0]
print("correlation == F.conv2d:", torch.allclose(correlation, torch_result, atol=1e-6))
print("convolution == -correlation for Sobel:", torch.allclose(edges, -correlation, atol=1e-6))'''),
    ("md", "## Every classic kernel\n\nOne figure, one value scale per kind of output (grey: the input's "
           "range; blue/red: signed edge responses), and one pixel scale: the 26x26 outputs are drawn smaller "
           "than the 28x28 input, the 7x7 Gaussian's 22x22 smaller still."),
    ("code", '''from neuralsight.viz.filters import filter_figure, kernel_list, pool_figure

show(filter_figure(image, kernel_list([]), OUT / "filters.png", title=title))'''),
    ("md", "## A 1D signal\n\nThe same operation on a noisy sine with a step: Gaussian smoothing, then a "
           "derivative kernel that peaks at the step (an edge detector in 1D)."),
    ("code", '''from neuralsight.data.signals import read_signal
from neuralsight.viz.filters import filter_signal

signal, signal_title = read_signal("synthetic")
show(filter_signal(signal, signal_title, OUT / "signal.png", mode="valid"))'''),
    ("md", "## Pooling: average, max and min\n\n`torch.nn` has no min pooling; `min(x) = -max(-x)` gives it. "
           "A 2x2 window with stride 2 halves each side."),
    ("code", '''from neuralsight.layers.pool import Pool

grid = torch.arange(16.0).view(1, 1, 4, 4)
for mode in ("avg", "max", "min"):
    print(mode, Pool(mode, 2)(grid).flatten().tolist())
show(pool_figure(image, ["avg", "max", "min"], OUT / "pooling.png", title=f"{title}: 2x2 pooling"))'''),
    ("md", "## Channels, dense layers and transposed convolution\n\nThe lecture figures that need no trained "
           "model, drawn by `neuralsight.lecture.ideas.draw` (the same function as `neuralsight lecture IDEA`)."),
    ("code", '''from neuralsight.lecture.ideas import draw

figures = draw(["channels", "fully-connected", "transposed-convolution"], OUT)
for key, items in figures.items():
    for png, caption in items:
        print(f"{key}: {caption}")
        show(png)'''),
    ("md", "The step-by-step transposed convolution is exactly what `torch.nn.functional.conv_transpose2d` "
           "computes:"),
    ("code", '''from neuralsight.lecture.transpose import transposed_steps

x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
tent = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
steps = transposed_steps(x, tent, stride=2)
print(steps.output)
print("equal to conv_transpose2d:",
      torch.allclose(steps.output, F.conv_transpose2d(x[None, None], tent[None, None], stride=2)[0, 0]))'''),
])

notebook("02-cnn-fashion-mnist", [
    ("md", "# A CNN on Fashion-MNIST\n\nThe lecture's basic CNN (conv, pool, conv, pool, flatten, dense, "
           "softmax) trained on Fashion-MNIST (60,000 training and 10,000 test images, 10 classes) through the "
           "Python API: `train` is what `neuralsight train classify` runs, `SavedRun.open` what `eval`, "
           "`predict` and `explain` open.\n\n"
           "`MAX_TIME` keeps this notebook at about a minute on a laptop CPU; raise it (or drop it and use the "
           "preset's 8 epochs) for the accuracy in the README."),
    ("code", SETUP.format(name="02-cnn-fashion-mnist") + '''

MAX_TIME = 20                # seconds of training
print("Fashion-MNIST found in:", find("fashion-mnist"))'''),
    ("code", '''from neuralsight.tasks.base import SavedRun, train

run_dir = train("classify", preset="fashion", quick=True, overrides=[f"train.max_time={MAX_TIME}"], out=RUNS)
saved = SavedRun.open(run_dir)
head = saved.summary["headline"]
print(f"run: {run_dir}\\n{head['name']} on the {head['split']} split: {head['value']:.4f}")'''),
    ("md", "## What the run wrote\n\nThe confusion matrix (rows: true class) and the lecture's prediction "
           "gallery, from the run's `figures/`; `report.html` holds everything."),
    ("code", '''show(run_dir / "figures" / "confusion_matrix.png", run_dir / "figures" / "gallery.png")'''),
    ("md", "## Predict on image files\n\nAny image works (it is converted to 28x28 grey, inverted when its "
           "border is light). Here: three test images written as PNG."),
    ("code", '''import numpy as np
from PIL import Image as PILImage

from neuralsight.data.catalog import locate
from neuralsight.data.idx import load_mnist_split

test_x, test_y = load_mnist_split(locate("fashion-mnist"), "test")
classes = saved.read_json("classes.json")["classes"]
paths = []
for i in range(3):
    path = OUT / f"test{i}.png"
    PILImage.fromarray(test_x[i]).save(path)
    paths.append(path)
task = saved.task
for row in task.predict(saved, paths, OUT, task.PredictOptions(top_k=3)):
    print(Path(row["input"]).name, "->", row["class"], f"{row['probability']:.2f}",
          "| true:", classes[test_y[int(Path(row["input"]).stem[4:])]])'''),
    ("md", "## Which pixels decide\n\nSaliency (the gradient of the class score with respect to each pixel) "
           "and Grad-CAM (the last conv stage's activations weighted by their gradients), as "
           "`neuralsight explain RUN` writes them."),
    ("code", '''figures = task.explain(saved, [], OUT / "explain", task.ExplainOptions(method="saliency,gradcam,features", index=0))
show(*figures)'''),
    ("md", "## Flatten and softmax, and what the layers cost\n\nThe trained model's last feature map, "
           "flattened, mapped to ten logits, and normalised by softmax into probabilities that sum to one; then "
           "the per-layer table of `neuralsight params RUN`."),
    ("code", '''from neuralsight.lecture.ideas import draw
from neuralsight.models.cnn import layer_summary

(png, caption), = draw(["flatten-softmax"], OUT, classify_run=str(run_dir))["flatten-softmax"]
show(png)
model = saved.model()
for row in layer_summary(model, (model.in_channels, *model.image_size)):
    print(f"{row['layer']:<22} {row['type']:<12} {row['output']:>10} {row['params']:>9,} params")'''),
])

notebook("03-char-rnn-romeo", [
    ("md", "# A character RNN on Romeo and Juliet\n\nKarpathy's char-rnn idea: an LSTM reads the play one "
           "character at a time and learns to predict the next one. The run keeps a sample of text at each "
           "stage of training (the same seed, the same sampling RNG), so you can watch it learn spaces, then "
           "words, then names.\n\n`MAX_TIME` keeps this notebook at about a minute; the preset trains for "
           "1,500 steps."),
    ("code", SETUP.format(name="03-char-rnn-romeo") + '''

MAX_TIME = 30                # seconds of training
print("Romeo and Juliet found in:", find("romeo-juliet"))'''),
    ("code", '''from neuralsight.tasks.base import SavedRun, train

# The romeo preset's quick budget, with a narrower LSTM (256 units instead of 512) so that a short run
# gets through more steps; drop the override for the preset's model.
run_dir = train("textgen", preset="romeo", quick=True, out=RUNS,
                overrides=[f"train.max_time={MAX_TIME}", "model.hidden_size=256"])
saved = SavedRun.open(run_dir)
head = saved.summary["headline"]
print(f"run: {run_dir}\\n{head['name']} on the {head['split']} split: {head['value']:.4f}")'''),
    ("md", "## Text at each stage of training"),
    ("code", '''for stage in saved.read_json("samples/stages.json", []):
    print(f"--- step {stage['step']} (validation loss {stage.get('val_loss') or float('nan'):.3f})")
    print(stage["seed"] + stage["text"][:200])'''),
    ("md", "## Generate\n\n`task.generate` yields the seed, then one sampled character at a time (what "
           "`neuralsight generate RUN` streams)."),
    ("code", '''task = saved.task
options = task.GenerateOptions(seed="ROMEO:", length=300, temperature=0.8, rng_seed=0)
print("".join(task.generate(saved, options)))'''),
    ("md", "## What the cells see\n\nThe trained LSTM's gates over a passage and the recurrence unrolled over "
           "the seed (`neuralsight explain RUN`)."),
    ("code", '''figures = task.explain(saved, [], OUT / "explain", task.ExplainOptions(text="ROMEO: But soft!"))
show(*[p for p in figures if Path(p).suffix == ".png"])'''),
    ("md", "## The gates, one cell at a time\n\nThe lecture's LSTM diagram with its equations, and the gates "
           "of a 4-unit cell trained for a few seconds to hold the latest pulse of its input: at each pulse "
           "the input gate opens and the forget gate closes."),
    ("code", '''from neuralsight.lecture.ideas import draw

for key, items in draw(["rnn-unfolding", "lstm-gates"], OUT).items():
    for png, caption in items:
        print(f"{key}: {caption}")
        show(png)'''),
])

notebook("04-unet-pets", [
    ("md", "# U-Net on the Oxford-IIIT Pet photos\n\nSemantic segmentation: every pixel gets a class "
           "(background, pet, border). The U-Net's encoder halves the size and doubles the channels, its "
           "decoder doubles the size back with transposed convolutions, and skip connections carry the "
           "encoder's detail across. The lecture's slide shows Input / Training mask / Output / Error.\n\n"
           "`MAX_TIME` keeps this notebook at about a minute; masks get sharp after a few minutes of training."),
    ("code", SETUP.format(name="04-unet-pets") + '''

MAX_TIME = 30                # seconds of training
pets = find("oxford-pets")
print("Oxford-IIIT Pet found in:", pets)'''),
    ("md", "## The architecture, measured\n\nThe stage shapes of the real `UNet` class (the pets preset), and "
           "how a stride-2 transposed convolution builds a larger output."),
    ("code", '''from neuralsight.lecture.ideas import draw

for key, items in draw(["unet", "transposed-convolution"], OUT).items():
    for png, caption in items:
        print(f"{key}: {caption}")
        show(png)'''),
    ("code", '''from neuralsight.tasks.base import SavedRun, train

run_dir = train("segment", preset="pets", quick=True, overrides=[f"train.max_time={MAX_TIME}"], out=RUNS)
saved = SavedRun.open(run_dir)
head = saved.summary["headline"]
print(f"run: {run_dir}\\n{head['name']} on the {head['split']} split: {head['value']:.4f}")'''),
    ("md", "## Input / Training mask / Output / Error"),
    ("code", '''show(run_dir / "figures" / "panels.png")'''),
    ("md", "## Predict on photos\n\n`task.predict` writes a mask and an overlay per image and returns the area "
           "of each class."),
    ("code", '''photos = sorted((pets / "images").glob("*.jpg"))[:2]
task = saved.task
for row in task.predict(saved, photos, OUT / "predict", task.PredictOptions()):
    print(Path(row["input"]).name, {name: f"{area['fraction']:.0%}" for name, area in row["areas"].items()})
show(*sorted((OUT / "predict").glob("*_overlay.png")))'''),
])
print("written")
