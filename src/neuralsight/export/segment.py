"""Export of segment (2D U-Net) and segment3d (V-Net / 3D U-Net) runs: per-pixel logits and class indices.

Both graphs take any batch and any spatial size: the input is padded inside the graph to a multiple of
``2**depth`` (what the encoder's halvings need) and the logits are cropped back, so the padding is part of the
graph for every size instead of being decided once, at the size the graph was traced with.

- segment: an RGB image in [0, 1] ``(B, 3, H, W)``; the task's fixed intensity normalisation is inside.
  Checked on photos of the run's held-out split, resized as ``predict`` resizes them, at three sizes and a batch.
- segment3d: a normalised patch ``(B, C, D, H, W)`` for sliding-window inference, the window size recorded;
  the normalisation is per volume (it needs the whole volume), so it stays outside and is described.
  Checked on patches of a held-out volume.

Tolerance: 1e-4 + 1e-4 x |logit| (fp32); class indices may differ only where two logits are that close.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from neuralsight.errors import DataError
from neuralsight.export.spec import ExportSpec, Tolerance, architecture, cpu_copy, no_model_choice

TOLERANCE = Tolerance(atol=1e-4, rtol=1e-4)


class SegmenterGraph(nn.Module):
    """``image`` (B, C, *S) -> ``logits`` (B, K, *S) and ``classes`` (B, *S) int64, for any ``S``.

    Args:
        model: a U-Net or V-Net whose spatial sizes must be multiples of ``multiple``.
        multiple: ``2**depth``.
        mean, std: intensity normalisation applied first (``None``: the input is already normalised).
    """

    def __init__(self, model: nn.Module, multiple: int, mean: float | None = None, std: float | None = None):
        super().__init__()
        self.model, self.multiple, self.mean, self.std = model, multiple, mean, std

    def forward(self, image: torch.Tensor):
        size = image.shape[2:]
        x = image if self.mean is None else (image - self.mean) / self.std
        pads: list = []
        for s in reversed(size):                    # F.pad lists the last dim first
            pads += [0, (-s) % self.multiple]       # traced from the input's shape: every size pads right
        logits = self.model(F.pad(x, pads))         # (B, K, *S_padded)
        logits = logits[(slice(None), slice(None), *(slice(0, s) for s in size))]   # (B, K, *S)
        return logits, logits.argmax(1)


def _axes(spatial: list[str]) -> dict:
    return {"image": {0: "batch", **{2 + i: n for i, n in enumerate(spatial)}},
            "logits": {0: "batch", **{2 + i: n for i, n in enumerate(spatial)}},
            "classes": {0: "batch", **{1 + i: n for i, n in enumerate(spatial)}}}


# ---- 2D ----------------------------------------------------------------------------------------------

def held_out_photos(saved) -> tuple[list[Path], str]:
    """Two photos of the run's test split (Oxford-IIIT Pet: the official test list): the first, and the
    next one of another shape when one comes soon (so the check sees two sizes)."""
    from neuralsight.data import catalog, images

    d = saved.cfg.data
    root = Path(d.data_dir).expanduser() if d.dataset == "folder" else catalog.locate(d.dataset, d.data_dir)
    entry = catalog.CATALOG.get(d.dataset)
    parts = images.split_segmentation(root, entry, d.group_pattern, d.val_fraction, d.test_fraction, d.split_seed)
    paths, described = [p.image for p in parts.test or parts.val], f"test images of {root}"
    if not paths:
        raise DataError(f"{root} holds no held-out image to check the export with")
    shape = images.original_size(paths[0])
    others = [p for p in paths[1:20] if images.original_size(p) != shape] or paths[1:2]
    return [paths[0], *others[:1]], described


def resized(path: Path, image_size: int) -> torch.Tensor:
    """One photo as ``predict`` feeds it: longer side ``image_size``, in [0, 1], ``(1, 3, h, w)``."""
    from neuralsight.data.images import fit_size, open_image

    image = open_image(path)                                                          # (H, W, 3) uint8
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float()                # (1, 3, H, W)
    h, w = fit_size(image.shape[0], image.shape[1], image_size)
    return (F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False) / 255).clamp(0, 1)


def spec_2d(saved, model: str | None = None) -> ExportSpec:
    from neuralsight.tasks.segmentation import MEAN, STD  # the task's one normalisation (not duplicated here)

    no_model_choice("segment", model)
    net = cpu_copy(saved.model())
    names = (saved.read_json("segmentation.json") or {}).get("class_names") or \
        [f"class{i}" for i in range(net.num_classes)]
    paths, described = held_out_photos(saved)
    size = saved.cfg.data.image_size
    # At the training scale, as predict feeds them; then one photo a pixel larger (a size the encoder's halvings
    # do not divide, padded inside the graph); then a batch of two.
    photos = [resized(p, size) for p in paths] + [resized(paths[0], size + 1)]
    cases = [(p,) for p in photos] + [(torch.cat([photos[0], photos[0].flip(-1)]),)]

    def reference(image):
        logits = net((image - MEAN) / STD)
        return logits, logits.argmax(1)

    metadata = {
        "architecture": architecture(saved),
        "class_names": names, "channels": 3, "input_range": [0.0, 1.0],
        "normalisation": {"mean": MEAN, "std": STD, "inside_graph": True},
        "training_size": saved.cfg.data.image_size, "size_multiple": 2**net.depth,
        "preprocessing": ("RGB, pixels / 255; any height and width (padded inside the graph). The run trained "
                          "on images whose longer side is training_size: resize to it (keeping the aspect) for "
                          "the results eval reports, and resize the logits back."),
        "output_meaning": "logits (B, K, H, W); classes (B, H, W): the argmax over K, in the order of 'class_names'",
    }
    return ExportSpec("segment", SegmenterGraph(net, 2**net.depth, MEAN, STD).eval(), ["image"],
                      ["logits", "classes"], _axes(["height", "width"]), cases, reference,
                      f"{len(paths)} {described} at {', '.join('x'.join(map(str, p.shape[2:])) for p in photos)} "
                      "(the first twice), then a batch of 2", metadata, TOLERANCE, {"classes": ("logits", 1)})


# ---- 3D ----------------------------------------------------------------------------------------------

def held_out_volume(saved):
    """``(Case, description)``: the first validation case of the run (its recorded split), else the first case."""
    from neuralsight.data import catalog
    from neuralsight.data.volumes import VolumeOptions, find_cases, load_case

    d = saved.cfg.data
    folder = Path(d.data_dir).expanduser() if d.dataset == "folder" else catalog.locate(d.dataset, d.data_dir)
    found = find_cases(folder)
    val = ((saved.read_json("samples/cases.json") or {}).get("split") or {}).get("val") or []
    name, image, _ = next((c for c in found if c[0] in val), found[0])
    options = VolumeOptions(normalize=d.normalize, window=list(d.window) or None,
                            target_spacing=list(d.target_spacing) or None)
    return load_case(image, None, options), f"volume {name} ({image})"


def spec_3d(saved, model: str | None = None) -> ExportSpec:
    no_model_choice("segment3d", model)
    net = cpu_copy(saved.model())
    cfg = saved.cfg
    names = (saved.read_json("samples/cases.json") or {}).get("class_names") or \
        ["background"] + [f"class {i}" for i in range(1, net.num_classes)]
    window = [int(s) for s in (cfg.eval.roi_size or cfg.data.patch_size)]
    case, described = held_out_volume(saved)
    volume = case.image.float()                                                       # (C, D, H, W)
    # The window sliding-window inference uses on this volume (clamped to its size, as engine/sliding does).
    patch = [min(w, s) for w, s in zip(window, volume.shape[1:], strict=True)]
    starts = [(s - p) // 2 for s, p in zip(volume.shape[1:], patch, strict=True)]
    centre = volume[(slice(None), *(slice(a, a + p) for a, p in zip(starts, patch, strict=True)))][None]
    corner = volume[(slice(None), *(slice(0, p) for p in patch))][None]
    cases = [(centre,), (torch.cat([centre, corner]),)]

    def reference(image):
        logits = net(image)
        return logits, logits.argmax(1)

    metadata = {
        "architecture": architecture(saved),
        "class_names": names, "channels": int(volume.shape[0]), "patch_size": window,
        "sliding_window": {"overlap": cfg.eval.overlap, "blend": "gaussian", "sigma_scale": 0.125,
                           "note": "windows of patch_size (clamped to the volume), blended with a Gaussian "
                                   "importance map; any patch size works (padded inside the graph)"},
        "size_multiple": 2**net.depth, "spacing_mm": list(cfg.data.target_spacing) or None,
        "normalisation": {"mode": cfg.data.normalize, "window": list(cfg.data.window) or None,
                          "inside_graph": False,
                          "note": "zscore: (volume - mean) / std per channel over the whole volume; window: "
                                  "clip to [low, high] and scale to [0, 1]; applied (after resampling to "
                                  "spacing_mm, when set) before the windows are cut"},
        "output_meaning": "logits (B, K, D, H, W); classes (B, D, H, W): the argmax over K, in the order of "
                   "'class_names'",
    }
    shape = "x".join(map(str, patch))
    return ExportSpec("segment3d", SegmenterGraph(net, 2**net.depth).eval(), ["image"], ["logits", "classes"],
                      _axes(["depth", "height", "width"]), cases, reference,
                      f"{shape} patches of {described}: the centre, then a batch with a corner patch", metadata,
                      TOLERANCE, {"classes": ("logits", 1)})
