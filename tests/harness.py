"""The one test harness: tiny RIGNets, inputs, and the checks many test modules share.

Test modules import from here (never from another test module or a conftest):

- `tiny_rignet(mode, backbone, ui, ...)`: the small RIGNet of every test, over a registered
  backbone name ("resnet18"), one of the two tiny custom backbones (`"tiny"`: five strided
  conv + BN + ReLU blocks and a 1x1 classifier, for exports; `"trainable"`: a learnable
  backbone with dropout in its head, for training), or six layers of the caller's;
- `run_layer_test(case, check, tmp_path)`: the contract every registered layer keeps (config
  round trip, save / load in safe mode, symbolic and eager call, a training step, mixed
  precision);
- `assert_reloads` (in-process `.keras` round trip) and `assert_reloads_in_a_fresh_process`
  (the same, loaded by a new Python process: `subprocess` lane);
- `assert_exports_match_keras`: an export's TFLite signatures and ONNX files against Keras.
"""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable

import keras
import numpy as np
from keras import layers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The export tests' input size: odd, and not a multiple of any output stride.
SIZE = (65, 71)
UIS = (1, 2, 3)
NUM_CLASSES = 5
ALL_MODES = ("sequential", "parallel", "multi_range", "network_recurrent", "network_gated")
STEPWISE_MODES = ("parallel", "multi_range", "network_recurrent", "network_gated")

# Registered backbones of ResNet-50 size or more: their parameters go to the `large` lane.
LARGE_BACKBONES = frozenset(
    {
        "resnet50",
        "resnet101",
        "resnet152",
        "deeplabv2",
        "resnet50v2",
        "convnext_tiny",
        "hub_resnet50",
    }
)


def backbone_params(names):
    """`names` as pytest parameters, those in `LARGE_BACKBONES` marked `large`."""
    import pytest

    return [pytest.param(n, marks=pytest.mark.large) if n in LARGE_BACKBONES else n for n in names]


# The training tests' tiny learnable task: 3 classes.
TRAIN_CLASSES = 3


# --------------------------------------------------------------------------------------------
# Inputs


def images(batch=2, height=65, width=71, seed=0):
    """Random float images (odd sizes by default: RIGNet must take any H and W)."""
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype("float32")


def fresh_images(num=2, seed=7):
    """uint8 images (num, 65, 71, 3), other than the exporter's own parity samples."""
    from rignet_keras.export.samples import synthetic_images

    return synthetic_images(num, SIZE, seed=seed)


