"""When an anytime run stops: one rule, read from each iteration's outputs, per image.

After every iteration of a step-wise graph (`init`, then each `step`) the rule computes two
statistics of the image, each a share of its pixels:

    changed    the share of pixels whose label differs from the previous iteration's (None
               after `init`, which has no previous iteration);
    uncertain  the share of pixels whose top class probability is below `confidence`.

and stops on one of its tests:

    "stable"     changed <= stable_tolerance             (the answer stopped moving)
    "confident"  uncertain <= uncertain_tolerance        (the answer is sure of itself)
    "both"       both hold                               (settled and sure)
    "either"     one of them holds
    "none"       never (the deadline or the iteration limit stops the run)

Why a share of uncertain pixels rather than the mean top probability: the errors a further pass
can fix are concentrated (the far side of an object, away from the evidence of its class); a
mean over the whole image is dominated by easy background pixels and stays high while one object
is still undecided, whereas the share of undecided pixels is in the same unit as the stability
test (a share of the image that may still change) and reads the same way: 0.01 means "at most
1% of the pixels". The confidence test can stop right after `init` (no gated pass at all); the
stability test needs a second iteration to compare with.

The rule is plain NumPy on the graph's outputs, so a recorded run can be replayed over other
thresholds with exactly the code the runner stops with (`StoppingRule.replay`).
"""

import dataclasses
import math

import numpy as np

from .errors import RunnerError

STOP_TESTS = ("stable", "confident", "both", "either", "none")

# The runner's default rule: stop once at most 2% of the pixels changed label in the last
# iteration. Chosen with `bench/stopping.py` (docs/EXPORT.md gives the measurement behind it).
DEFAULT_STOP_TEST = "stable"
DEFAULT_STABLE_TOLERANCE = 0.02
DEFAULT_CONFIDENCE = 0.9
DEFAULT_UNCERTAIN_TOLERANCE = 0.05


def _check_share(name, value, flag=None):
    where = flag or name
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise RunnerError(f"{where} must be a number in 0..1; received {value!r}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise RunnerError(f"{where} must be in 0..1; received {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class StoppingRule:
    """The stopping rule of an anytime run (see the module docstring).

    Args:
        test: "stable", "confident", "both", "either" or "none".
        stable_tolerance: the share of pixels (0..1) whose label may change between two
            iterations for the map to count as stable (0: identical).
        confidence: a pixel is confident when its top class probability is at least this
            (0..1).
        uncertain_tolerance: the share of pixels (0..1) that may be below `confidence` for the
            answer to count as confident.

    Raises:
        RunnerError: an unknown test or a threshold outside 0..1, naming it.
    """

    test: str = DEFAULT_STOP_TEST
    stable_tolerance: float = DEFAULT_STABLE_TOLERANCE
    confidence: float = DEFAULT_CONFIDENCE
    uncertain_tolerance: float = DEFAULT_UNCERTAIN_TOLERANCE

    def __post_init__(self):
        if self.test not in STOP_TESTS:
            raise RunnerError(f"stopping test must be one of {STOP_TESTS}; received {self.test!r}")
        for name in ("stable_tolerance", "confidence", "uncertain_tolerance"):
            object.__setattr__(self, name, _check_share(name, getattr(self, name)))

    @property
    def needs_probabilities(self):
        """Whether the rule reads the probabilities (the confidence test)."""
        return self.test in ("confident", "both", "either")

    def statistics(self, class_map, probabilities, previous_map=None):
        """{"changed": share or None, "uncertain": share} of one iteration's outputs.

        Args:
            class_map: int (H, W), this iteration's labels.
            probabilities: float (H, W, C), this iteration's class probabilities.
            previous_map: int (H, W), the previous iteration's labels; None after `init`.
        """
        changed = None
        if previous_map is not None:
            changed = float(np.mean(np.asarray(class_map) != np.asarray(previous_map)))
        top = np.max(np.asarray(probabilities), axis=-1)
        return {"changed": changed, "uncertain": float(np.mean(top < self.confidence))}

    def decide(self, statistics):
        """The reason to stop after an iteration with these statistics, or None to go on.

        Returns:
            None, "stable", "confident" or "stable+confident" (both tests held).
        """
        if self.test == "none":
            return None
        changed = statistics.get("changed")
        stable = changed is not None and changed <= self.stable_tolerance
        confident = statistics["uncertain"] <= self.uncertain_tolerance
        held = {
            "stable": stable,
            "confident": confident,
            "both": stable and confident,
            "either": stable or confident,
        }[self.test]
        if not held:
            return None
        if self.test == "stable":
            return "stable"
        if self.test == "confident":
            return "confident"
        return "+".join(name for name, ok in (("stable", stable), ("confident", confident)) if ok)

    def replay(self, class_maps, probabilities):
        """Where this rule stops a recorded run: the iteration and the reason.

        Args:
            class_maps: a sequence of int (H, W), the labels after iterations 1, 2, ...
            probabilities: a sequence of float (H, W, C), the same iterations' probabilities.

        Returns:
            (iterations used, 1-based, and the reason: a `decide` reason, or "max_iterations"
            when the rule never fired within the recording).
        """
        previous = None
        for k, (labels, probs) in enumerate(zip(class_maps, probabilities, strict=True), 1):
            reason = self.decide(self.statistics(labels, probs, previous))
            if reason is not None:
                return k, reason
            previous = labels
        return len(class_maps), "max_iterations"

    def describe(self):
        """The rule in words, for the runner's log."""
        stable = f"<= {self.stable_tolerance:g} of the pixels changed"
        confident = (
            f"<= {self.uncertain_tolerance:g} of the pixels below probability {self.confidence:g}"
        )
        return {
            "none": "no early stop",
            "stable": f"stop when stable ({stable})",
            "confident": f"stop when confident ({confident})",
            "both": f"stop when stable ({stable}) and confident ({confident})",
            "either": f"stop when stable ({stable}) or confident ({confident})",
        }[self.test]

    def to_dict(self):
        return dataclasses.asdict(self)


DEFAULT_STOPPING = StoppingRule()
