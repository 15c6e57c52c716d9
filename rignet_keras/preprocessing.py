"""Input normalisation that matches each backbone's pretrained weights.

A RIGNet takes normalised float images. The data pipeline and the exported serving graphs both call
`normalize` with the model's `preprocessing` mode, so training, evaluation and deployment agree.

Modes:
    "caffe": RGB -> BGR, minus the ImageNet mean pixel, no scaling (`keras.applications` ResNet
        weights).
    "torch": scaled to [0, 1], minus the ImageNet mean, divided by its standard deviation.
    "tf": scaled to [-1, 1] (`keras.applications` MobileNetV2 weights).
"""

import numpy as np

PREPROCESSING_MODES = ("caffe", "torch", "tf")

# ImageNet statistics in RGB order, on the 0-255 scale.
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)


def check_mode(mode):
    """Returns `mode` if it is a known preprocessing mode; raises `ValueError` otherwise."""
    if mode not in PREPROCESSING_MODES:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING_MODES}; received {mode!r}")
    return mode


def normalized(x, mode, reverse_channels, constant):
    """The one normalisation formula, on any tensor library.

    Args:
        x: float32 RGB images on the 0-255 scale.
        mode: one of `PREPROCESSING_MODES`.
        reverse_channels: `x -> x` with its last axis reversed (RGB -> BGR) in that library.
        constant: a tuple of floats -> a float32 tensor of that library.

    Returns:
        `x` normalised for `mode`, in the same op order whichever the library, so that the
        TensorFlow pipeline (`normalize`) and the model's preprocessor agree bit for bit.
    """
    if mode == "caffe":
        return reverse_channels(x) - constant(IMAGENET_MEAN_RGB[::-1])
    if mode == "torch":
        return (x - constant(IMAGENET_MEAN_RGB)) / constant(IMAGENET_STD_RGB)
    return x / 127.5 - 1.0


def normalize(images, mode):
    """Normalises RGB images on the 0-255 scale for a backbone (TensorFlow: the data pipeline).

    Args:
        images: uint8 or float tensor (..., H, W, 3), RGB, values 0-255.
        mode: one of `PREPROCESSING_MODES`.

    Returns:
        float32 tensor of the same shape.
    """
    import tensorflow as tf  # here, so that the model itself runs on any Keras backend

    check_mode(mode)
    return normalized(
        tf.cast(images, tf.float32),
        mode,
        lambda x: tf.reverse(x, [-1]),
        lambda values: tf.constant(values, tf.float32),
    )


def denormalize(images, mode):
    """Inverts `normalize`: float RGB images on the 0-255 scale (NumPy or tensor in, NumPy out)."""
    check_mode(mode)
    x = np.asarray(images, np.float32)
    if mode == "caffe":
        return (x + np.array(IMAGENET_MEAN_RGB[::-1], np.float32))[..., ::-1]
    if mode == "torch":
        return x * np.array(IMAGENET_STD_RGB, np.float32) + np.array(IMAGENET_MEAN_RGB, np.float32)
    return (x + 1.0) * 127.5