def learnable_arrays(num, size=32, num_classes=TRAIN_CLASSES, seed=0):
    """Random images whose mask is a function of the image: the class of a pixel is which of
    `num_classes` bands the smoothed red channel falls in; a first row of void (255).
    Returns (float32 (num, size, size, 3), int32 (num, size, size))."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(num, size // 8, size // 8, 3)).astype("float32")
    arrays = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    arrays += 0.1 * rng.normal(size=arrays.shape).astype("float32")
    edges = np.quantile(arrays[..., 0], np.linspace(0, 1, num_classes + 1)[1:-1])
    masks = np.digitize(arrays[..., 0], edges).astype("int32")
    masks[:, :1, :] = 255
    return arrays.astype("float32"), masks


def learnable_dataset(num=16, batch_size=4, size=32, seed=0):
    """`learnable_arrays` as a batched `tf.data.Dataset` of (image, mask)."""
    import tensorflow as tf

    arrays, masks = learnable_arrays(num, size, seed=seed)
    return tf.data.Dataset.from_tensor_slices((arrays, masks)).batch(batch_size)


# --------------------------------------------------------------------------------------------
# Tiny backbones and the one tiny-RIGNet factory


def tiny_blocks(num_classes=NUM_CLASSES, widths=(8, 16, 16, 24, 32)):
    """Six small blocks (B1-B5 strided 3x3 conv + BN + ReLU of `widths` channels, B6 a 1x1
    classifier): a custom backbone that makes every conversion take seconds, so each unroll
    mode can be exported."""

    def block(filters, name):
        return keras.Sequential(
            [
                layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False),
                layers.BatchNormalization(),
                layers.ReLU(),
            ],
            name=name,
        )

    return [
        *(block(filters, f"block{k}") for k, filters in enumerate(widths, start=1)),
        keras.Sequential([layers.Conv2D(num_classes, 1)], name="block6"),
    ]


def trainable_blocks(num_classes=TRAIN_CLASSES, width=8, dropout=0.1, sync_batch_norm=False):
    """Six small blocks B1-B6 (strides 2, 2, 2, 1, 2, 1), the last to `num_classes`: a custom
    backbone that traces in seconds, with batch norm (state) and a dropout in the head."""

    def conv_block(name, filters, stride, in_channels):
        return keras.Sequential(
            [
                keras.Input((None, None, in_channels)),
                layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False),
                layers.BatchNormalization(synchronized=sync_batch_norm),
                layers.ReLU(),
            ],
            name=name,
        )

    head = keras.Sequential(
        [
            keras.Input((None, None, 2 * width)),
            layers.Conv2D(width, 3, padding="same"),
            layers.Dropout(dropout),
            layers.Conv2D(num_classes, 1),
        ],
        name="block6",
    )
    return [
        conv_block("block1", width, 2, 3),
        conv_block("block2", width, 2, width),
        conv_block("block3", 2 * width, 2, width),
        conv_block("block4", 2 * width, 1, 2 * width),
        conv_block("block5", 2 * width, 2, 2 * width),
        head,
    ]


def tiny_rignet(
    mode="parallel",
    backbone="resnet18",
    ui=3,
    *,
    num_classes=NUM_CLASSES,
    feedback_blocks=(4, 6),
    input_shape=None,
    calibrate=False,
    seed=None,
    **kwargs,
):
    """The small RIGNet of the tests.

    mode: the unroll mode; ui: `num_iterations`; backbone: a registered name, "tiny" (the
    export tests' blocks, with "torch" preprocessing), "trainable" (`trainable_blocks`) or six
    layers. input_shape: build for (None, *input_shape) when given. calibrate: set every batch
    norm's moving statistics (the gated passes' too) to those of a few synthetic images at
    `SIZE`, so that a random net still predicts decided, varied maps (a parity test on a random
    net's near-uniform probabilities would pass for a broken export too); builds at `SIZE`.
    seed: seeds Keras first, so that two calls give the same weights. Other keyword arguments
    go to `RIGNet`.
    """
    from rignet_keras import RIGNet

    if seed is not None:
        keras.utils.set_random_seed(seed)
    config = dict(
        num_classes=num_classes,
        feedback_blocks=feedback_blocks,
        unroll_mode=mode,
        num_iterations=ui,
    )
    if isinstance(backbone, str) and backbone == "tiny":
        config.update(backbone=tiny_blocks(num_classes), preprocessing="torch")
    elif isinstance(backbone, str) and backbone == "trainable":
        config.update(backbone=trainable_blocks(num_classes))
    else:
        config.update(backbone=backbone)
    config.update(kwargs)
    model = RIGNet(**config)
    if calibrate:
        from rignet_keras.export.samples import synthetic_images
        from rignet_keras.models.calibration import calibrate_batch_norm
        from rignet_keras.preprocessing import normalize

        model.build((None,) + SIZE + (3,))
        calibrate_batch_norm(
            model, normalize(synthetic_images(4, SIZE, seed=100), model.preprocessing)
        )
    elif input_shape is not None:
        model.build((None,) + tuple(input_shape))
    return model


# --------------------------------------------------------------------------------------------
# A tiny VOCdevkit and the recipe run over it


def write_voc_fixture(root, num_train=6, num_val=3, size=(48, 64), seed=0):
    """A tiny VOCdevkit: JPEGs, palette PNG masks (classes 0, 1, 15 and void 255 borders), the
    ImageSets lists, and the SegmentationClassAug folder + train_aug.txt of VOC-aug."""
    from PIL import Image

    from rignet_runtime import voc_palette

    rng = np.random.default_rng(seed)
    voc = os.path.join(root, "VOCdevkit", "VOC2012")
    folders = {
        name: os.path.join(voc, name)
        for name in ("JPEGImages", "SegmentationClass", "SegmentationClassAug")
    }
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    sets = os.path.join(voc, "ImageSets", "Segmentation")
    os.makedirs(sets, exist_ok=True)
    h, w = size
    palette = voc_palette().reshape(-1).tolist()
    ids = {"train": [], "val": []}
    for split, n in (("train", num_train), ("val", num_val)):
        for i in range(n):
            sample_id = f"2007_{split}{i:03d}"
            image = np.full((h, w, 3), 100, np.uint8) + rng.integers(
                0, 20, (h, w, 3), dtype=np.uint8
            )
            mask = np.zeros((h, w), np.uint8)
            for cls, colour in ((1, (220, 40, 40)), (15, (40, 40, 220))):
                y0, x0 = int(rng.integers(0, h - 16)), int(rng.integers(0, w - 16))
                image[y0 : y0 + 16, x0 : x0 + 16] = colour
                mask[y0 : y0 + 16, x0 : x0 + 16] = cls
                mask[y0, x0 : x0 + 16] = 255
            Image.fromarray(image).save(os.path.join(folders["JPEGImages"], f"{sample_id}.jpg"))
            png = Image.frombytes("P", (w, h), mask.tobytes())
            png.putpalette(palette)
            png.save(os.path.join(folders["SegmentationClass"], f"{sample_id}.png"))
            png.save(os.path.join(folders["SegmentationClassAug"], f"{sample_id}.png"))
            ids[split].append(sample_id)
    lists = {**ids, "trainval": ids["train"] + ids["val"], "train_aug": ids["train"]}
    for name, entries in lists.items():
        with open(os.path.join(sets, f"{name}.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in entries))
    return root


VOC_RECIPE = os.path.join(ROOT, "recipes", "voc_r50.py")


# The flags that make recipes/voc_r50.py a two-step ResNet-18 run on the tiny VOCdevkit.
SMALL_VOC_RUN = (
    "--backbone",
    "resnet18",
    "--steps",
    "2",
    "--batch-size",
    "2",
    "--crop-size",
    "48",
    "--eval-size",
    "64",
    "--num-visualize",
    "2",
    "--quiet",
)


# --------------------------------------------------------------------------------------------
# Training runs


def tiny_net(num_iterations=3, dropout=0.1, **kwargs):
    """`tiny_rignet` over `trainable_blocks` (3 classes): the training tests' network."""
    return tiny_rignet(
        ui=num_iterations,
        backbone=trainable_blocks(dropout=dropout),
        num_classes=TRAIN_CLASSES,
        **kwargs,
    )


def make_trainer(output_dir, net_kwargs=None, **overrides):
    """A built `Trainer` of `tiny_net(**net_kwargs)` for 8 steps of batch 4 on 32x32 inputs
    (backups every 2 steps, epochs of 4); `overrides` change the `TrainConfig`."""
    from rignet_keras.config import TrainConfig
    from rignet_keras.training.trainer import Trainer

    config = dict(
        steps=8,
        steps_per_epoch=4,
        batch_size=4,
        learning_rate=0.05,
        save_freq=2,
        train_iterations=(1, 3),
        warmup_steps=2,
        weight_decay=1e-4,
        backbone_lr_multiplier=0.5,
        tensorboard=False,
        verbose=0,
    )
    config.update(overrides)
    trainer = Trainer(TrainConfig(**config), output_dir)
    trainer.build(lambda: tiny_net(**(net_kwargs or {})), (None, 32, 32, 3))
    return trainer


class Interrupt(Exception):
    """Raised by `InterruptAt`: a training run stopped on purpose."""


class InterruptAt(keras.callbacks.Callback):
    """Raises at the end of optimizer step `step` (after the backup callback has run)."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            raise Interrupt(f"killed at step {self.step}")


def perturbed(model, seed=5):
    """`model` with every weight (batch-norm statistics too) moved off its initial value."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(
                [w + rng.normal(0.0, 0.05, w.shape).astype(w.dtype) for w in layer.get_weights()]
            )
    return model


