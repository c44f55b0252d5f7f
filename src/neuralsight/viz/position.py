"""The position experiment's figure: accuracy by pattern position for each model (lecture/position.py)."""

from __future__ import annotations

from pathlib import Path


def plot(result: dict, path: Path) -> Path:
    """Accuracy by pattern start position per model; trained positions shaded."""
    from neuralsight.viz.figures import plt, save

    p = plt()
    fig, ax = p.subplots(figsize=(8, 3.6))
    ax.axvspan(-0.5, result["train_positions"] - 0.5, color="tab:green", alpha=0.12,
               label="positions seen in training")
    colors = {"ffn": "tab:red", "lstm": "tab:blue", "cnn": "tab:purple"}
    names = {"ffn": "feed-forward", "lstm": "LSTM", "cnn": "1D CNN"}
    for kind, acc in result["accuracy"].items():
        ax.plot(result["positions"], acc, marker="o", ms=3, color=colors.get(kind),
                label=f"{names.get(kind, kind)} (unseen {result['unseen'][kind]:.2f})")
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("pattern start position")
    ax.set_ylabel("test accuracy")
    ax.set_title("same pattern, new position: accuracy by position")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return save(fig, path)
