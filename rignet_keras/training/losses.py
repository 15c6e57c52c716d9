"""Pixel-wise cross-entropy that ignores void pixels (label 255), for one or several iterations.

Reduction under `tf.distribute` (documented in docs/TRAINING.md):

- "replica" (default, standard Keras): each replica takes the mean over ITS valid pixels; the
  trainer scales it by 1 / num_replicas and the optimizer sums the gradients over replicas, so the
  update is the mean of the per-replica means. It equals the global mean over valid pixels when
  every replica sees the same number of valid pixels.
- "global": each replica divides its sum by the number of valid pixels over ALL replicas (one
  all-reduce of a scalar per step), times num_replicas to undo the Keras scaling: the update is the
  exact mean over every valid pixel of the global batch.
"""

import keras
import tensorflow as tf

from rignet_keras.config.train import LOSS_NORMALIZATIONS
from rignet_keras.labels import IGNORE_LABEL


def check_loss_normalization(value):
    if value not in LOSS_NORMALIZATIONS:
        raise ValueError(
            f"loss_normalization must be one of {LOSS_NORMALIZATIONS}; received {value!r}"
        )
    return value


def valid_pixel_mask(labels, num_classes, ignore_label=IGNORE_LABEL):
    """Bool mask of the pixels that count: label in [0, num_classes) and not `ignore_label`.

    Labels outside [0, num_classes) other than `ignore_label` are also left out (a wrong label
    convention shows up as a low count of valid pixels in the evaluation report, not as a crash).
    """
    labels = tf.cast(labels, tf.int32)
    return (labels != ignore_label) & (labels >= 0) & (labels < num_classes)


def cross_entropy_sum(labels, logits, ignore_label=IGNORE_LABEL):
    """Sum of the per-pixel cross-entropy over valid pixels, and the number of valid pixels.

    Args:
        labels: int (B, H, W), `ignore_label` for void.
        logits: float (B, H, W, C), any float dtype (computed in float32).
        ignore_label: the void label.

    Returns:
        (sum float32 scalar, count float32 scalar).
    """
    logits = tf.cast(logits, tf.float32)
    num_classes = tf.shape(logits)[-1]
    labels = tf.cast(labels, tf.int32)
    valid = (labels != ignore_label) & (labels >= 0) & (labels < num_classes)
    safe_labels = tf.where(valid, labels, tf.zeros_like(labels))
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
    validf = tf.cast(valid, tf.float32)
    return tf.reduce_sum(per_pixel * validf), tf.reduce_sum(validf)


def normalize_iteration_weights(weights, num_outputs):
    """Loss weights of the iterations 1..num_outputs, as a tuple of floats summing to 1.

    Args:
        weights: None (the last iteration only: the paper's choice), "uniform", "linear"
            (weight t for iteration t), or a sequence of `num_outputs` non-negative numbers.
        num_outputs: the number of iterations whose logits the model returns.
    """
    if weights is None:
        raw = [0.0] * (num_outputs - 1) + [1.0]
    elif weights == "uniform":
        raw = [1.0] * num_outputs
    elif weights == "linear":
        raw = [float(t) for t in range(1, num_outputs + 1)]
    elif isinstance(weights, str):
        raise ValueError(
            "iteration_loss_weights must be None, 'uniform', 'linear' or a list of numbers; "
            f"received {weights!r}"
        )
    else:
        raw = [float(w) for w in weights]
        if len(raw) != num_outputs:
            raise ValueError(
                f"iteration_loss_weights has {len(raw)} entries for {num_outputs} iterations"
            )
        if any(w < 0 for w in raw) or sum(raw) <= 0:
            raise ValueError(
                f"iteration_loss_weights must be non-negative with a positive sum; received {raw}"
            )
    total = sum(raw)
    return tuple(w / total for w in raw)


def segmentation_loss(labels, outputs, weights=None, ignore_label=IGNORE_LABEL, denominator=None):
    """Mean cross-entropy over valid pixels of one output, or a weighted sum over iterations.

    Args:
        labels: int (B, H, W).
        outputs: logits (B, H, W, C), or a list of them (one per iteration).
        weights: as `normalize_iteration_weights` (used when `outputs` is a list).
        ignore_label: the void label.
        denominator: what to divide the sums by; None for this batch's valid-pixel count.

    Returns:
        float32 scalar.
    """
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    weights = normalize_iteration_weights(weights, len(outputs))
    total = tf.constant(0.0, tf.float32)
    count = None
    for w, logits in zip(weights, outputs, strict=True):
        if w == 0.0:
            continue
        s, count = cross_entropy_sum(labels, logits, ignore_label)
        total += w * s
    if denominator is None:
        denominator = count
    return total / tf.maximum(denominator, 1.0)


@keras.saving.register_keras_serializable(package="rignet_keras")
class SegmentationCrossEntropy(keras.losses.Loss):
    """Pixel-wise cross-entropy over logits, mean over the pixels whose label is not void.

    For `model.compile(loss=...)` with a model returning float logits (B, H, W, C) and masks
    (B, H, W) int with 255 = void. `RIGNetTrainer` does not need it (it computes the loss in its
    own train step), but any Keras segmentation model can use it. Under `tf.distribute` it is a
    per-replica mean that Keras scales by 1 / num_replicas ("replica" normalisation).

    Args:
        ignore_label: int, the void label. Default 255.
        name: the loss name.

    Example:
    >>> loss = SegmentationCrossEntropy()
    >>> float(loss(tf.constant([[[0, 255]]]), tf.zeros((1, 1, 2, 3))))  # doctest: +ELLIPSIS
    1.098...
    """

    def __init__(self, ignore_label=IGNORE_LABEL, name="segmentation_cross_entropy", **kwargs):
        super().__init__(name=name, reduction="sum", **kwargs)
        self.ignore_label = ignore_label

    def call(self, y_true, y_pred):
        s, count = cross_entropy_sum(y_true, y_pred, self.ignore_label)
        return s / tf.maximum(count, 1.0)

    def get_config(self):
        return {"name": self.name, "ignore_label": self.ignore_label}
