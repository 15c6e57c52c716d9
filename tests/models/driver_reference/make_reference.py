"""Writes the driver's reference outputs: small RIGNets of every unroll mode, their weights, and
what they return for ui 1..3 at inference and ui 2 in training.

Usage: `PYTHONPATH=CHECKOUT python tests/models/driver_reference/make_reference.py OUT_DIR`, with
CHECKOUT a checkout of the project before `RIGNet.iterate` (the fixture: commit 1fdbbc9):
the fixture next to this file was written by that implementation of the recurrence (a positional
state list and hand-written unroll loops), whose step-wise helpers (`supports_stepwise`,
`state_indices(model, num_states)`) this script calls, so that `tests/models/test_driver.py`
checks that the driver reproduces it. Writes into OUT_DIR:
    models.json   "backbone": the serialised blocks of `tiny_blocks()` (every model's backbone);
                  "models": per model, its `get_config()` without the backbone, and the step-wise
                  state layout (the state entries' shapes, the entries a step reads)
    outputs.npz   "images", the input; per model `<name>/weights/<i>:<variable name>` (every
                  weight in `model.weights` order, batch-norm and gated-pass statistics included),
                  `<name>/ui<k>` (inference logits), `<name>/train_ui2` (training-mode logits
                  from those weights) and `<name>/all_ui3/<t>` (return_all_iterations=True at
                  ui 3). Weights are kept
                  in the archive rather than in one .weights.h5 per model, whose per-file
                  overhead would make the fixture ten times larger.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

MODES = ("sequential", "parallel", "multi_range", "network_recurrent", "network_gated")
BLOCKWISE = ("sequential", "parallel", "multi_range")
FEEDBACK = {"fb26": (2, 6), "fb6": 6, "nofb": None}
BATCH_NORM = ("gated_passes", "first_pass", "every_pass")
NUM_CLASSES = 3
INPUT_SHAPE = (1, 9, 11, 3)  # odd sizes, not a multiple of the output stride
UIS = (1, 2, 3)


def tiny_blocks():
    """Six small serialisable blocks: strided 3x3 convolution + batch norm + ReLU, then a 1x1
    classifier with `NUM_CLASSES` channels."""

    def block(filters, strides, name):
        return keras.Sequential(
            [
                layers.Conv2D(
                    filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
                ),
                layers.BatchNormalization(name=f"{name}_bn"),
                layers.ReLU(name=f"{name}_relu"),
            ],
            name=name,
        )

    return [
        block(4, 2, "block1"),
        block(4, 2, "block2"),
        block(4, 1, "block3"),
        block(6, 2, "block4"),
        block(6, 1, "block5"),
        keras.Sequential([layers.Conv2D(NUM_CLASSES, 1, name="block6_conv")], name="block6"),
    ]


def model_specs():
    """[(name, RIGNet kwargs)]: every mode, feedback option and recurrent_batch_norm option."""
    specs = []
    for mode in MODES:
        feedback = FEEDBACK if mode in BLOCKWISE else {"net": (4, 6)}
        for fb_name, fb in feedback.items():
            # Without gates no block repeats, and the batch-norm option changes nothing.
            for bn in BATCH_NORM if fb is not None else BATCH_NORM[:1]:
                kwargs = dict(unroll_mode=mode, feedback_blocks=fb, recurrent_batch_norm=bn)
                specs.append((f"{mode}-{fb_name}-{bn}", kwargs))
    return specs


def perturb(model, rng):
    """Moves every weight, gate and moving statistic (the gated passes' too) away from its
    initial value, so a wrong pass, gate or statistics set shows in the outputs."""
    for variable in model.weights:
        value = keras.ops.convert_to_numpy(variable)
        if variable.path.endswith("variance"):
            new = rng.uniform(0.5, 2.0, size=value.shape)
        elif variable.path.endswith("mean"):
            new = rng.normal(scale=0.5, size=value.shape)
        else:
            new = value + rng.normal(scale=0.3, size=value.shape)
        variable.assign(new.astype(value.dtype))


def step_layout(model):
    """The step-wise wire layout of the state ({"shapes", "read"}), or None for no step."""
    from rignet_keras.export.signatures import state_indices, supports_stepwise

    if not supports_stepwise(model):
        return None
    state = model.initial_state(np.zeros(INPUT_SHAPE, np.float32), training=False)
    read, _ = state_indices(model, len(state))
    return {"shapes": [list(s.shape) for s in state], "read": read}


def weight_keys(model):
    """ "<i>:<name>" for every variable of `model.weights`, in order."""
    return [f"{i}:{v.name}" for i, v in enumerate(model.weights)]


def build(config, weights, **overrides):
    """A RIGNet from its config, with `weights` ({weight key: value}) assigned."""
    from rignet_keras import RIGNet

    model = RIGNet.from_config(dict(config, **overrides))
    model.build(INPUT_SHAPE)
    keys = weight_keys(model)
    if keys != list(weights):
        raise ValueError(f"the model's variables differ from the saved ones: {keys}")
    for variable, value in zip(model.weights, weights.values(), strict=True):
        variable.assign(value)
    return model


def main(out_dir):
    from rignet_keras import RIGNet

    os.makedirs(out_dir, exist_ok=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.normal(size=INPUT_SHAPE).astype(np.float32)
    arrays = {"images": images}
    models = {}
    backbone = [keras.saving.serialize_keras_object(b) for b in tiny_blocks()]
    for name, kwargs in model_specs():
        model = RIGNet(
            num_classes=NUM_CLASSES,
            backbone=tiny_blocks(),
            num_iterations=2,
            preprocessing="torch",
            name="rignet",
            **kwargs,
        )
        model.build(INPUT_SHAPE)
        perturb(model, rng)
        weights = {
            key: keras.ops.convert_to_numpy(v)
            for key, v in zip(weight_keys(model), model.weights, strict=True)
        }
        arrays.update({f"{name}/weights/{key}": value for key, value in weights.items()})
        config = model.get_config()
        for k in UIS:
            arrays[f"{name}/ui{k}"] = keras.ops.convert_to_numpy(
                model(images, training=False, num_iterations=k)
            )
        trained = build(config, weights)  # a training call moves the moving statistics
        arrays[f"{name}/train_ui2"] = keras.ops.convert_to_numpy(
            trained(images, training=True, num_iterations=2)
        )
        if kwargs["unroll_mode"] != "sequential":
            every = build(config, weights, return_all_iterations=True)
            for t, logits in enumerate(every(images, training=False, num_iterations=3), 1):
                arrays[f"{name}/all_ui3/{t}"] = keras.ops.convert_to_numpy(logits)
        config = json.loads(json.dumps(config, default=list))
        del config["backbone"]  # the blocks of `tiny_blocks()`, stored once
        models[name] = {"config": config, "step_layout": step_layout(model)}
        print(name)
    np.savez_compressed(os.path.join(out_dir, "outputs.npz"), **arrays)
    with open(os.path.join(out_dir, "models.json"), "w", encoding="utf-8") as f:
        json.dump({"backbone": backbone, "models": models}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_reference.py OUT_DIR")
    main(sys.argv[1])
