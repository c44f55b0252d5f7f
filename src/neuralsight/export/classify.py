"""Export of a classify run: an image batch in [0, 1] to class probabilities.

The CNN normalises its own input (the training mean and std are buffers of the model), so the graph holds the
normalisation, the network and the lecture's softmax output layer: a user feeds pixels scaled to [0, 1].
Checked on the first test images of the run's data. Tolerance: 1e-5 on probabilities (fp32).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from neuralsight.data.imagefolder import recorded_trim
from neuralsight.errors import DataError
from neuralsight.export.spec import ExportSpec, Tolerance, architecture, cpu_copy, no_model_choice

TOLERANCE = Tolerance(atol=1e-5)
CHECK_IMAGES = 8


class ClassifierGraph(nn.Module):
    """``image`` (B, C, H, W) float in [0, 1] -> ``probabilities`` (B, K): normalisation, CNN, softmax; with
    ``flip_tta`` the mean over the image and its mirror image, as ``predict`` does for such a run."""

    def __init__(self, model: nn.Module, flip_tta: bool = False):
        super().__init__()
        self.model, self.flip_tta = model, flip_tta

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.predict_proba(image, self.flip_tta)  # (B, K), the CNN's own output layer


def test_images(saved, size: tuple[int, int], channels: int, count: int = CHECK_IMAGES):
    """``(uint8 (N, C, H, W), description)``: the first test images of the run's data."""
    import numpy as np

    d = saved.cfg.data
    if d.dataset == "fashion-mnist":
        from neuralsight.data.catalog import locate
        from neuralsight.data.idx import load_mnist_split

        folder = locate("fashion-mnist", d.data_dir)
        x = load_mnist_split(folder, "test")[0][:count, None]                    # (N, 1, 28, 28)
        if channels == 3:
            x = np.repeat(x, 3, 1)
        # A copy: the IDX reader hands out read-only views, which torch.from_numpy warns about.
        return np.array(x, copy=True), f"the first {len(x)} Fashion-MNIST test images ({folder})"
    from neuralsight.data.imagefolder import preprocess
    from neuralsight.data.images import IMAGE_EXTS, open_image

    root = Path(d.data_dir or "")
    # An explicit test/ folder holds the test split; otherwise the first image of each class stands for it.
    base = root / "test" if (root / "test").is_dir() else root
    classes = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    files = []
    for c in classes:
        files += [f for f in sorted(c.iterdir()) if f.is_file() and f.name.lower().endswith(IMAGE_EXTS)][:1]
    files = files[:count]
    if not files:
        raise DataError(f"no images under {base} to check the export with",
                        "pass --data DIR, the image folder this run was trained on")
    x = np.stack([preprocess(open_image(f, mode=None), size, channels, "no") for f in files])
    return x, f"{len(files)} images of {base}"


def spec(saved, model: str | None = None) -> ExportSpec:
    no_model_choice("classify", model)
    net = cpu_copy(saved.model())
    kwargs = saved.state()["model"]["kwargs"]
    meta = saved.read_json("classes.json") or {}
    classes = meta.get("classes") or [str(i) for i in range(int(kwargs["num_classes"]))]
    trim, tta = recorded_trim(meta), bool(saved.cfg.data.tta)
    size = tuple(int(s) for s in kwargs["image_size"])
    channels = int(kwargs["in_channels"])
    images, described = test_images(saved, size, channels)
    x = torch.from_numpy(images).float() / 255                                     # (N, C, H, W) in [0, 1]

    def reference(image):
        return (net.predict_proba(image, tta),)

    metadata = {
        "architecture": architecture(saved),
        "classes": classes, "input_size": list(size), "channels": channels, "input_range": [0.0, 1.0],
        "normalisation": {"mean": list(kwargs.get("input_mean") or [0.0] * channels),
                          "std": list(kwargs.get("input_std") or [1.0] * channels), "inside_graph": True},
        "preprocessing": ("grey (1 channel, ITU-R 601 luma) or RGB; "
                          + ("margins of the border colour cut (trim_margins); " if trim else "")
                          + "padded to a square with the border colour and "
                          "resized to input_size; pixels / 255. Fashion-MNIST shows light clothes on black, so "
                          "invert a photo taken on a light background."),
        "trim_margins": trim, "flip_tta": tta,
        "output_meaning": "probabilities (B, K): softmax over the classes, in the order of 'classes'",
    }
    return ExportSpec("classify", ClassifierGraph(net, tta).eval(), ["image"], ["probabilities"],
                      {"image": {0: "batch"}, "probabilities": {0: "batch"}},
                      [(x,), (x[:1],)], reference, f"{described} (a batch of {len(x)}, then 1)", metadata, TOLERANCE)
