"""Parity of an exported graph with the Keras model: figures, tolerances, and the check.

Figures compare an export's outputs with the Keras model's on the same uint8 images:
    max_abs_diff: the largest absolute difference of the probabilities;
    mean_abs_diff: their mean absolute difference;
    label_agreement: the share of pixels whose class (argmax) is the same;
    decided_label_agreement: the same over the pixels the Keras model decides, i.e. whose top
        two probabilities differ by at least `TIE_MARGIN` (a randomly initialised net, or a
        trained one on a boundary, has near-ties that any rounding flips: they say nothing
        about the export); the tolerance applies to this figure;
    miou_vs_keras: the mean IoU of the export's class map, taking the Keras class map as the
        ground truth (`rignet_keras.confusion.mean_iou`: classes present in either), i.e. the
        accuracy cost against the float model.
"""

import numpy as np

from rignet_keras.confusion import mean_iou

# Pixels whose top-two Keras probabilities differ by less than this are ties, not decisions.
TIE_MARGIN = 1e-3

# Per precision: the largest max_abs_diff of the probabilities and the smallest label agreement.
# float32 exports differ by rounding only; the reduced precisions get room for their own error
# (measured on randomly initialised and trained nets alike; see docs/EXPORT.md).
DEFAULT_TOLERANCES = {
    "float32": {"max_abs_diff": 1e-3, "min_label_agreement": 0.995},
    "float16": {"max_abs_diff": 0.05, "min_label_agreement": 0.97},
    "dynamic_int8": {"max_abs_diff": 0.5, "min_label_agreement": 0.85},
    "int8": {"max_abs_diff": 0.5, "min_label_agreement": 0.85},
    "int8_float_gates": {"max_abs_diff": 0.5, "min_label_agreement": 0.85},
}


class ParityError(RuntimeError):
    """An exported graph disagrees with the Keras model past its precision's tolerance."""


def tolerances_for(precision, overrides=None):
    """The tolerance dict of a precision, updated with `overrides[precision]` if given."""
    tolerance = dict(DEFAULT_TOLERANCES[precision])
    if overrides and precision in overrides:
        unknown = set(overrides[precision]) - set(tolerance)
        if unknown:
            raise ValueError(
                f"unknown tolerance keys {sorted(unknown)} for {precision!r}; known: "
                f"{sorted(tolerance)}"
            )
        tolerance.update(overrides[precision])
    return tolerance


def compare(reference_probabilities, probabilities, class_map=None, tie_margin=TIE_MARGIN):
    """Parity figures of an export's outputs against the Keras model's.

    Args:
        reference_probabilities: float (N, H, W, C), the Keras model's softmax.
        probabilities: float (N, H, W, C), the export's.
        class_map: int (N, H, W), the export's class map; None: the argmax of `probabilities`.

    Returns:
        {"max_abs_diff", "mean_abs_diff", "label_agreement", "decided_label_agreement",
        "decided_share", "miou_vs_keras"}.
    """
    reference = np.asarray(reference_probabilities, np.float32)
    probabilities = np.asarray(probabilities, np.float32)
    if reference.shape != probabilities.shape:
        raise ParityError(
            f"the export returns probabilities of shape {probabilities.shape}; the Keras model "
            f"{reference.shape}"
        )
    labels = reference.argmax(-1)
    predicted = probabilities.argmax(-1) if class_map is None else np.asarray(class_map)
    if predicted.shape != labels.shape:
        raise ParityError(
            f"the export returns a class map of shape {predicted.shape}; expected {labels.shape}"
        )
    difference = np.abs(reference - probabilities)
    agree = predicted == labels
    if reference.shape[-1] > 1:
        top_two = np.partition(reference, -2, axis=-1)[..., -2:]
        decided = (top_two[..., 1] - top_two[..., 0]) >= tie_margin
    else:
        decided = np.ones(labels.shape, bool)
    return {
        "max_abs_diff": float(difference.max()),
        "mean_abs_diff": float(difference.mean()),
        "label_agreement": float(np.mean(agree)),
        "decided_label_agreement": float(np.mean(agree[decided])) if decided.any() else 1.0,
        "decided_share": float(np.mean(decided)),
        "miou_vs_keras": mean_iou(labels, predicted, reference.shape[-1], ignore_label=None),
    }


def check(figures, tolerance, what):
    """Adds "passed" and "tolerance" to `figures`; returns the failures as a list of strings."""
    failures = []
    if not figures["max_abs_diff"] <= tolerance["max_abs_diff"]:  # also catches NaN
        failures.append(
            f"max |probability difference| {figures['max_abs_diff']:.3g} > "
            f"{tolerance['max_abs_diff']:.3g}"
        )
    if not figures["decided_label_agreement"] >= tolerance["min_label_agreement"]:
        failures.append(
            f"label agreement {figures['decided_label_agreement']:.4f} (on the "
            f"{figures['decided_share']:.1%} of pixels the Keras model decides) < "
            f"{tolerance['min_label_agreement']:.4f}"
        )
    figures["tolerance"] = dict(tolerance)
    figures["passed"] = not failures
    return [f"{what}: {message}" for message in failures]


def round_figures(figures, digits=6):
    """A copy of a figures dict with floats rounded for the manifest."""
    return {
        k: (float(f"{v:.{digits}g}") if isinstance(v, float) else v) for k, v in figures.items()
    }
