"""Which pixels decide a segmented region? Region attributions and encoder-decoder feature maps, 2D and 3D.

- :func:`region_attributions`: Grad-CAM (Selvaraju et al. 2017) on the network's ``gradcam_layer`` and
  integrated gradients (Sundararajan et al. 2017, a zero baseline in the network's normalised input space) of
  one score: the logits of one class summed over a region (the predicted region of that class, or a box), as
  Vinogradova et al. (2020, "Towards Interpretable Semantic Segmentation via Gradient-weighted Class Activation
  Mapping") do for segmentation. Both through captum.
- :func:`region_figure` (2D: input | region | each map over the input) and :func:`slices_figure` (3D: the
  same on axial, coronal and sagittal slices through the region's centre).
- :func:`stage_figure`: the U-Net's / V-Net's feature maps level by level, encoder down then decoder up (a
  model's ``forward_intermediates``), so the encoder-decoder shape and the skip connections can be seen.
"""

from __future__ import annotations

from pathlib import Path

from neuralsight.viz.figures import plt, save

REGION_METHODS = ("gradcam", "ig")
TITLES = {"gradcam": "Grad-CAM", "ig": "integrated gradients"}


def region_score(model, class_index: int, region):
    """``f(x) -> (B,)``: the class-``class_index`` logits of ``model(x)`` summed over ``region`` (bool ``(*S)``)."""
    def score(x):
        logits = model(x)                                            # (B, K, *S)
        return (logits[:, class_index] * region.to(logits.dtype)).flatten(1).sum(1)  # (B,)
    return score


def region_attributions(model, x, class_index: int, region, method: str, steps: int = 24):
    """A non-negative attribution map ``(*S)`` (float32, CPU) of the region score for one input.

    Args:
        model: a segmentation net in eval mode; ``gradcam`` needs its ``gradcam_layer``.
        x: ``(1, C, *S)`` the network's (normalised) input, 2D or 3D.
        class_index: the class whose logits are summed.
        region: bool ``(*S)``; the score only reads logits there.
        method: ``gradcam`` (upsampled to ``S``) or ``ig`` (|attribution| summed over channels).
        steps: integration steps of ``ig``.
    """
    import torch
    import torch.nn.functional as F

    try:
        from captum.attr import IntegratedGradients, LayerGradCam
    except ImportError as err:  # pragma: no cover - captum is a dependency
        from neuralsight.errors import UserError

        raise UserError("explain needs captum", "pip install captum") from err
    score = region_score(model, class_index, region.to(x.device))
    if method == "gradcam":
        cam = LayerGradCam(score, model.gradcam_layer).attribute(x, relu_attributions=True)  # (1, 1, *s)
        mode = "bilinear" if x.dim() == 4 else "trilinear"
        attr = F.interpolate(cam.float(), size=tuple(x.shape[2:]), mode=mode, align_corners=False)[0, 0]
        attr = attr.clamp_min(0)
    elif method == "ig":
        attr = IntegratedGradients(score).attribute(x, baselines=torch.zeros_like(x), n_steps=steps,
                                                    internal_batch_size=min(steps, 8))
        attr = attr[0].abs().sum(0)                                  # (*S)
    else:
        raise ValueError(f"unknown region attribution method {method!r}")
    return attr.detach().float().cpu()


def mass_inside(attr, region) -> float:
    """The share of the attribution's total inside ``region`` (1.0 when the map is all zero)."""
    total = float(attr.sum())
    return 1.0 if total <= 0 else float(attr[region].sum()) / total


def _unit(attr):
    top = float(attr.max())
    return attr / top if top > 0 else attr


