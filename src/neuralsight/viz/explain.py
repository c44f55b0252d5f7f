"""Which pixels decide? Attributions (captum) and feature maps for CNN classifiers.

- ``saliency``: |d score / d pixel| (Simonyan et al. 2014, "Deep Inside Convolutional Networks").
- ``gradcam``: Grad-CAM on the last conv stage (Selvaraju et al. 2017), upsampled to the input.
- ``occlusion``: the score drop when a patch is greyed out (Zeiler & Fergus 2014).
- ``features``: the activations of every conv stage (first 16 channels each).
- ``kernels``: the learned first-layer kernels as a grid (:func:`kernel_grid`; once per call).
- ``head``: where the prediction comes from (:func:`head_figure`): the flattened feature vector, the logits
  the dense layers make of it, and their softmax, whose probabilities sum to one.

A model provides, as ``models.cnn.CNN`` does (timm's classifier interface): ``forward`` (inputs in [0, 1]
to logits, its own normalisation inside), ``forward_intermediates`` (the output of every conv stage),
``gradcam_layer`` (the layer Grad-CAM reads) and ``predict_proba``.
"""

from __future__ import annotations

from pathlib import Path

METHODS = ("saliency", "gradcam", "occlusion", "features", "kernels", "head")
ATTRIBUTIONS = ("saliency", "gradcam", "occlusion")


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
    attr_methods = [m for m in methods if m in ATTRIBUTIONS]
    maps = {m: attributions(model, x, pred, m) for m in attr_methods}
    written = [kernel_grid(model, out / "kernels.png")] if "kernels" in methods else []
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
        if "head" in methods:
            written.append(head_figure(model, x[b:b + 1], classes, out / f"{name}_head.png", name))
    return written


def first_conv(model):
    """The model's first convolution (``nn.Conv2d``)."""
    from torch import nn

    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError("the model has no 2D convolution")
    return conv


def kernel_grid(model, path: Path, limit: int = 64) -> Path:
    """The first layer's learned kernels, one tile per output channel (RGB for 3 input channels, else the mean
    over input channels), each scaled to its own range, with its size in the title."""

    from neuralsight.viz.figures import grid_axes, save

    w = first_conv(model).weight.detach().float().cpu()          # (O, I, k, k)
    n = min(limit, w.shape[0])
    fig, axes = grid_axes(n, 8, 1.1, 0.5)
    for k, ax in enumerate(axes):
        kern = w[k].permute(1, 2, 0) if w.shape[1] == 3 else w[k].mean(0)
        lo, hi = float(kern.min()), float(kern.max())
        ax.imshow(((kern - lo) / max(hi - lo, 1e-12)).numpy(), cmap=None if kern.dim() == 3 else "gray",
                  interpolation="nearest")
    fig.suptitle(f"first-layer kernels: {n} of {w.shape[0]}, {w.shape[2]}x{w.shape[3]} over {w.shape[1]} input "
                 "channel(s)", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def head_figure(model, x, classes: list[str], path: Path, name: str = "") -> Path:
    """Where the prediction of one input ``(1, C, H, W)`` comes from: the input, the flattened feature vector,
    the logits and the softmax probabilities (bars; the predicted class highlighted; they sum to one)."""
    import torch

    from neuralsight.viz.figures import plt, save

    with torch.no_grad():
        flat = model.forward_features(x).flatten(1)[0].float().cpu()   # (F,)
        logits = model(x)[0].float().cpu()                             # (K,)
    prob = logits.softmax(-1)
    top = int(prob.argmax())
    p = plt()
    fig, axes = p.subplots(1, 4, figsize=(15, 3.2), gridspec_kw={"width_ratios": [1, 2.6, 1.8, 1.8]})
    img = x[0].detach().float().cpu().permute(1, 2, 0).numpy()
    axes[0].imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray")
    axes[0].set_title(name or "input", fontsize=9)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    axes[1].plot(flat.numpy(), lw=0.6, color="tab:blue")
    axes[1].set_title(f"flatten: {flat.numel()} features ({int((flat > 0).sum())} > 0)", fontsize=9)
    axes[1].set_xlabel("feature index", fontsize=8)
    colours = ["tab:red" if k == top else "tab:gray" for k in range(len(classes))]
    for ax, values, title in ((axes[2], logits, "logits (dense layers)"),
                              (axes[3], prob, f"softmax: sum = {float(prob.sum()):.3f}")):
        ax.barh(range(len(classes)), values.numpy(), color=colours)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
        ax.axvline(0, color="#333", lw=0.6)
    axes[3].set_xlim(0, 1)
    axes[3].text(float(prob[top]), top, f" {100 * float(prob[top]):.1f}%", va="center", fontsize=8)
    fig.tight_layout()
    return save(fig, path)