def chained(blocks, x):
    """The outputs of `blocks` run one after the other on `x` (inference mode), as NumPy."""
    outs = []
    for block in blocks:
        x = block(x, training=False)
        outs.append(keras.ops.convert_to_numpy(x))
    return outs


# --------------------------------------------------------------------------------------------
# The layer contract


@dataclasses.dataclass(frozen=True)
class LayerCase:
    """How to build and call one layer for `run_layer_test`.

    make: () -> a new layer (under the current dtype policy).
    inputs: rng -> the call's inputs (an array, or a tuple of arrays for multi-input layers);
        None for a layer that is not called (`not_called` says why; the checks that call it are
        skipped with that reason, the config round trip still runs).
    output_dtype: the eager output's dtype under mixed_float16 ("float16" for a layer computing
        in the policy's dtype; "float32" for a model whose logits are float32 by design).
    mixed_tolerance: the largest |mixed_float16 - float32| difference allowed, relative to the
        float32 output's largest magnitude.
    no_weights: why a called layer has no trainable weights (the training-step check is skipped
        with it); "" for a layer that has them.
    """

    make: Callable
    inputs: Callable | None
    output_dtype: str = "float16"
    mixed_tolerance: float = 2e-2
    not_called: str = ""
    no_weights: str = ""


LAYER_CHECKS = ("config", "saving", "symbolic", "training_step", "mixed_float16")


