"""Volumes for 3D segmentation: NIfTI (Decathlon layout or folder pairs) and NumPy, kept as tensors.

A volume is read once, checked, optionally resampled to a target spacing, normalised, and kept in
memory as a tensor together with its affine and voxel spacing (so millimetres, and the affine of a
predicted label file, survive end to end). Training patches are cut from these tensors on the device,
foreground-biased with a configurable ratio (augmentation: :func:`neuralsight.data.augment.augment_volumes`),
using the global torch RNG so resumed runs repeat exactly. :func:`split_cases` splits by case.

Array axes are the file's voxel axes ``(X, Y, Z)`` of NIfTI, written ``(D, H, W)`` on tensors.
Layouts understood by :func:`find_cases`:

- Medical Segmentation Decathlon: ``imagesTr/*.nii.gz`` + ``labelsTr/*.nii.gz`` (same names),
  optional ``dataset.json`` whose ``"labels"`` names the classes;
- folder pairs: ``images/`` + ``labels/`` (or ``masks/``), same file names;
- NumPy: ``.npy`` arrays, or ``.npz`` with an ``image``/``label`` (or single) array and optional
  ``affine``/``spacing`` arrays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuralsight.data.splits import SEED, TEST_FRACTION, VAL_FRACTION, Splits, split_groups
from neuralsight.errors import DataError

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".npy", ".npz")
PAIR_LAYOUTS = (("imagesTr", "labelsTr"), ("images", "labels"), ("images", "masks"))


def volume_suffix(path: Path) -> str | None:
    name = Path(path).name.lower()
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return None


def case_name(path: Path) -> str:
    suffix = volume_suffix(path) or Path(path).suffix
    return Path(path).name[: len(Path(path).name) - len(suffix)] if suffix else Path(path).stem


@dataclass
class Volume:
    """One volume as read from disk.

    Attributes:
        data: ``(D, H, W)`` or ``(D, H, W, C)`` NumPy array as stored.
        affine: ``(4, 4)`` voxel -> world (mm) matrix.
        spacing: voxel size in mm per axis.
        path: the file it came from.
        header: the NIfTI header (None for NumPy files), reused when writing predictions.
    """

    data: Any
    affine: Any
    spacing: tuple[float, float, float]
    path: Path
    header: Any = None


def _spacing_from_affine(affine) -> tuple[float, float, float]:
    import numpy as np

    return tuple(float(v) for v in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(0)))


def read_volume(path: Path | str, role: str = "image") -> Volume:
    """Read a ``.nii``/``.nii.gz``/``.npy``/``.npz`` volume; every failure is a :class:`DataError` naming the file."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{role} file {path} does not exist", "check the path")
    suffix = volume_suffix(path)
    if suffix is None:
        raise DataError(f"{path} is not a volume file", f"expected one of {', '.join(VOLUME_SUFFIXES)}")
    try:
        if suffix in (".nii", ".nii.gz"):
            import nibabel as nib

            img = nib.load(str(path))
            data = np.asanyarray(img.dataobj)  # reads (and decompresses) the whole file
            affine = np.asarray(img.affine, dtype=np.float64)
            zooms = img.header.get_zooms()[:3]
            spacing = tuple(float(z) for z in zooms) if len(zooms) == 3 else _spacing_from_affine(affine)
            header = img.header
        else:
            affine = None
            spacing = None
            header = None
            if suffix == ".npy":
                data = np.load(path, allow_pickle=False)
            else:
                with np.load(path, allow_pickle=False) as z:
                    keys = list(z.keys())
                    key = role if role in keys else next((k for k in ("image", "label", "data", "arr_0")
                                                          if k in keys), keys[0] if keys else None)
                    if key is None:
                        raise DataError(f"{path} holds no arrays", "save the volume with np.savez(path, image=...)")
                    data = z[key]
                    if "affine" in keys:
                        affine = np.asarray(z["affine"], dtype=np.float64)
                    if "spacing" in keys:
                        spacing = tuple(float(s) for s in np.asarray(z["spacing"]).ravel()[:3])
            if affine is None:
                affine = np.diag([*(spacing or (1.0, 1.0, 1.0)), 1.0])
            spacing = spacing or _spacing_from_affine(affine)
    except DataError:
        raise
    except Exception as err:  # nibabel, gzip, zlib and numpy all raise their own types for bad files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"cannot read {role} {path}: {reason}",
                        "the file is corrupt or truncated; re-download or re-export it") from err
    if data.ndim not in (3, 4) or (role == "label" and data.ndim != 3):
        want = "3 dimensions (X, Y, Z)" if role == "label" else "3 dimensions (X, Y, Z) or 4 with channels last"
        raise DataError(f"{role} {path} has {data.ndim} dimensions {tuple(data.shape)}; expected {want}",
                        "pass a 3D volume")
    if np.asarray(affine).shape != (4, 4):
        raise DataError(f"{path}: affine must be 4x4, got shape {np.asarray(affine).shape}")
    return Volume(data=data, affine=affine, spacing=tuple(spacing), path=path, header=header)


