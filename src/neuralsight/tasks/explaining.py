"""``explain`` for the segment, segment3d and forecast tasks: their options, their inputs, and the figures.

Each task keeps a thin ``explain`` method that hands this module what only it knows (its held-out data, how it
reads a file, its class names); the attributions and figures are drawn by ``viz/explain_seg.py`` and
``viz/explain_series.py``. Every call writes its PNGs into ``out`` (default ``RUN/explain``) with a caption
each in ``out/captions.json``, which the run's report lists (``report.sections.explain_section``).

- segment: Grad-CAM and integrated gradients of the summed logits of one class inside its predicted region (or
  a box), and the U-Net's feature maps level by level, for images given or held-out items (``index``).
- segment3d: the same on a patch around the structure, shown on orthogonal slices through its centre.
- forecast: integrated gradients or gradient x input of the h-step forecast over the input window, per model,
  and the gates of each recurrent model along the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from neuralsight.config import bounded
from neuralsight.errors import DataError, UserError
from neuralsight.tasks.base import expand_inputs

CAPTIONS_FILE = "captions.json"


@dataclass
class SegmentExplainOptions:
    method: str = field(default="auto", metadata={"help": "auto, or a comma list of gradcam, ig, features"})
    class_name: str | None = field(default=None, metadata={"help": "class to explain (default: the foreground "
                                                                   "class predicted most)"})
    box: str | None = field(default=None, metadata={"help": "x0,y0,x1,y1 in the image's pixels (3D: "
                                                            "z0,y0,x0,z1,y1,x1 voxels): explain this box"})
    index: int | None = bounded(None, min=0, help="held-out item to explain when no input is given (default 0)")
    steps: int = bounded(24, min=2, max=256, help="integration steps of integrated gradients")


@dataclass
class ForecastExplainOptions:
    method: str = field(default="auto", metadata={"help": "auto, or a comma list of ig, gradxinput, gates"})
    horizon: int | None = bounded(None, min=1, help="forecast step explained (default: 7, or the run's horizon)")
    index: int | None = bounded(None, min=0, help="test-window origin explained (default: the series' end)")
    steps: int = bounded(32, min=2, max=512, help="integration steps of integrated gradients")


def parse_methods(text: str, allowed: tuple[str, ...], task: str) -> list[str]:
    methods = list(allowed) if text == "auto" else [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in allowed]
    if bad or not methods:
        raise UserError(f"--method {bad[0] if bad else repr(text)} does not apply to a {task} run",
                        f"choose auto or a comma list of {', '.join(allowed)}")
    return methods


def parse_box(text: str | None, dims: int) -> tuple[int, ...] | None:
    """``"x0,y0,x1,y1"`` (``dims`` = 2) or ``"z0,y0,x0,z1,y1,x1"`` (3) as ints, low corner before high."""
    if text is None:
        return None
    form = "x0,y0,x1,y1" if dims == 2 else "z0,y0,x0,z1,y1,x1"
    parts = text if isinstance(text, list) else str(text).split(",")
    try:
        box = tuple(int(float(v)) for v in parts)
    except ValueError:
        box = ()
    if len(box) != 2 * dims or any(box[i] >= box[i + dims] for i in range(dims)) or min(box) < 0:
        raise UserError(f"box={text} is not a box", f"give {form} with each low corner below its high one, "
                        f"e.g. --set box={','.join(['4'] * dims + ['20'] * dims)}")
    return box


def write_captions(out: Path, captions: dict[str, str]) -> None:
    import json

    from neuralsight.io import atomic_write_json

    path = out / CAPTIONS_FILE
    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    atomic_write_json(path, {**old, **captions})


def choose_class(pred, class_names: list[str], class_name: str | None, inside=None) -> int:
    """The class asked for, else the foreground class predicted on most pixels (inside ``inside``), else 0."""
    import torch

    if class_name is not None:
        if class_name not in class_names:
            raise UserError(f"class_name={class_name} is not a class of this run",
                            f"choose one of {', '.join(class_names)}")
        return class_names.index(class_name)
    p = pred[inside] if inside is not None else pred.flatten()
    counts = torch.bincount(p.flatten().long(), minlength=len(class_names))
    counts[0] = 0
    return int(counts.argmax()) if counts.sum() > 0 else 0


def _box_mask(shape, box: tuple[int, ...]):
    import torch

    dims = len(shape)
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[tuple(slice(box[i], box[i + dims]) for i in range(dims))] = True
    return mask


def _region_maps(model, x, c: int, region, methods: list[str], steps: int) -> dict:
    from neuralsight.viz.explain_seg import REGION_METHODS, region_attributions

    return {m: region_attributions(model, x, c, region, m, steps) for m in methods if m in REGION_METHODS}


# ---- segment (2D) ---------------------------------------------------------------------------------------

def explain_segment(saved, inputs: list[Path], out: Path, options: SegmentExplainOptions, class_names: list[str],
                    held_out) -> list[Path]:
    """Region attributions and feature maps of images (or item ``options.index`` of the held-out split: ``held_out()``
    gives its name and its ``SegArrays``). Only the image's own pixels count: the square padding is left out."""
    import torch

    from neuralsight.data.images import IMAGE_EXTS, fit_size, open_image, resize_pad
    from neuralsight.tasks.segmentation import MEAN, STD
    from neuralsight.viz.explain_seg import feature_stages, region_figure, stage_figure

    methods = parse_methods(options.method, ("gradcam", "ig", "features"), "segment")
    box, size = parse_box(options.box, 2), saved.cfg.data.image_size
    items = []                                        # (name, uint8 (S, S, 3), scale to S, (h, w) of the image)
    if inputs:
        for path in expand_inputs(inputs, IMAGE_EXTS):
            if not path.is_file():
                raise DataError(f"input {path} does not exist", "pass image files or a folder of images")
            image = open_image(path)
            items.append((path.stem, resize_pad(image, None, size)[0], size / max(image.shape[:2]),
                          fit_size(*image.shape[:2], size)))
    else:
        (split, val), i = held_out(), options.index or 0
        if not 0 <= i < len(val):
            raise UserError(f"--index {i} is outside the {split} split (0..{len(val) - 1})")
        h, w = val.sizes[i][:2]
        items.append((f"{split}{i}-{val.stems[i]}", val.images[i], size / max(h, w), fit_size(h, w, size)))
    model, out, written, captions = saved.model(), Path(out), [], {}
    for name, image, scale, (h, w) in items:
        x = ((torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 - MEAN) / STD).to(saved.device)
        with torch.no_grad():
            pred = model(x)[0].argmax(0).cpu()                  # (S, S)
        valid = _box_mask(pred.shape, (0, 0, h, w))             # the image, not its padding
        inside = valid if box is None else valid & _box_mask(pred.shape, tuple(round(v * scale) for v in
                                                                               (box[1], box[0], box[3], box[2])))
        c = choose_class(pred, class_names, options.class_name, inside)
        region = (pred == c) & valid if box is None else inside
        where = "its predicted region" if box is None else f"the box {options.box}"
        maps = _region_maps(model, x, c, region, methods, options.steps)
        if maps:
            path = region_figure(image[:h, :w], region[:h, :w].numpy(),
                                 {m: a[:h, :w].numpy() for m, a in maps.items()},
                                 f"{name}: which pixels make '{class_names[c]}' in {where}", out / f"{name}_region.png")
            written.append(path)
            captions[path.name] = (f"{name}: Grad-CAM and integrated gradients of the summed '{class_names[c]}' "
                                   f"logits in {where}")
        if "features" in methods:
            S = pred.shape[-1]  # each level cropped to the image (its padding left out), at that level's scale
            stages = [(n, t[:, :max(1, -(-h * t.shape[-2] // S)), :max(1, -(-w * t.shape[-1] // S))])
                      for n, t in feature_stages(model, x)]
            path = stage_figure(stages, f"{name}: U-Net feature maps, encoder down (halving the "
                                "size, doubling the channels), decoder up (each level reads its encoder's skip)",
                                out / f"{name}_stages.png")
            written.append(path)
            captions[path.name] = f"{name}: the U-Net's feature maps level by level"
    write_captions(out, captions)
    return written


# ---- segment3d ------------------------------------------------------------------------------------------

def explain_segment3d(saved, inputs: list[Path], out: Path, options: SegmentExplainOptions, class_names: list[str],
                      held_out, opts) -> list[Path]:
    """Region attributions on a patch around the structure, on orthogonal slices; the net's feature maps.

    ``held_out()`` gives the held-out cases (test; val for 0.1 runs); volume files given are read with ``opts``
    (``VolumeOptions``).
    """
    from neuralsight.data.volumes import VOLUME_SUFFIXES, load_case
    from neuralsight.tasks.segmentation import infer_logits
    from neuralsight.viz.explain_seg import centre, feature_stages, slices_figure, stage_figure

    methods = parse_methods(options.method, ("gradcam", "ig", "features"), "segment3d")
    box = parse_box(options.box, 3)
    if inputs:
        files = expand_inputs(inputs, VOLUME_SUFFIXES, within=("imagesTs", "imagesTr"))
        cases = [load_case(p, None, opts) for p in files]
    else:
        val, i = held_out(), options.index or 0
        if not 0 <= i < len(val):
            raise UserError(f"--index {i} is outside the held-out cases (0..{len(val) - 1})")
        cases = [val[i]]
    model, out, written, captions = saved.model(), Path(out), [], {}
    patch = list(saved.cfg.data.patch_size)
    for case in cases:
        image = case.image                                         # (C, D, H, W)
        pred = infer_logits(model, image, saved.cfg, saved.device).argmax(0)  # (D, H, W)
        inside = None if box is None else _box_mask(pred.shape, box)
        c = choose_class(pred, class_names, options.class_name, inside)
        full = (pred == c) if inside is None else inside
        at = centre(full.numpy())
        cut = tuple(slice(max(0, min(a - p // 2, s - p)), max(0, min(a - p // 2, s - p)) + p)
                    for a, p, s in zip(at, patch, pred.shape, strict=True))
        x, region = image[(slice(None), *cut)][None].to(saved.device), full[cut]
        where = "its predicted region" if inside is None else f"the box {options.box}"
        maps = _region_maps(model, x, c, region, methods, options.steps)
        name = case.name
        if maps:
            path = slices_figure(x[0, 0].cpu().numpy(), region.numpy(), {m: a.numpy() for m, a in maps.items()},
                                 f"{name}: which voxels make '{class_names[c]}' in {where} (patch "
                                 f"{'x'.join(str(s.stop - s.start) for s in cut)} at {at})", out / f"{name}_slices.png")
            written.append(path)
            captions[path.name] = (f"{name}: Grad-CAM and integrated gradients of the summed '{class_names[c]}' "
                                   f"logits in {where}, on orthogonal slices")
        if "features" in methods:
            path = stage_figure(feature_stages(model, x), f"{name}: feature maps of the patch, encoder down, "
                                "decoder up (middle axial slice)", out / f"{name}_stages.png")
            written.append(path)
            captions[path.name] = f"{name}: the 3D net's feature maps level by level"
    write_captions(out, captions)
    return written


# ---- forecast -------------------------------------------------------------------------------------------

def explain_forecast(task, saved, inputs: list[Path], out: Path, options: ForecastExplainOptions) -> list[Path]:
    """Attributions of each model's h-step forecast over the input window, and the recurrent models' gates.

    The forecast task's ``explain`` (``task`` is the task; its ``_saved`` gives the run's transform and models).
    The window ends at the end of the run's series (or of each CSV given), or at test origin ``options.index``.
    """
    import dataclasses

    from neuralsight.data.series import load_series, split_series, whole_series
    from neuralsight.models.forecaster import point_index
    from neuralsight.viz.explain_series import attribution_figure, recurrent_traces, window_attributions
    from neuralsight.viz.gates import choose_units, trace_heatmap

    methods = parse_methods(options.method, ("ig", "gradxinput", "gates"), "forecast")
    (transform, models, _), m, data = task._saved(saved), saved.cfg.model, saved.cfg.data
    step = options.horizon or min(7, m.horizon)
    if not 1 <= step <= m.horizon:
        raise UserError(f"--set horizon={step} is outside 1..{m.horizon}, the horizon this run forecasts")
    out, written, captions = Path(out), [], {}
    sources = [(p, p.stem) for p in expand_inputs(inputs, (".csv",))] if inputs else [(None, "series")]
    for path, stem in sources:
        cut = dataclasses.replace(data, start="", end="") if path else data
        series, raw = load_series(cut, csv_override=path)
        if options.index is None:
            p = whole_series(series, raw, transform, cut, m.input_window, m.horizon)
            origin = len(p.z) - 1
        else:
            p = split_series(series, cut, m.input_window, m.horizon, raw, transform=transform)
            origins = p.origins("test", m.horizon, data.origin_every)
            if not 0 <= options.index < len(origins):
                raise UserError(f"--index {options.index} is outside the test window's origins (0..{len(origins) - 1})")
            origin = int(origins[options.index])
        lo = origin - m.input_window + 1
        x = p.z[lo:origin + 1][None].to(saved.device)            # (1, W)
        dates, values = p.series.dates[lo:origin + 1], p.values[lo:origin + 1]
        name = f"{stem}-{dates[-1]}"
        for method in (k for k in methods if k != "gates"):
            maps = {kind: window_attributions(model, x, step, point_index(m.quantiles), method, options.steps)
                    .numpy() for kind, model in models.items()}
            target = out / f"{name}_{method}.png"
            written.append(attribution_figure(dates, values, maps, method, step, target,
                                              f"{series.name}: the input window up to {dates[-1]}"))
            captions[target.name] = (f"which input days decide each model's {step}-step forecast from {dates[-1]} "
                                     f"({method})")
        for kind, model in models.items():
            if "gates" in methods and kind in ("lstm", "gru", "rnn"):
                traces = recurrent_traces(model, x)
                target = out / f"{name}_gates_{kind}.png"
                labels = [f"{d:%m-%d}" if hasattr(d, "month") else str(d) for d in dates]
                written.append(trace_heatmap(labels, traces, choose_units(traces, 8), target))
                captions[target.name] = f"the {kind.upper()}'s gates along the input window up to {dates[-1]}"
    write_captions(out, captions)
    return written
