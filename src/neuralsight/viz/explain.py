"""Which pixels decide? Attributions (captum) and feature maps for CNN classifiers.

- ``saliency``: |d score / d pixel| (Simonyan et al. 2014, "Deep Inside Convolutional Networks").
- ``gradcam``: Grad-CAM on the last conv stage (Selvaraju et al. 2017), upsampled to the input.
- ``occlusion``: the score drop when a patch is greyed out (Zeiler & Fergus 2014).
- ``features``: the activations of every conv stage (first 16 channels each).

A model provides, as ``models.cnn.CNN`` does (timm's classifier interface): ``forward`` (inputs in [0, 1]
to logits, its own normalisation inside), ``forward_intermediates`` (the output of every conv stage),
``gradcam_layer`` (the layer Grad-CAM reads) and ``predict_proba``.
"""

from __future__ import annotations

from pathlib import Path

METHODS = ("saliency", "gradcam", "occlusion", "features")


def attributions(model, x, target, method: str):
    """Attribution maps ``(B, H, W)`` (non-negative, per-image normalised to [0, 1]).

    Args:
        model: a classifier in eval mode (see the module docstring).
        x: ``(B, C, H, W)`` inputs in [0, 1].
        target: ``(B,)`` class indices to explain.
        method: ``saliency``, ``gradcam`` or ``occlusion``.
    """
    try:
        from captum.attr import LayerAttribution, LayerGradCam, Occlusion, Saliency
    except ImportError as err:  # pragma: no cover - captum is a dependency
        from neuralsight.errors import UserError

        raise UserError("explain needs captum", "pip install captum") from err
    x = x.clone().requires_grad_(method == "saliency")
    if method == "saliency":
        attr = Saliency(model).attribute(x, target=target, abs=True).amax(1)  # (B, H, W)
    elif method == "gradcam":
        cam = LayerGradCam(model, model.gradcam_layer).attribute(x, target=target, relu_attributions=True)  # (B, 1, h, w)
        attr = LayerAttribution.interpolate(cam, x.shape[-2:], interpolate_mode="bilinear")[:, 0]
    elif method == "occlusion":
        side = max(2, x.shape[-1] // 7)
        attr = Occlusion(model).attribute(x, target=target, sliding_window_shapes=(x.shape[1], side, side),
                                          strides=(x.shape[1], max(1, side // 2), max(1, side // 2)),
                                          baselines=0.0).sum(1).clamp_min(0)
    else:
        raise ValueError(f"unknown attribution method {method!r}")
    attr = attr.detach().float()
    top = attr.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return attr / top


def feature_maps(model, x) -> list:
    """Output of each conv stage for one input ``(1, C, H, W)``: list of ``(C_i, H_i, W_i)`` tensors."""
    import torch

    with torch.no_grad():
        return [h[0].float() for h in model.forward_intermediates(x)]


def explain_images(model, x, names: list[str], classes: list[str], methods: list[str], out: Path) -> list[Path]:
    """Write one PNG per input with the image and each attribution, plus feature-map PNGs; returns paths."""
    from neuralsight.viz.figures import plt, save

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    prob = model.predict_proba(x)  # (B, K)
    pred = prob.argmax(-1)
    attr_methods = [m for m in methods if m != "features"]
    maps = {m: attributions(model, x, pred, m) for m in attr_methods}
    written = []
    p = plt()
    for b, name in enumerate(names):
        img = x[b].permute(1, 2, 0).numpy()
        img = img[..., 0] if img.shape[-1] == 1 else img
        if attr_methods:
            fig, axes = p.subplots(1, 1 + len(attr_methods), figsize=(3 * (1 + len(attr_methods)), 3.3), squeeze=False)
            axes[0, 0].imshow(img, cmap="gray" if img.ndim == 2 else None)
            axes[0, 0].set_title(f"{classes[int(pred[b])]} ({100 * float(prob[b, pred[b]]):.0f}%)", fontsize=9)
            for ax, m in zip(axes[0, 1:], attr_methods, strict=True):
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
                ax.imshow(maps[m][b].numpy(), cmap="jet", alpha=0.5)
                ax.set_title(m, fontsize=9)
            for ax in axes.flat:
                ax.set_xticks([])
                ax.set_yticks([])
            written.append(save(fig, out / f"{name}_attributions.png"))
        if "features" in methods:
            stage_maps = feature_maps(model, x[b:b + 1])
            fig, axes = p.subplots(len(stage_maps), 16, figsize=(16 * 0.9, len(stage_maps) * 1.1), squeeze=False)
            for s, fm in enumerate(stage_maps):
                for c in range(16):
                    ax = axes[s, c]
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if c < fm.shape[0]:
                        ax.imshow(fm[c].numpy(), cmap="viridis")
                    else:
                        ax.axis("off")
                axes[s, 0].set_ylabel(f"stage {s + 1}\n{'x'.join(str(v) for v in fm.shape)}", fontsize=7)
            fig.suptitle(f"{name}: feature maps of each conv stage (first 16 channels)", fontsize=9)
            written.append(save(fig, out / f"{name}_features.png"))
    return written
