"""Loss, confusion-matrix metric and learning-rate schedule against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from rignet_keras import confusion
from rignet_keras.training.losses import (
    SegmentationCrossEntropy,
    cross_entropy_sum,
    normalize_iteration_weights,
    segmentation_loss,
)
from rignet_keras.training.metrics import (
    ConfusionMatrixMetric,
    confusion_matrix,
    scores_from_matrix,
    segmentation_scores,
)
from rignet_keras.training.schedules import PolyWarmup

# 4 classes; class 3 is absent from the ground truth AND never predicted (no IoU); class 2 is
# absent from the ground truth but predicted once (IoU 0). 255 pixels are ignored whatever the
# prediction.
LABELS = np.array([[[0, 0, 1, 1], [1, 255, 255, 0]], [[0, 1, 1, 255], [0, 0, 0, 1]]], np.int32)
PREDS = np.array([[[0, 1, 1, 1], [0, 3, 2, 0]], [[0, 1, 2, 3], [0, 0, 1, 1]]], np.int32)


def hand_matrix():
    cm = np.zeros((4, 4))
    for t, p in zip(LABELS.ravel(), PREDS.ravel(), strict=True):
        if t != 255:
            cm[t, p] += 1
    return cm


def test_confusion_matrix_matches_hand_count():
    cm = confusion_matrix(LABELS, PREDS, 4).numpy()
    expected = np.array([[5, 2, 0, 0], [1, 4, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.float64)
    np.testing.assert_array_equal(cm, expected)
    np.testing.assert_array_equal(cm, hand_matrix())
    assert cm.sum() == 13  # 16 pixels minus 3 void


def test_scores_from_hand_matrix_with_absent_classes():
    s = segmentation_scores(hand_matrix(), class_names=["a", "b", "c", "d"])
    iou0, iou1, iou2 = 5 / (7 + 6 - 5), 4 / (6 + 6 - 4), 0.0
    assert s["per_class_iou"][:3] == pytest.approx([iou0, iou1, iou2])
    assert s["per_class_iou"][3] is None  # neither in the ground truth nor predicted
    assert s["mIoU"] == pytest.approx((iou0 + iou1 + iou2) / 3)
    assert s["pAcc"] == pytest.approx(9 / 13)
    assert s["mAcc"] == pytest.approx((5 / 7 + 4 / 6) / 2)  # classes with ground truth only
    assert s["per_class_acc"][2] is None and s["num_classes_present"] == 2
    graph = {k: float(v) for k, v in scores_from_matrix(hand_matrix()).items()}
    assert graph == pytest.approx({k: s[k] for k in ("mIoU", "pAcc", "mAcc")})


def test_metric_accumulates_one_matrix_over_batches():
    metric = ConfusionMatrixMetric(4)
    for i in range(2):  # one image at a time, predictions as one-hot "logits"
        metric.update_state(LABELS[i : i + 1], tf.one_hot(PREDS[i : i + 1], 4))
    np.testing.assert_array_equal(metric.matrix.numpy(), hand_matrix())
    assert float(metric.result()) == pytest.approx(segmentation_scores(hand_matrix())["mIoU"])
    metric.reset_state()
    assert float(tf.reduce_sum(metric.matrix)) == 0
    labels_out_of_range = np.array([[[7, 0]]])
    assert confusion_matrix(labels_out_of_range, np.array([[[0, 0]]]), 4).numpy().sum() == 1


def test_numpy_confusion_matrix_counts_like_the_graph_one():
    np.testing.assert_array_equal(confusion.confusion_matrix(LABELS, PREDS, 4), hand_matrix())
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, size=(3, 9, 7))
    labels[rng.random(labels.shape) < 0.2] = 255  # void, and labels 4 and 5 are out of range
    predictions = rng.integers(-1, 5, size=labels.shape)  # -1 and 4 are out of range
    np.testing.assert_array_equal(
        confusion.confusion_matrix(labels, predictions, 4),
        confusion_matrix(labels, predictions, 4).numpy(),
    )


def test_numpy_mean_iou_is_the_score_of_the_matrix():
    assert confusion.mean_iou(LABELS, PREDS, 4) == pytest.approx(
        segmentation_scores(hand_matrix())["mIoU"]
    )
    assert segmentation_scores is confusion.segmentation_scores  # one definition
    assert np.isnan(confusion.mean_iou(np.full((2, 2), 255), np.zeros((2, 2), int), 4))
    with pytest.raises(ValueError, match=r"labels of shape \(2, 2\).*\(2, 3\)"):
        confusion.confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 4)


# Runs where neither Keras nor TensorFlow can be imported (as on a device with only LiteRT).
def test_cross_entropy_ignores_void_and_averages_valid_pixels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 2, 4, 4)).astype("float32")
    total, count = cross_entropy_sum(LABELS, logits)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = LABELS != 255
    manual = -log_probs.reshape(-1, 4)[np.arange(16), np.where(valid, LABELS, 0).ravel()]
    manual = manual[valid.ravel()]
    assert float(count) == 13
    assert float(total) == pytest.approx(manual.sum(), rel=1e-5)
    assert float(segmentation_loss(LABELS, logits)) == pytest.approx(manual.mean(), rel=1e-5)
    assert float(SegmentationCrossEntropy()(LABELS, logits)) == pytest.approx(manual.mean(), 1e-5)
    all_void = np.full((1, 2, 2), 255)
    assert float(segmentation_loss(all_void, np.zeros((1, 2, 2, 3), "float32"))) == 0.0


def test_iteration_weights():
    assert normalize_iteration_weights(None, 3) == (0.0, 0.0, 1.0)
    assert normalize_iteration_weights("uniform", 4) == (0.25,) * 4
    assert normalize_iteration_weights("linear", 2) == pytest.approx((1 / 3, 2 / 3))
    assert normalize_iteration_weights([1, 3], 2) == (0.25, 0.75)
    with pytest.raises(ValueError, match="2 entries for 3"):
        normalize_iteration_weights([1, 1], 3)
    rng = np.random.default_rng(1)
    a, b = (rng.normal(size=(2, 2, 4, 4)).astype("float32") for _ in range(2))
    deep = float(segmentation_loss(LABELS, [a, b], "uniform"))
    assert deep == pytest.approx(
        (float(segmentation_loss(LABELS, a)) + float(segmentation_loss(LABELS, b))) / 2, 1e-5
    )


def test_poly_warmup_schedule():
    s = PolyWarmup(0.01, decay_steps=100, power=0.9, warmup_steps=10, warmup_start_factor=0.1)
    assert float(s(0)) == pytest.approx(0.001)
    assert float(s(10)) == pytest.approx(0.01 * 0.9**0.9, rel=1e-5)  # continuous at the end
    assert float(s(9)) < float(s(10))
    assert float(s(50)) == pytest.approx(0.01 * 0.5**0.9, rel=1e-5)
    assert float(s(100)) == 0.0 and float(s(150)) == 0.0
    assert PolyWarmup.from_config(s.get_config()).get_config() == s.get_config()