def _clean(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def region_figure(image, region, maps: dict, title: str, path: Path) -> Path:
    """2D: the input, the explained region (red) over it, then each attribution map over the input.

    Args:
        image: ``(H, W, 3)`` uint8 or float in [0, 1]; region: bool ``(H, W)``; maps: method -> ``(H, W)``.
    """
    import numpy as np

    region = np.asarray(region)
    p = plt()
    fig, axes = p.subplots(1, 2 + len(maps), figsize=(3.1 * (2 + len(maps)), 3.5), squeeze=False)
    axes[0, 0].imshow(image)
    axes[0, 0].set_title("input", fontsize=9)
    axes[0, 1].imshow(image)
    axes[0, 1].imshow(np.ma.masked_where(~region, region), cmap="autumn", alpha=0.5, vmin=0, vmax=1)
    axes[0, 1].set_title(f"explained region ({int(region.sum())} px)", fontsize=9)
    for ax, (method, attr) in zip(axes[0, 2:], maps.items(), strict=True):
        ax.imshow(image)
        ax.imshow(_unit(np.asarray(attr)), cmap="jet", alpha=0.5, vmin=0, vmax=1)
        ax.contour(region, levels=[0.5], colors="white", linewidths=0.8)
        ax.set_title(f"{TITLES.get(method, method)}\n{100 * mass_inside(np.asarray(attr), region):.0f}% inside "
                     "the region", fontsize=9)
    for ax in axes.flat:
        _clean(ax)
    fig.tight_layout()
    fig.suptitle(title, fontsize=10, y=1.03)
    return save(fig, path)


def centre(region) -> tuple[int, ...]:
    """The voxel nearest the region's centre of mass (the volume's centre when the region is empty)."""
    import numpy as np

    region = np.asarray(region)
    idx = np.argwhere(region)
    if len(idx) == 0:
        return tuple(s // 2 for s in region.shape)
    return tuple(int(round(v)) for v in idx.mean(0))


def _planes(volume, at: tuple[int, int, int]) -> list:
    d, h, w = at
    return [volume[d], volume[:, h], volume[:, :, w]]   # axial (H, W), coronal (D, W), sagittal (D, H)


def slices_figure(image, region, maps: dict, title: str, path: Path) -> Path:
    """3D: rows axial / coronal / sagittal through the region's centre; columns input, region, each map.

    Args:
        image: ``(D, H, W)`` float; region: bool ``(D, H, W)``; maps: method -> ``(D, H, W)``.
    """
    import numpy as np

    image, region = np.asarray(image, dtype=np.float32), np.asarray(region)
    at = centre(region)
    units = {m: _unit(np.asarray(a)) for m, a in maps.items()}
    p = plt()
    cols = 2 + len(maps)
    fig, axes = p.subplots(3, cols, figsize=(2.8 * cols, 8.2), squeeze=False)
    for r, name in enumerate(("axial", "coronal", "sagittal")):
        img, reg = _planes(image, at)[r], _planes(region, at)[r]
        axes[r, 0].imshow(img, cmap="gray")
        axes[r, 0].set_ylabel(f"{name}\n{'dhw'[r]} = {at[r]}", fontsize=8)
        axes[r, 1].imshow(img, cmap="gray")
        axes[r, 1].imshow(np.ma.masked_where(~reg, reg), cmap="autumn", alpha=0.5, vmin=0, vmax=1)
        for c, method in enumerate(maps, start=2):
            axes[r, c].imshow(img, cmap="gray")
            axes[r, c].imshow(_planes(units[method], at)[r], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            if reg.any():
                axes[r, c].contour(reg, levels=[0.5], colors="white", linewidths=0.8)
    axes[0, 0].set_title("input", fontsize=9)
    axes[0, 1].set_title(f"explained region ({int(region.sum())} voxels)", fontsize=9)
    for c, (method, attr) in enumerate(maps.items(), start=2):
        axes[0, c].set_title(f"{TITLES.get(method, method)}\n{100 * mass_inside(np.asarray(attr), region):.0f}% "
                             "inside the region", fontsize=9)
    for ax in axes.flat:
        _clean(ax)
    fig.tight_layout()
    fig.suptitle(title, fontsize=10, y=1.03)
    return save(fig, path)


def stage_figure(stages: list, title: str, path: Path, channels: int = 6) -> Path:
    """Feature maps level by level: one row per ``(name, (C, *S))`` stage (encoder down, then decoder up).

    Each row shows the mean |activation| over channels, then the first ``channels`` channels; 3D maps are cut
    through their middle (axial). The row label gives the map's shape and, for a decoder level, the skip it read.
    """
    import numpy as np

    p = plt()
    fig, axes = p.subplots(len(stages), channels + 1, figsize=(1.25 * (channels + 1) + 1.2, 1.3 * len(stages)),
                           squeeze=False)
    for r, (name, fm) in enumerate(stages):
        fm = np.asarray(fm, dtype=np.float32)
        if fm.ndim == 4:                                     # (C, D, H, W): the middle axial slice
            fm = fm[:, fm.shape[1] // 2]
        axes[r, 0].imshow(np.abs(fm).mean(0), cmap="magma")
        for c in range(channels):
            if c < fm.shape[0]:
                axes[r, c + 1].imshow(fm[c], cmap="viridis")
            else:
                axes[r, c + 1].axis("off")
        skip = f"\n+ skip of encoder {name.split()[-1]}" if name.startswith("decoder") else ""
        axes[r, 0].set_ylabel(f"{name}\n{fm.shape[0]} x {'x'.join(map(str, fm.shape[1:]))}{skip}", fontsize=7)
        for ax in axes[r]:
            _clean(ax)
    axes[0, 0].set_title("mean |a|", fontsize=8)
    for c in range(channels):
        axes[0, c + 1].set_title(f"channel {c}", fontsize=8)
    fig.tight_layout()
    fig.suptitle(title, fontsize=10, y=1.03)
    return save(fig, path)


def feature_stages(model, x) -> list:
    """``[(name, (C, *S) tensor), ...]`` of ``model.forward_intermediates`` for one input ``(1, C, *S)``."""
    import torch

    with torch.no_grad():
        return [(name, h[0].float().cpu()) for name, h in model.forward_intermediates(x)]