def _as_tuple(inputs):
    return inputs if isinstance(inputs, tuple) else (inputs,)


def _call_args(inputs):
    """A single input as itself, several as the tuple the layer takes."""
    return inputs if len(inputs) > 1 else inputs[0]


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _numpy(outputs):
    return [keras.ops.convert_to_numpy(o) for o in _as_list(outputs)]


def run_layer_test(case, check, tmp_path=None, cls=None, registered_name=None, seed=0):
    """Runs one of `LAYER_CHECKS` on `case` (a `LayerCase`); raises `pytest.skip` with the
    case's reason where the check does not apply. `cls` / `registered_name`: the class the
    config must rebuild as, and the name Keras must resolve to it (the config check);
    `tmp_path`: a folder for the saving check."""
    import pytest

    if check not in LAYER_CHECKS:
        raise ValueError(f"unknown layer check {check!r}; one of {LAYER_CHECKS}")
    rng = np.random.default_rng(seed)
    if check == "config":
        _check_config(case, rng, cls, registered_name)
        return
    if case.inputs is None:
        pytest.skip(case.not_called)
    if check == "training_step" and case.no_weights:
        pytest.skip(case.no_weights)
    {
        "saving": lambda: _check_saving(case, rng, tmp_path),
        "symbolic": lambda: _check_symbolic(case, rng),
        "training_step": lambda: _check_training_step(case, rng),
        "mixed_float16": lambda: _check_mixed_float16(case, rng),
    }[check]()


def _built(case, rng):
    """A new layer of `case`, called once eagerly; (layer, inputs, eager outputs)."""
    layer = case.make()
    inputs = _as_tuple(case.inputs(rng))
    outputs = layer(_call_args(inputs))
    return layer, inputs, outputs


def _check_config(case, rng, cls, registered_name):
    layer = case.make()
    if case.inputs is not None:
        layer(_call_args(_as_tuple(case.inputs(rng))))
    config = layer.get_config()
    cls = cls or type(layer)
    rebuilt = cls.from_config(config)
    assert type(rebuilt) is cls
    assert rebuilt.get_config() == config
    if registered_name is not None:  # the name resolves to the class, as `load_model` does
        assert keras.saving.get_registered_object(registered_name) is cls


