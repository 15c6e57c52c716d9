"""The confusion matrix of a segmentation and the scores computed from it, in NumPy.

This module is the one definition of mIoU, pixel accuracy (pAcc), mean class accuracy (mAcc) and
per-class IoU in the package: evaluation (`rignet_keras.training.metrics`), export parity
(`rignet_keras.export.parity`) and the benchmarks all score with it. It computes in NumPy only, so
class maps from any runtime (Keras, TFLite, ONNX) are scored the same way.

Counting rules:
    - the matrix is (num_classes, num_classes), rows ground truth, columns prediction;
    - void pixels (`IGNORE_LABEL`, 255) and labels or predictions outside [0, num_classes)
      never enter it;
    - a class absent from the ground truth AND never predicted has no IoU (NaN) and is left out
      of the mean, as in the VOC devkit; a class predicted but absent from the ground truth has
      IoU 0 and counts.
"""

import numpy as np

from rignet_keras.labels import IGNORE_LABEL


def confusion_matrix(labels, predictions, num_classes, ignore_label=IGNORE_LABEL):
    """The confusion matrix of class maps of any matching shape.

    Args:
        labels: int array (for example (B, H, W)), the ground truth, `ignore_label` for void.
        predictions: int array of the same shape, the predicted classes.
        num_classes: int, the number of classes C.
        ignore_label: the void label; None when the labels have no void (a model's class map).

    Returns:
        int64 (C, C): entry [i, j] counts the pixels of class i predicted as j.
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels of shape {labels.shape} and predictions of shape {predictions.shape} "
            "must have the same shape"
        )
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1; received {num_classes!r}")
    labels = labels.reshape(-1).astype(np.int64)
    predictions = predictions.reshape(-1).astype(np.int64)
    valid = (labels >= 0) & (labels < num_classes)
    if ignore_label is not None:
        valid &= labels != ignore_label
    valid &= (predictions >= 0) & (predictions < num_classes)
    index = labels[valid] * num_classes + predictions[valid]
    counts = np.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def segmentation_scores(matrix, class_names=None):
    """mIoU, pAcc, mAcc and per-class IoU/accuracy from a confusion matrix.

    Args:
        matrix: (C, C) counts, rows ground truth, columns prediction.
        class_names: optional C names for the per-class entries.

    Returns:
        dict with "mIoU", "pAcc", "mAcc" (fractions in [0, 1]; NaN if nothing was counted),
        "per_class_iou" and "per_class_acc" (lists, None for classes without a value),
        "num_pixels", "num_classes_present", and "class_names" when given.
    """
    cm = np.asarray(matrix, np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"matrix must be square (C, C); received shape {cm.shape}")
    tp = np.diag(cm)
    gt = cm.sum(axis=1)
    pred = cm.sum(axis=0)
    union = gt + pred - tp
    total = cm.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    has_iou = ~np.isnan(iou)
    has_acc = ~np.isnan(acc)
    scores = {
        "mIoU": float(iou[has_iou].mean()) if has_iou.any() else float("nan"),
        "pAcc": float(tp.sum() / total) if total > 0 else float("nan"),
        "mAcc": float(acc[has_acc].mean()) if has_acc.any() else float("nan"),
        "per_class_iou": [None if np.isnan(v) else float(v) for v in iou],
        "per_class_acc": [None if np.isnan(v) else float(v) for v in acc],
        "num_pixels": int(total),
        "num_classes_present": int(has_acc.sum()),
    }
    if class_names is not None:
        if len(class_names) != cm.shape[0]:
            raise ValueError(f"class_names has {len(class_names)} names for {cm.shape[0]} classes")
        scores["class_names"] = list(class_names)
    return scores


def mean_iou(labels, predictions, num_classes, ignore_label=IGNORE_LABEL):
    """The mIoU of class maps: `segmentation_scores(confusion_matrix(...))["mIoU"]`.

    Args:
        labels: int array, the ground truth, `ignore_label` for void.
        predictions: int array of the same shape.
        num_classes: int.
        ignore_label: the void label; None when the labels have no void.

    Returns:
        float in [0, 1], NaN when no pixel was counted.
    """
    matrix = confusion_matrix(labels, predictions, num_classes, ignore_label)
    return segmentation_scores(matrix)["mIoU"]
