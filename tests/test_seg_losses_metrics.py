"""Segmentation losses and metrics on hand-computed examples: perfect, all wrong, an empty class, N-d."""

from __future__ import annotations

import math

import pytest
import torch

from neuralsight.engine import losses, metrics


def _onehot_logits(labels: torch.Tensor, num_classes: int, scale: float = 50.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, num_classes).movedim(-1, 1).float() * scale


def test_confusion_matrix_by_hand():
    target = torch.tensor([[0, 0, 1], [1, 2, 2]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])
    cm = metrics.confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    iou = metrics.iou_per_class(cm)
    # class 0: tp 1, fp 1, fn 1 -> 1/3; class 1: tp 2, fp 1 -> 2/3; class 2: tp 1, fn 1 -> 1/2
    assert torch.allclose(iou, torch.tensor([1 / 3, 2 / 3, 1 / 2], dtype=torch.float64))
    assert torch.allclose(metrics.dice_per_class(cm), torch.tensor([0.5, 0.8, 2 / 3], dtype=torch.float64))
    assert float(metrics.pixel_accuracy(cm)) == pytest.approx(4 / 6)


def test_perfect_all_wrong_and_empty_class():
    target = torch.tensor([[[0, 1], [1, 0]]])                   # (1, 2, 2), class 2 absent
    perfect = metrics.summarize(metrics.confusion_matrix(target, target, 3))
    assert perfect["miou"] == 1.0 and perfect["pixel_acc"] == 1.0
    assert math.isnan(perfect["iou_2"])                          # absent from both: undefined, not 0 or 1
    wrong = metrics.summarize(metrics.confusion_matrix(1 - target, target, 3))
    assert wrong["miou"] == 0.0 and wrong["mdice"] == 0.0 and wrong["pixel_acc"] == 0.0
    # predicting an absent class is a false positive: its IoU is 0, not NaN
    pred = torch.full_like(target, 2)
    s = metrics.summarize(metrics.confusion_matrix(pred, target, 3))
    assert s["iou_2"] == 0.0 and s["miou"] == 0.0


def test_background_exclusion_and_ignore_index():
    target = torch.tensor([0, 0, 0, 1])
    pred = torch.tensor([0, 0, 0, 0])
    cm = metrics.confusion_matrix(pred, target, 2)
    with_bg = metrics.summarize(cm)
    no_bg = metrics.summarize(cm, include_background=False)
    assert with_bg["miou"] == pytest.approx((3 / 4 + 0) / 2)
    assert no_bg["miou"] == 0.0
    assert with_bg["pixel_acc"] == 0.75                          # high accuracy, useless model
    cm = metrics.confusion_matrix(pred, torch.tensor([0, 0, 255, 255]), 2, ignore_index=255)
    assert cm.sum() == 2


def test_meter_per_image_and_dataset_level_3d():
    torch.manual_seed(0)
    target = torch.randint(0, 3, (4, 5, 6, 7))
    pred = torch.where(torch.rand(4, 5, 6, 7) < 0.8, target, torch.randint(0, 3, (4, 5, 6, 7)))
    meter = metrics.SegmentationMeter(3)
    meter.update(pred[:3], target[:3])
    meter.update(pred[3:], target[3:])
    total = metrics.confusion_matrix(pred, target, 3)
    assert torch.equal(meter.total, total)
    per = meter.per_image()
    assert per["miou"].shape == (4,)
    for i in range(4):
        one = metrics.summarize(metrics.confusion_matrix(pred[i], target[i], 3))
        assert float(per["miou"][i]) == pytest.approx(one["miou"])
    assert meter.compute(["bg", "a", "b"])["iou_bg"] == pytest.approx(float(metrics.iou_per_class(total)[0]))


def test_cross_entropy_matches_torch_with_weights():
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 4, 5))
    w = [0.2, 1.0, 3.0]
    ref = torch.nn.functional.cross_entropy(logits, target, weight=torch.tensor(w))
    assert torch.allclose(losses.cross_entropy(logits, target, w), ref)


def test_dice_loss_perfect_wrong_and_hand_value():
    target = torch.tensor([[[0, 1], [1, 1]]])                    # (1, 2, 2)
    assert float(losses.dice_loss(_onehot_logits(target, 2), target)) == pytest.approx(0.0, abs=1e-4)
    assert float(losses.dice_loss(_onehot_logits(1 - target, 2), target)) == pytest.approx(1.0, abs=1e-4)
    # uniform probabilities 0.5 everywhere: class 0: 2*0.5/(2+1) = 1/3; class 1: 2*1.5/(2+3) = 0.6
    uniform = torch.zeros(1, 2, 2, 2)
    expected = 1 - (1 / 3 + 0.6) / 2
    assert float(losses.dice_loss(uniform, target)) == pytest.approx(expected, abs=1e-4)
    assert float(losses.dice_loss(uniform, target, include_background=False)) == pytest.approx(0.4, abs=1e-4)
    weighted = losses.dice_loss(uniform, target, class_weights=[3.0, 1.0])
    assert float(weighted) == pytest.approx((3 * (2 / 3) + 1 * 0.4) / 4, abs=1e-4)


