"""Segmentation scores of a whole evaluation set, from ONE confusion matrix, in TensorFlow.

The scores and counting rules are those of `rignet_keras.confusion` (NumPy), the package's one
definition: mIoU, pixel accuracy (pAcc), mean class accuracy (mAcc) and per-class IoU all come
from the same (num_classes, num_classes) matrix (rows: ground truth, columns: prediction); void
pixels (label 255) and labels outside [0, num_classes) never enter it. This module holds their
graph form, for `tf.data` loops and Keras metrics under `tf.distribute`: `confusion_matrix`
counts exactly as `rignet_keras.confusion.confusion_matrix`, and `scores_from_matrix` equals
`segmentation_scores` wherever the latter is not NaN. `segmentation_scores` itself is
re-exported here.
"""

import keras
import tensorflow as tf

from rignet_keras.confusion import segmentation_scores
from rignet_keras.labels import IGNORE_LABEL

__all__ = ["ConfusionMatrixMetric", "confusion_matrix", "scores_from_matrix", "segmentation_scores"]


def confusion_matrix(labels, predictions, num_classes, ignore_label=IGNORE_LABEL):
    """The (num_classes, num_classes) confusion matrix of one batch, as float64 counts.

    The graph form of `rignet_keras.confusion.confusion_matrix`: the same pixels, the same counts.

    Args:
        labels: int (B, H, W) ground truth, `ignore_label` for void.
        predictions: int (B, H, W) predicted classes.
        num_classes: int.
        ignore_label: the void label.

    Returns:
        float64 (num_classes, num_classes): entry [i, j] counts pixels of class i predicted as j.
        float64 counts are exact up to 2^53 pixels.
    """
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    predictions = tf.reshape(tf.cast(predictions, tf.int32), [-1])
    valid = (labels != ignore_label) & (labels >= 0) & (labels < num_classes)
    valid &= (predictions >= 0) & (predictions < num_classes)
    index = tf.boolean_mask(labels * num_classes + predictions, valid)
    size = num_classes * num_classes
    counts = tf.math.bincount(index, minlength=size, maxlength=size, dtype=tf.float64)
    return tf.reshape(counts, (num_classes, num_classes))


@keras.saving.register_keras_serializable(package="rignet_keras")
class ConfusionMatrixMetric(keras.metrics.Metric):
    """A Keras metric whose state is the confusion matrix of the whole evaluation set.

    Its state is summed over replicas (`aggregation="sum"`), so it is exact under
    `tf.distribute` and across `evaluate` batches of any size. `result()` is one score of
    `segmentation_scores`: mIoU by default.

    Args:
        num_classes: int.
        ignore_label: the void label. Default 255.
        score: "mIoU" (default), "pAcc" or "mAcc": what `result()` returns.
        name: the metric name.

    Call (`update_state`): `y_true` int (B, H, W); `y_pred` logits or probabilities
    (B, H, W, C), or class indices (B, H, W) of an integer dtype.

    Example:
    >>> m = ConfusionMatrixMetric(num_classes=2)
    >>> m.update_state(tf.constant([[[0, 1, 255]]]), tf.constant([[[0, 0, 1]]]))
    >>> round(float(m.result()), 3)  # IoU 0.5 (class 0) and 0.0 (class 1)
    0.25
    """

    SCORES = ("mIoU", "pAcc", "mAcc")

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL, score="mIoU", name=None, **kwargs):
        if score not in self.SCORES:
            raise ValueError(f"score must be one of {self.SCORES}; received {score!r}")
        super().__init__(name=name or score, **kwargs)
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.score = score
        self.matrix = self.add_variable(
            shape=(num_classes, num_classes),
            initializer="zeros",
            dtype="float64",
            aggregation="sum",
            name="confusion_matrix",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("ConfusionMatrixMetric does not take sample_weight; use label 255")
        y_pred = tf.convert_to_tensor(y_pred)
        if y_pred.dtype.is_floating:
            y_pred = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        self.matrix.assign_add(
            confusion_matrix(y_true, y_pred, self.num_classes, self.ignore_label)
        )

    def result(self):
        return tf.cast(scores_from_matrix(self.matrix.value)[self.score], tf.float32)

    def reset_state(self):
        self.matrix.assign(tf.zeros((self.num_classes, self.num_classes), tf.float64))

    def get_config(self):
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "ignore_label": self.ignore_label,
            "score": self.score,
        }


def scores_from_matrix(matrix):
    """mIoU, pAcc and mAcc as float64 scalar tensors of a (C, C) matrix, for use in a graph.

    The values of `segmentation_scores`, except where that gives NaN (nothing counted): 0 here.
    """
    cm = tf.cast(matrix, tf.float64)
    tp = tf.linalg.diag_part(cm)
    gt = tf.reduce_sum(cm, axis=1)
    pred = tf.reduce_sum(cm, axis=0)
    union = gt + pred - tp
    has_iou = union > 0
    has_acc = gt > 0
    iou = tf.math.divide_no_nan(tp, union)
    acc = tf.math.divide_no_nan(tp, gt)

    def masked_mean(values, mask):
        n = tf.reduce_sum(tf.cast(mask, tf.float64))
        return tf.math.divide_no_nan(tf.reduce_sum(tf.where(mask, values, 0.0)), n)

    return {
        "mIoU": masked_mean(iou, has_iou),
        "pAcc": tf.math.divide_no_nan(tf.reduce_sum(tp), tf.reduce_sum(cm)),
        "mAcc": masked_mean(acc, has_acc),
    }
