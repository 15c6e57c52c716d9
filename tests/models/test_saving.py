"""Saving round trips: .keras in safe mode (same and fresh process), config, weights files."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from rignet_keras import RIGNet
from rignet_keras.models.arguments import UNROLL_MODES
from tests.harness import images, tiny_rignet

CASES = [dict(unroll_mode=mode) for mode in UNROLL_MODES] + [
    dict(gate_pooling="max", gate_combine="mul_tanh"),
    dict(gate_pooling=None, gate_combine="add_relu", gate_bottleneck=16),
    dict(feedback_blocks=(1, 6), unroll_mode="multi_range", return_all_iterations=True),
    dict(feedback_blocks=None),
    dict(backbone="mobilenetv2", head_filters=64, output_stride=16),
]


def _randomised(model, x):
    model(x)
    rng = np.random.default_rng(3)
    for w in model.trainable_weights:  # leave no weight at its initial value
        w.assign(w + rng.normal(scale=0.01, size=w.shape).astype("float32"))
    for w in model.non_trainable_weights:  # nor any moving statistic, the gated passes' included
        if "moving_" in w.path:
            w.assign(w * rng.uniform(0.8, 1.2, size=w.shape).astype("float32") + 0.01)
    return model


def _outputs(model, x):
    out = model(x)
    out = out if isinstance(out, list) else [out]
    return [keras.ops.convert_to_numpy(o) for o in out]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()))
def test_keras_file_round_trip_in_safe_mode(kwargs, tmp_path):
    x = images(batch=1, height=49, width=53)
    model = _randomised(tiny_rignet(**kwargs), x)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, RIGNet)
    assert loaded.get_config() == model.get_config()
    for a, b in zip(_outputs(loaded, x), _outputs(model, x), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.subprocess
def test_fresh_process_loads_identical_outputs(tmp_path):
    """Every case of CASES, loaded in a new Python process in safe mode, gives the same outputs."""
    x = images(batch=1, height=41, width=45)
    np.save(tmp_path / "x.npy", x)
    for i, kwargs in enumerate(CASES):
        model = _randomised(tiny_rignet(**kwargs), x)
        model.save(tmp_path / f"model{i}.keras")
        np.save(tmp_path / f"expected{i}.npy", np.stack(_outputs(model, x)))
    script = textwrap.dedent(
        f"""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import keras, numpy as np
        import rignet_keras  # registers the serializable classes
        x = np.load(os.path.join({str(tmp_path)!r}, "x.npy"))
        for i in range({len(CASES)}):
            path = os.path.join({str(tmp_path)!r}, f"model{{i}}.keras")
            model = keras.models.load_model(path, safe_mode=True)
            out = model(x)
            out = out if isinstance(out, list) else [out]
            actual = np.stack([keras.ops.convert_to_numpy(o) for o in out])
            np.save(os.path.join({str(tmp_path)!r}, f"actual{{i}}.npy"), actual)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600)
    for i in range(len(CASES)):
        np.testing.assert_allclose(
            np.load(tmp_path / f"actual{i}.npy"),
            np.load(tmp_path / f"expected{i}.npy"),
            rtol=1e-6,
            atol=1e-6,
            err_msg=str(CASES[i]),
        )


def test_config_and_weights_file_round_trip(tmp_path):
    x = images(batch=1, height=33, width=35)
    model = _randomised(tiny_rignet(unroll_mode="sequential", gate_combine="mul_tanh"), x)
    clone = RIGNet.from_config(model.get_config())
    clone.build(x.shape)
    model.save_weights(tmp_path / "model.weights.h5")
    clone.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_allclose(_outputs(clone, x)[0], _outputs(model, x)[0], rtol=1e-6)


def test_weights_of_another_architecture_are_refused(tmp_path):
    x = images(batch=1, height=33, width=35)
    tiny_rignet(feedback_blocks=(4, 6))(x)
    model = tiny_rignet(feedback_blocks=(4, 6))
    model(x)
    model.save_weights(tmp_path / "a.weights.h5")
    other = tiny_rignet(feedback_blocks=(2, 6))
    other(x)
    with pytest.raises(ValueError):
        other.load_weights(tmp_path / "a.weights.h5")