def _check_saving(case, rng, tmp_path):
    layer, inputs, outputs = _built(case, rng)
    if isinstance(layer, keras.Model):
        saved = layer
    else:
        symbolic = [keras.Input(x.shape[1:], name=f"input_{i}") for i, x in enumerate(inputs)]
        saved = keras.Model(symbolic, layer(_call_args(tuple(symbolic))))
    path = os.path.join(str(tmp_path), "layer.keras")
    saved.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    expected = _numpy(saved(_call_args(inputs)) if saved is not layer else outputs)
    restored = _numpy(loaded(_call_args(inputs)))
    assert len(restored) == len(expected)
    for got, want in zip(restored, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _check_symbolic(case, rng):
    layer, inputs, outputs = _built(case, rng)
    symbolic = tuple(keras.Input(x.shape[1:]) for x in inputs)
    result = layer(_call_args(symbolic))
    eager, spec = _as_list(outputs), _as_list(result)
    assert len(spec) == len(eager)
    for s, e in zip(spec, eager, strict=True):
        assert isinstance(s, keras.KerasTensor)
        assert tuple(s.shape) == (None,) + tuple(e.shape[1:])
        assert keras.backend.standardize_dtype(s.dtype) == keras.backend.standardize_dtype(e.dtype)


def _check_training_step(case, rng):
    import tensorflow as tf

    layer, inputs, _ = _built(case, rng)
    name = type(layer).__name__
    trainable = layer.trainable_variables
    assert trainable, f"{name} has no trainable weights"
    before = [v.numpy().copy() for v in trainable]
    with tf.GradientTape() as tape:
        outputs = _as_list(layer(_call_args(inputs), training=True))
        loss = tf.add_n([tf.reduce_mean(tf.square(tf.cast(o, tf.float32))) for o in outputs])
    gradients = tape.gradient(loss, trainable)
    missing = [v.path for v, g in zip(trainable, gradients, strict=True) if g is None]
    assert not missing, f"{name}: no gradient for {missing}"
    for v, g in zip(trainable, gradients, strict=True):
        assert np.all(np.isfinite(g.numpy())), f"{name}: non-finite gradient for {v.path}"
    keras.optimizers.SGD(learning_rate=0.1).apply(gradients, trainable)
    unchanged = [
        v.path for v, old in zip(trainable, before, strict=True) if np.array_equal(v.numpy(), old)
    ]
    assert not unchanged, f"{name}: one SGD step left {unchanged} unchanged"


def _check_mixed_float16(case, rng):
    inputs = _as_tuple(case.inputs(rng))
    reference = case.make()
    expected = _numpy(reference(_call_args(inputs)))
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = case.make()
        layer(_call_args(inputs))  # builds the variables
        layer.set_weights(reference.get_weights())
        outputs = _as_list(layer(_call_args(inputs)))
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.config.dtype_policy().name == previous
    variable_dtypes = {keras.backend.standardize_dtype(v.dtype) for v in layer.trainable_variables}
    assert variable_dtypes == (set() if case.no_weights else {"float32"})
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        assert keras.backend.standardize_dtype(got.dtype) == case.output_dtype
        got = keras.ops.convert_to_numpy(got).astype("float32")
        assert np.all(np.isfinite(got))
        scale = float(np.abs(want).max()) or 1.0
        assert float(np.abs(got - want).max()) <= case.mixed_tolerance * scale


# --------------------------------------------------------------------------------------------
# Saving round trips


def assert_reloads(models, x, folder, atol=1e-5):
    """Saves each of `models` ({name: model}) as `<folder>/<name>.keras`, loads it in safe mode
    in this process, and requires its inference-mode outputs on `x` to equal the model's own
    within `atol`."""
    for name, model in models.items():
        path = os.path.join(str(folder), f"{name}.keras")
        expected = keras.ops.convert_to_numpy(model(x, training=False))
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(loaded(x, training=False)),
            expected,
            atol=atol,
            rtol=0,
            err_msg=name,
        )


