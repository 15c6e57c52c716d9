"""The model on Keras' JAX backend (README: the model is plain Keras 3): train, predict, reload.

Run in a subprocess, since this process has the TensorFlow backend loaded.
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("jax")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    from rignet_keras import RIGNet

    assert keras.backend.backend() == "jax"
    keras.utils.set_random_seed(0)
    model = RIGNet(num_classes=5, backbone="resnet18", feedback_blocks=(4, 6), num_iterations=3,
                   head_filters=32)
    x = np.random.default_rng(0).normal(size=(2, 48, 48, 3)).astype("float32")
    y = np.random.default_rng(1).integers(0, 5, size=(2, 48, 48))
    model(x[:1])
    gated = model.pass_statistics.variables[0]
    before = np.array(gated.value)
    own = model.blocks[3].get_layer("conv4_block1_1_bn").moving_mean
    own_before = np.array(own.value)
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    # Both statistics sets moved, each on its own (one buffer each: JAX donates them).
    assert np.abs(np.array(gated.value) - before).max() > 0
    assert np.abs(np.array(own.value) - own_before).max() > 0
    assert not np.allclose(np.array(model.pass_statistics.variables[0].value),
                           np.array(own.value))
    out = np.asarray(model.predict(x, verbose=0))
    assert out.shape == (2, 48, 48, 5) and np.isfinite(out).all()
    model.save(sys.argv[1])
    loaded = keras.models.load_model(sys.argv[1], safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-5)
    print("ok")
    """
)


@pytest.mark.subprocess
def test_trains_predicts_and_reloads_on_jax(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "model.keras")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