def check_label(label: Volume, image: Volume):
    """The label as int64 after checking its shape matches the image and its values are integers."""
    import numpy as np

    if tuple(label.data.shape[:3]) != tuple(image.data.shape[:3]):
        raise DataError(f"label {label.path} has shape {tuple(label.data.shape)} but image {image.path} has "
                        f"{tuple(image.data.shape[:3])}", "labels must match their image voxel for voxel")
    data = np.asarray(label.data)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.isfinite(data).all() or not np.array_equal(data, np.round(data)):
            bad = data[~(np.isfinite(data) & (data == np.round(data)))]
            raise DataError(f"label {label.path} holds non-integer values (e.g. {float(bad.flat[0]):g})",
                            "labels must be class indices 0, 1, 2, ...; save them as integers")
    data = data.astype(np.int64)
    if data.min(initial=0) < 0:
        raise DataError(f"label {label.path} holds negative values", "labels must be class indices 0, 1, 2, ...")
    return data


def find_cases(folder: Path | str) -> list[tuple[str, Path, Path | None]]:
    """``(name, image, label or None)`` for every case under ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist", "pass --data DIR with imagesTr/ and labelsTr/")
    layouts = [(i, lab) for i, lab in PAIR_LAYOUTS if (folder / i).is_dir() and (folder / lab).is_dir()]
    layouts += [(i, lab) for i, lab in PAIR_LAYOUTS if (folder / i).is_dir()]
    for img_dir, lab_dir in layouts[:1]:
        if (folder / img_dir).is_dir():
            images = sorted(p for p in (folder / img_dir).iterdir()
                            if volume_suffix(p) and not p.name.startswith("."))
            if not images:
                raise DataError(f"{folder / img_dir} holds no volumes", f"expected {', '.join(VOLUME_SUFFIXES)} files")
            labels = {case_name(p): p for p in (folder / lab_dir).iterdir()
                      if volume_suffix(p) and not p.name.startswith(".")} if (folder / lab_dir).is_dir() else {}
            return [(case_name(p), p, labels.get(case_name(p))) for p in images]
    raise DataError(f"{folder} has no volume layout",
                    "expected imagesTr/ + labelsTr/ (Medical Segmentation Decathlon) or images/ + labels/")


def label_names(folder: Path | str, num_classes: int, fallback: Sequence[str] = ()) -> list[str]:
    """Class names from a Decathlon ``dataset.json`` (``{"labels": {"0": "background", ...}}``) if present.

    Without one, ``fallback`` (the catalog entry's ``class_names``) when it names ``num_classes`` classes,
    else ``background, class 1, class 2, ...``.
    """
    names = ["background"] + [f"class {i}" for i in range(1, num_classes)]
    if len(fallback) == num_classes:
        names = list(fallback)
    path = Path(folder) / "dataset.json"
    if path.is_file():
        try:
            labels = json.loads(path.read_text()).get("labels", {})
        except (json.JSONDecodeError, AttributeError) as err:
            raise DataError(f"{path} is not valid JSON: {err}", "fix or remove dataset.json") from err
        for key, value in labels.items():
            if str(key).isdigit() and int(key) < num_classes:
                names[int(key)] = str(value)
    return names


def split_cases(names: Iterable[str], val_fraction: float = VAL_FRACTION, test_fraction: float = TEST_FRACTION,
                seed: int = SEED) -> Splits[str]:
    """Case names in train / val / test (each case one group; see :func:`neuralsight.data.splits.split_groups`).

    Defaults: ``val_fraction = 0.15``, ``test_fraction = 0.15``, ``seed = 0`` (260 hippocampus cases:
    182 / 39 / 39). The split depends on the set of names only, not on the order they were found in.
    """
    return split_groups(names, val_fraction, test_fraction, seed, unit="case")


def legacy_split_cases(names: Iterable[str], val_fraction: float, seed: int) -> Splits[str]:
    """The two-way split neuralsight 0.1 trained on (its runs keep it): sorted names permuted by a torch
    generator seeded ``seed``; the last ``round(val_fraction * n)`` (at least one) validate, no test part."""
    import torch

    names = sorted(names)
    perm = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = int(round(len(names) * val_fraction)) if val_fraction > 0 else 0
    if len(names) > 1:
        n_val = min(max(n_val, 1 if val_fraction > 0 else 0), len(names) - 1)
    val = sorted(names[i] for i in perm[len(names) - n_val:]) if n_val else []
    train = sorted(names[i] for i in perm[: len(names) - n_val])
    return Splits(train, val, [], "case", f"as 0.1 split it: {len(train)} train / {len(val)} val cases, no test")


# --- preprocessing ---------------------------------------------------------------------------------------


def normalize(image, mode: str = "zscore", window: tuple[float, float] | list[float] | None = None):
    """Intensity normalisation of ``(C, D, H, W)``: per-channel z-score, or CT windowing to ``[0, 1]``."""
    import torch

    if mode == "zscore":
        flat = image.flatten(1)
        mean = flat.mean(1).view(-1, 1, 1, 1)
        std = flat.std(1).clamp_min(1e-6).view(-1, 1, 1, 1)
        return (image - mean) / std
    if mode == "window":
        if window is None or len(window) != 2 or window[1] <= window[0]:
            raise ValueError(f"window needs [low, high] with high > low, got {window}")
        lo, hi = float(window[0]), float(window[1])
        return (torch.clamp(image, lo, hi) - lo) / (hi - lo)
    if mode == "none":
        return image
    raise ValueError(f"normalize mode must be zscore, window or none, got {mode!r}")


def resample(image, spacing, target, affine=None, label: bool = False):
    """Resample ``(C, D, H, W)`` from ``spacing`` to ``target`` mm; returns ``(tensor, affine)``.

    Images use trilinear interpolation, labels nearest neighbour. The affine's columns are scaled so the
    new voxel grid covers the same world box (voxel centres keep their origin).
    """
    import numpy as np
    import torch.nn.functional as F

    size = [max(1, round(n * s / t)) for n, s, t in zip(image.shape[1:], spacing, target, strict=True)]
    x = image[None].float()
    if label:
        out = F.interpolate(x, size=size, mode="nearest")[0].to(image.dtype)
    else:
        out = F.interpolate(x, size=size, mode="trilinear", align_corners=False)[0]
    new_affine = None
    if affine is not None:
        scale = [o / n for o, n in zip(image.shape[1:], size, strict=True)]
        new_affine = np.array(affine, dtype=np.float64)
        new_affine[:3, :3] = new_affine[:3, :3] @ np.diag(scale)
    return out, new_affine


def pad_to(x, size, value: float = 0.0):
    """Pad the last three dims of ``x`` at the end up to at least ``size``."""
    import torch.nn.functional as F

    pad = [max(0, s - n) for n, s in zip(x.shape[-3:], size, strict=True)]
    if not any(pad):
        return x
    return F.pad(x, [p for d in reversed(pad) for p in (0, d)], value=value)


def pad_to_multiple(x, multiple: int, value: float = 0.0):
    """Pad the last three dims up to a multiple of ``multiple``; returns ``(padded, original_size)``."""
    size = tuple(x.shape[-3:])
    return pad_to(x, [math.ceil(n / multiple) * multiple for n in size], value), size


def crop_to(x, size):
    """Crop the last three dims of ``x`` back to ``size`` (the inverse of :func:`pad_to`)."""
    return x[(...,) + tuple(slice(0, s) for s in size)]


# --- the in-memory case set --------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    image: Any                 # (C, D, H, W) float32, normalised
    label: Any | None          # (D, H, W) uint8 or None
    affine: Any                # (4, 4) affine of the (possibly resampled) grid
    spacing: tuple[float, float, float]
    source_affine: Any = None  # affine of the file on disk
    source_shape: tuple = ()
    source_spacing: tuple = ()
    header: Any = None
    path: Path | None = None


@dataclass
class VolumeOptions:
    normalize: str = "zscore"
    window: list[float] | None = None
    target_spacing: list[float] | None = None

    @classmethod
    def of(cls, data: Any) -> VolumeOptions:
        """The options a task's data config (``normalize``, ``window``, ``target_spacing``) asks for."""
        return cls(normalize=data.normalize, window=list(data.window) or None,
                   target_spacing=list(data.target_spacing) or None)


def load_case(image_path: Path, label_path: Path | None, opts: VolumeOptions | None = None,
              name: str | None = None) -> Case:
    """Read, check, resample and normalise one case into tensors."""
    import numpy as np
    import torch

    opts = opts or VolumeOptions()
    img = read_volume(image_path, "image")
    data = np.asarray(img.data, dtype=np.float32)
    if not np.isfinite(data).all():
        raise DataError(f"image {image_path} holds NaN or infinite values", "fix the file")
    image = torch.from_numpy(data[None] if data.ndim == 3 else np.moveaxis(data, -1, 0).copy())  # (C, D, H, W)
    label = None
    if label_path is not None:
        lab = read_volume(label_path, "label")
        label = torch.from_numpy(check_label(lab, img))[None]  # (1, D, H, W)
        if int(label.max()) > 255:
            raise DataError(f"label {label_path} has class {int(label.max())}", "at most 255 classes are supported")
        label = label.to(torch.uint8)
    affine, spacing = img.affine, img.spacing
    if opts.target_spacing:
        target = tuple(float(t) for t in opts.target_spacing)
        if any(abs(a - b) > 1e-3 for a, b in zip(spacing, target, strict=True)):
            image, affine = resample(image, spacing, target, img.affine)
            if label is not None:
                label, _ = resample(label, spacing, target, label=True)
            spacing = target
    image = normalize(image.float(), opts.normalize, opts.window).contiguous()
    return Case(name=name or case_name(image_path), image=image, label=None if label is None else label[0],
                affine=affine, spacing=tuple(float(s) for s in spacing), source_affine=img.affine,
                source_shape=tuple(img.data.shape[:3]), source_spacing=tuple(img.spacing), header=img.header, path=Path(image_path))


def load_cases(folder: Path | str, opts: VolumeOptions | None = None, require_labels: bool = True,
               limit: int | None = None) -> list[Case]:
    """Every case of a dataset folder (labels required for training)."""
    found = find_cases(folder)
    if require_labels:
        missing = [str(img) for _, img, lab in found if lab is None]
        if missing:
            raise DataError(f"{len(missing)} image(s) have no label, e.g. {missing[0]}",
                            "put a label with the same file name in labelsTr/ (or labels/)")
    if limit:
        found = found[:limit]
    return [load_case(img, lab, opts, name) for name, img, lab in found]


@dataclass
class PatchSampler:
    """Cut training patches from in-memory cases on the device.

    Each case is padded once to at least the patch size. A patch is centred on a random foreground voxel
    with probability ``foreground_ratio`` (nnU-Net uses 1/3), else placed uniformly at random.
    """

    images: list                      # per case (C, D, H, W) on the device
    labels: list                      # per case (D, H, W) uint8 on the device
    patch_size: tuple[int, int, int]
    foreground_ratio: float = 0.33
    _fg: list = field(default_factory=list)

    @classmethod
    def from_cases(cls, cases: list[Case], patch_size, device, foreground_ratio: float = 0.33) -> PatchSampler:
        patch_size = tuple(int(p) for p in patch_size)
        images = [pad_to(c.image, patch_size).to(device) for c in cases]
        labels = [pad_to(c.label, patch_size).to(device) for c in cases]
        sampler = cls(images, labels, patch_size, foreground_ratio)
        sampler._fg = [lab.nonzero() for lab in labels]  # (N_fg, 3) coordinates per case
        return sampler

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, indices) -> tuple[Any, Any]:
        """Patches for the given case indices: ``(B, C, *patch)`` float and ``(B, *patch)`` long."""
        import torch

        xs, ys = [], []
        p = torch.tensor(self.patch_size)
        for i in indices.tolist():
            img, lab, fg = self.images[i], self.labels[i], self._fg[i]
            shape = torch.tensor(lab.shape)
            hi = shape - p  # inclusive upper bound of a corner
            if len(fg) and float(torch.rand(())) < self.foreground_ratio:
                centre = fg[int(torch.randint(len(fg), ()))].cpu()
                corner = torch.minimum(torch.clamp(centre - p // 2, min=0), hi)
            else:
                corner = (torch.rand(3) * (hi + 1).float()).long()
            sl = tuple(slice(int(c), int(c) + int(s)) for c, s in zip(corner, p, strict=True))
            xs.append(img[(slice(None),) + sl])
            ys.append(lab[sl])
        return torch.stack(xs), torch.stack(ys).long()  # (B, C, *patch), (B, *patch)


@dataclass
class Augment:
    """Transitional: tasks/segment3d.py builds this until it calls
    :func:`neuralsight.data.augment.augment_volumes` with a ``VolumeAugmentConfig`` (same fields, same
    draws); remove with that caller.
    """

    flip_prob: float = 0.5
    flip_axes: tuple[int, ...] = (0, 1, 2)
    spatial_prob: float = 0.2
    rotate: float = 15.0
    scale: float = 0.15
    intensity_prob: float = 0.5
    intensity_shift: float = 0.1
    intensity_scale: float = 0.1

    def __call__(self, x, y):
        from neuralsight.data.augment import VolumeAugmentConfig, augment_volumes

        return augment_volumes(x, y, VolumeAugmentConfig(**vars(self)))


# --- writing -----------------------------------------------------------------------------------------------


def write_label_nifti(path: Path, label, affine, header=None) -> Path:
    """Write an integer label volume ``(D, H, W)`` as NIfTI with the given affine (and header), atomically."""
    import nibabel as nib
    import numpy as np

    from neuralsight.io import atomic_path

    data = np.asarray(label).astype(np.uint8)
    if header is not None:
        hdr = header.copy()
        hdr.set_data_dtype(np.uint8)
        img = nib.Nifti1Image(data, np.asarray(affine), hdr)
        img.header.set_slope_inter(1, 0)
    else:
        img = nib.Nifti1Image(data, np.asarray(affine))
    path = Path(path)
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else ".nii"
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp) + suffix)
        Path(str(tmp) + suffix).replace(tmp)
    return path