def assert_reloads_in_a_fresh_process(models, x, folder, atol=1e-5):
    """Saves each of `models` ({name: model}) as `<folder>/<name>.keras`, loads it in safe mode
    in a new Python process (which has imported rignet_keras and nothing of the test), and
    requires its inference-mode outputs on `x` to equal the model's own within `atol`."""
    for name, model in models.items():
        np.save(os.path.join(folder, f"{name}.npy"), keras.ops.convert_to_numpy(model(x)))
        model.save(os.path.join(folder, f"{name}.keras"))
    np.save(os.path.join(folder, "x.npy"), x)
    script = textwrap.dedent(
        f"""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import keras, numpy as np
        import rignet_keras  # registers the serializable classes
        folder = {str(folder)!r}
        x = np.load(os.path.join(folder, "x.npy"))
        for name in {sorted(models)!r}:
            model = keras.models.load_model(os.path.join(folder, name + ".keras"), safe_mode=True)
            out = keras.ops.convert_to_numpy(model(x, training=False))
            np.save(os.path.join(folder, name + "_loaded.npy"), out)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600)
    for name in models:
        np.testing.assert_allclose(
            np.load(os.path.join(folder, f"{name}_loaded.npy")),
            np.load(os.path.join(folder, f"{name}.npy")),
            atol=atol,
            rtol=0,
            err_msg=name,
        )


# --------------------------------------------------------------------------------------------
# Export parity


def keras_probabilities(model, samples, num_iterations):
    """The Keras model's softmax on uint8 images: float32 (N, H, W, C)."""
    import tensorflow as tf

    from rignet_keras.preprocessing import normalize

    logits = model(
        normalize(samples, model.preprocessing), training=False, num_iterations=num_iterations
    )
    return tf.nn.softmax(logits, axis=-1).numpy()


def assert_matches_keras(reference, probabilities, class_map, atol=1e-4, what=""):
    """Probabilities within `atol`; labels equal wherever the Keras model is not near a tie."""
    probabilities = np.asarray(probabilities)
    assert probabilities.shape == reference.shape, what
    np.testing.assert_allclose(probabilities, reference, atol=atol, rtol=0, err_msg=what)
    top = np.sort(reference, axis=-1)
    decided = (top[..., -1] - top[..., -2]) > 10 * atol
    assert decided.mean() > 0.5, f"{what}: the test model's predictions are mostly ties"
    labels = reference.argmax(-1)
    np.testing.assert_array_equal(np.asarray(class_map)[decided], labels[decided], err_msg=what)


def assert_exports_match_keras(model, folder, uis=(1, 2), what="", stem="rignet"):
    """On fresh images, each `ui_<k>` signature of `<folder>/<stem>_float32.tflite` and each
    `<stem>_ui<k>.onnx` give the Keras model's probabilities and labels (`assert_matches_keras`)."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    samples = fresh_images()
    interpreter = Interpreter(os.path.join(folder, f"{stem}_float32.tflite"), num_threads=2)
    for ui in uis:
        reference = keras_probabilities(model, samples, ui)
        runner = interpreter.get_signature_runner(f"ui_{ui}")
        outs = [runner(images=samples[i : i + 1]) for i in range(len(samples))]
        assert_matches_keras(
            reference,
            np.concatenate([o["probabilities"] for o in outs]),
            np.concatenate([o["class_map"] for o in outs]),
            what=f"{what} tflite ui_{ui}",
        )
        session = ort.InferenceSession(
            os.path.join(folder, f"{stem}_ui{ui}.onnx"), providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        out = dict(zip(names, session.run(None, {"images": samples}), strict=True))
        assert_matches_keras(
            reference, out["probabilities"], out["class_map"], what=f"{what} onnx ui_{ui}"
        )


# --------------------------------------------------------------------------------------------
# The on-device runner, without TensorFlow

RUNNER_SCRIPT = os.path.join(ROOT, "export", "run_tflite.py")

# Runs a script with a meta-path finder that makes importing any of these fail, then prints
# which of them (and which modules of the package outside the runtime) were loaded.
RUNNER_PRELUDE = """
import json, runpy, sys
BLOCKED = {"tensorflow", "keras", "tf_keras", "tf2onnx", "onnxruntime", "jax", "torch"}
# The device runtime is the one package of the project it may load.
ALLOWED = "rignet_runtime"
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: the on-device runner must not import it")
        return None
sys.meta_path.insert(0, Block())
script, args = json.loads(sys.argv[1])
sys.argv = [script] + args
try:
    runpy.run_path(script, run_name="__main__")
finally:
    loaded = sorted(
        m for m in sys.modules
        if m.split(".")[0] in BLOCKED
        or (m.startswith("rignet") and m.split(".")[0] != ALLOWED)
    )
    print("BLOCKED_MODULES_LOADED=" + json.dumps(loaded))
"""


def run_runner_script(*args):
    """Runs export/run_tflite.py with TensorFlow, Keras and the converters blocked; requires
    that none of them was loaded; returns (exit status, stdout, stderr)."""
    process = subprocess.run(
        [sys.executable, "-c", RUNNER_PRELUDE, json.dumps([RUNNER_SCRIPT, [str(a) for a in args]])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert "BLOCKED_MODULES_LOADED=[]" in process.stdout, process.stdout + process.stderr
    return process.returncode, process.stdout, process.stderr
