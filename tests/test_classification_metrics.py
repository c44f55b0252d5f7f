"""Accuracy, precision, recall, F1 from a confusion matrix (by hand and against torchmetrics); bits/char."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuralsight.engine import metrics


def test_classification_metrics_by_hand():
    y = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    p = torch.tensor([0, 1, 1, 1, 2, 0, 2])
    m = metrics.classification_metrics(y, p, ["a", "b", "c"])
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert m["accuracy"] == pytest.approx(5 / 7) and m["n"] == 7
    a, b, c = m["per_class"]
    assert (a["precision"], a["recall"], a["f1"]) == (pytest.approx(1 / 2), pytest.approx(1 / 2), pytest.approx(1 / 2))
    assert (b["precision"], b["recall"], b["f1"]) == (pytest.approx(2 / 3), 1.0, pytest.approx(0.8))
    assert (c["precision"], c["recall"], c["support"]) == (1.0, pytest.approx(2 / 3), 3)
    assert m["macro_precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["macro_recall"] == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    assert m["most_confused"] == [{"a": "a", "b": "c", "a_as_b": 0, "b_as_a": 1, "total": 1},
                                  {"a": "a", "b": "b", "a_as_b": 1, "b_as_a": 0, "total": 1}]
    # numpy arrays and a precomputed matrix give the same answer
    assert metrics.classification_metrics(y.numpy(), p.numpy(), ["a", "b", "c"]) == m
    assert metrics.classification_from_confusion(np.array(m["confusion"]), ["a", "b", "c"]) == m


def test_accuracy_is_the_trace_not_a_row():
    cm = torch.tensor([[50, 0], [50, 0]])           # everything predicted class 0
    m = metrics.classification_from_confusion(cm, ["x", "y"])
    assert m["accuracy"] == 0.5
    assert m["per_class"][1]["precision"] == 0.0 and m["per_class"][1]["recall"] == 0.0
    assert m["per_class"][0]["recall"] == 1.0 and m["per_class"][0]["precision"] == 0.5


@pytest.mark.parametrize("seed", [0, 1])
def test_classification_metrics_match_torchmetrics(seed):
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassConfusionMatrix,
        MulticlassF1Score,
        MulticlassPrecision,
        MulticlassRecall,
    )

    k = 6
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k - 1, (500,), generator=g)            # class 5 never occurs in the targets...
    p = torch.where(torch.rand(500, generator=g) < 0.6, y, torch.randint(0, k - 1, (500,), generator=g))
    p[:3] = k - 1                                                # ...but is predicted three times
    m = metrics.classification_metrics(y, p, [str(i) for i in range(k)])
    assert m["confusion"] == MulticlassConfusionMatrix(k)(p, y).tolist()
    assert m["accuracy"] == pytest.approx(float(MulticlassAccuracy(k, average="micro")(p, y)), abs=1e-6)
    for name, cls in (("precision", MulticlassPrecision), ("recall", MulticlassRecall), ("f1", MulticlassF1Score)):
        ref = cls(k, average=None)(p, y)
        ours = torch.tensor([r[name] for r in m["per_class"]])
        assert torch.allclose(ours.float(), ref, atol=1e-6), name
        assert m[f"macro_{name}"] == pytest.approx(float(cls(k, average="macro")(p, y)), abs=1e-6), name


def test_classification_metrics_bad_input():
    with pytest.raises(ValueError, match="labels outside 0..1"):
        metrics.classification_metrics(torch.tensor([0, 2]), torch.tensor([0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="does not match 3 class names"):
        metrics.classification_from_confusion(torch.zeros(2, 2), ["a", "b", "c"])


def test_bits_per_char_from_nats():
    # a uniform guess over 4 characters costs ln 4 nats = 2 bits per character
    assert metrics.bits_per_char(math.log(4)) == pytest.approx(2.0)
    logits = torch.randn(64, 30, generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 30, (64,), generator=torch.Generator().manual_seed(1))
    nats = float(torch.nn.functional.cross_entropy(logits, target))
    bits = float(-(logits.log_softmax(-1)[torch.arange(64), target] / math.log(2)).mean())
    assert metrics.bits_per_char(nats) == pytest.approx(bits, rel=1e-6)
    assert metrics.bits_per_char(1.5) == pytest.approx(1.5 / 0.6931471805599453)
    assert metrics.perplexity(math.log(4)) == pytest.approx(4.0)
    assert metrics.perplexity(1e6) == pytest.approx(math.exp(50.0))
