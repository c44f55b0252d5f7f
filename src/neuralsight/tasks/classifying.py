"""Evaluation of the classify task: class probabilities over a whole split (with flip test-time augmentation
when the run asks for it), the metrics, figures and ``eval_<split>.json`` of a split, and the headline subset.

``tasks/classify.py`` (the task) calls these; configs are the task's, duck-typed.
"""

from __future__ import annotations

from pathlib import Path

from neuralsight.data.classification import Data, Split
from neuralsight.errors import DataError


def predict_split(model, split: Split, batch_size: int, memory_format=None, tta: bool = False) -> dict:
    """Outputs for a whole split: ``prob (N, K)``, ``pred (N,)``, ``loss (N,)`` (on the device).

    ``tta``: each probability is ``model.predict_proba(x, flip_tta=True)``, the mean of the image's and its
    mirror image's (as ``predict`` and the exported graph give for such a run); the loss is then the
    cross-entropy of that mean.
    """
    import torch
    import torch.nn.functional as F

    memory_format = memory_format or torch.contiguous_format
    probs, losses = [], []
    for i in range(0, len(split.y), batch_size):
        x = split.x[i:i + batch_size].float().div_(255).contiguous(memory_format=memory_format)
        y = split.y[i:i + batch_size]
        if tta:
            prob = model.predict_proba(x, flip_tta=True)  # (b, K)
            losses.append(F.nll_loss(prob.clamp_min(1e-12).log(), y, reduction="none"))
        else:
            logits = model(x).float()  # (b, K)
            prob = logits.softmax(-1)
            losses.append(F.cross_entropy(logits, y, reduction="none"))
        probs.append(prob)
    prob = torch.cat(probs)
    return {"prob": prob, "pred": prob.argmax(-1), "loss": torch.cat(losses)}


def evaluate_split(model, data: Data, name: str, cfg, env, run_dir: Path, seed: int = 0) -> dict:
    """Metrics of ``model`` on split ``name``; writes its figures and ``eval_<name>.json`` into the run."""
    import torch

    from neuralsight.engine.metrics import classification_metrics
    from neuralsight.io import atomic_write_json
    from neuralsight.viz.classify import classify_figures

    split = getattr(data, name)
    if len(split.y) == 0:
        raise DataError(f"the {name} split is empty; add images or lower data.test_fraction")
    model.eval()
    fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    with torch.no_grad(), env.autocast():
        out = predict_split(model, split, cfg.data.eval_batch_size, fmt, cfg.data.tta)
    res = classification_metrics(split.y.cpu().numpy(), out["pred"].cpu().numpy(), data.classes)
    res["loss"] = float(out["loss"].mean())
    paths = classify_figures(Path(run_dir) / "figures", split.x.cpu().numpy(), split.y.cpu().numpy(),
                             {k: v.cpu().numpy() for k, v in out.items()}, res["confusion"], data.classes, seed,
                             prefix="" if name == "test" else f"{name}_")   # the report shows test's
    res["figures"] = {k: Path(v).name for k, v in paths.items()}
    atomic_write_json(Path(run_dir) / f"eval_{name}.json", res)
    return res


def headline_metrics(res: dict) -> dict:
    return {k: res[k] for k in ("accuracy", "loss", "macro_precision", "macro_recall", "macro_f1", "n")}
