"""The calibration samples of the int8 precisions: what each TFLite signature is fed while the
converter measures its activation ranges.

A ui signature (and `init`) is fed the calibration images. The step's inputs are recurrent
states, so it is fed realistic ones: the Keras model's own states after 1..n - 1 iterations of
each calibration image (`RIGNet.iterate`), n the checked step-wise iterations.

`CalibrationSamples` builds each signature's samples once per export: every precision and
layout that calibrates reuses them (the step's states cost a Keras run per image).
"""

from rignet_keras.export.signatures import state_name
from rignet_keras.export.tflite import image_samples
from rignet_keras.preprocessing import normalize
from rignet_runtime import STEP_SIGNATURE


def calibration_samples(model, images, signature_keys, read, iterations):
    """[(signature key, {input name: array (1, ...)})] for the converter's representative data.

    Args:
        model: the `RIGNet` being exported.
        images: uint8 calibration images (N, H, W, 3).
        signature_keys: the signatures of the file being converted.
        read: the flat state entries the step reads (`signatures.state_indices`).
        iterations: the step-wise iterations checked; the step is fed the states after
            1..iterations - 1 of them.
    """
    samples = []
    ui_keys = [k for k in signature_keys if k != STEP_SIGNATURE]
    samples.extend(image_samples(images, ui_keys))
    if STEP_SIGNATURE in signature_keys:
        steps = iterations - 1
        for image in images if steps else ():
            x = normalize(image[None], model.preprocessing)
            for state in model.iterate(x, steps, training=False):
                flat = state.flatten()
                samples.append((STEP_SIGNATURE, {state_name(i): flat[i].numpy() for i in read}))
    return samples


class CalibrationSamples:
    """`calibration_samples` built once per signature key and reused by every file that needs
    them (same arguments as `calibration_samples`, less `signature_keys`).

    Call: `samples(signature_keys)` -> the samples of those signatures, in their order.
    """

    def __init__(self, model, images, read, iterations):
        self.model, self.images, self.read, self.iterations = model, images, read, iterations
        self._by_key = {}

    def __call__(self, signature_keys):
        samples = []
        for key in signature_keys:
            if key not in self._by_key:
                self._by_key[key] = calibration_samples(
                    self.model, self.images, [key], self.read, self.iterations
                )
            samples.extend(self._by_key[key])
        return samples