def test_dice_ignores_classes_absent_from_target():
    target = torch.zeros(1, 3, 3, 3, dtype=torch.long)           # 3D, only class 0 present
    logits = _onehot_logits(target, 3)
    assert float(losses.dice_loss(logits, target)) == pytest.approx(0.0, abs=1e-4)
    empty = losses.dice_loss(logits.requires_grad_(), target, include_background=False)
    assert float(empty.detach()) == 0.0
    empty.backward()                                             # still differentiable


def test_dice_ce_module_and_gradients():
    logits = torch.randn(2, 3, 6, 6, requires_grad=True)
    target = torch.randint(0, 3, (2, 6, 6))
    loss = losses.SegmentationLoss("dice_ce", class_weights=[1, 2, 2])(logits, target)
    ref = losses.cross_entropy(logits, target, [1, 2, 2]) + losses.dice_loss(logits, target, [1, 2, 2])
    assert torch.allclose(loss, ref)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.SegmentationLoss("focal")
    with pytest.raises(ValueError, match="class_weights has 2 entries"):
        losses.dice_loss(logits, target, class_weights=[1, 2])


# ---- the binary foreground figure (pets: pet + border merged against background) -----------------------

def test_foreground_merge_by_hand_is_not_the_background_class():
    # classes: 0 background, 1 pet, 2 border (the pets trimap order)
    target = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 0, 1, 2, 0, 1, 2])
    cm = metrics.confusion_matrix(pred, target, 3)
    # merged: target fg = pixels 3..7, pred fg = 1, 3, 4, 6, 7 -> TP 4 (3, 4, 6, 7), FP 1 (1), FN 1 (5)
    assert metrics.merge_foreground(cm).tolist() == [[2, 1], [1, 4]]
    meter = metrics.SegmentationMeter(3)
    meter.update(pred[None], target[None])
    out = meter.compute(["background", "pet", "border"])
    assert out["fg_iou"] == pytest.approx(4 / 6)
    assert out["fg_dice"] == pytest.approx(8 / 10)
    # the background class of the same matrix: TP 2 (0, 2), FP 1 (5), FN 1 (1) -> 2/4; pet alone: 1/5
    assert out["iou_background"] == pytest.approx(0.5) and out["fg_iou"] != out["iou_background"]
    assert out["iou_pet"] == pytest.approx(1 / 5) and out["fg_iou"] != out["iou_pet"]


def test_foreground_pooled_and_per_image_means():
    # image 0: the example above; image 1: all background, predicted so (no foreground: undefined, left
    # out); image 2: all pet, half predicted background -> IoU 1/2
    t0, p0 = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2]), torch.tensor([0, 1, 0, 1, 2, 0, 1, 2])
    t1, p1 = torch.zeros(8, dtype=torch.long), torch.zeros(8, dtype=torch.long)
    t2, p2 = torch.ones(8, dtype=torch.long), torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])
    meter = metrics.SegmentationMeter(3)
    meter.update(torch.stack([p0, p1]), torch.stack([t0, t1]))
    meter.update(p2[None], t2[None])
    out = meter.compute()
    # pooled: TP 4 + 4, FP 1, FN 1 + 4 -> 8 / 14
    assert out["fg_iou"] == pytest.approx(8 / 14)
    assert out["fg_iou_per_image"] == pytest.approx((4 / 6 + 1 / 2) / 2)
    assert out["fg_dice_per_image"] == pytest.approx((8 / 10 + 2 / 3) / 2)
    assert out["images"] == 3


def test_two_class_foreground_is_class_one():
    target = torch.tensor([[0, 0, 1, 1, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1, 0, 0]])
    meter = metrics.SegmentationMeter(2)
    meter.update(pred, target)
    out = meter.compute()
    assert out["fg_iou"] == pytest.approx(out["iou_1"]) == pytest.approx(2 / 5)
    assert out["iou_0"] == pytest.approx(1 / 4)


def test_segmentation_metrics_match_torchmetrics():
    from torchmetrics.classification import BinaryJaccardIndex, MulticlassF1Score, MulticlassJaccardIndex

    g = torch.Generator().manual_seed(3)
    target = torch.randint(0, 3, (4, 16, 16), generator=g)
    noise = torch.randint(0, 3, (4, 16, 16), generator=g)
    pred = torch.where(torch.rand(4, 16, 16, generator=g) < 0.7, target, noise)
    target[0, :2] = 255                                                  # ignored pixels
    meter = metrics.SegmentationMeter(3, ignore_index=255)
    meter.update(pred, target)
    out = meter.compute()
    iou = MulticlassJaccardIndex(3, average=None, ignore_index=255)(pred, target)
    dice = MulticlassF1Score(3, average=None, ignore_index=255, multidim_average="global")(pred, target)
    assert torch.allclose(metrics.iou_per_class(meter.total).float(), iou, atol=1e-6)
    assert torch.allclose(metrics.dice_per_class(meter.total).float(), dice, atol=1e-6)
    merged_target = torch.where(target == 255, target, (target > 0).long())
    fg = BinaryJaccardIndex(ignore_index=255)((pred > 0).long(), merged_target)
    assert out["fg_iou"] == pytest.approx(float(fg), abs=1e-6)
    # per image, foreground merged, mean over images (each image holds foreground here)
    per = [float(BinaryJaccardIndex(ignore_index=255)((pred[i] > 0).long(), merged_target[i])) for i in range(4)]
    assert out["fg_iou_per_image"] == pytest.approx(sum(per) / 4, abs=1e-6)
