"""Shared test helpers: quiet TensorFlow, deterministic seeds, tiny models and NumPy references."""

import os
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def tiny_model(**kwargs):
    """A small RIGNet for tests: ResNet-18, 5 classes, gates on <6..4> unless overridden."""
    from rignet_keras import RIGNet

    config = dict(num_classes=5, backbone="resnet18", feedback_blocks=(4, 6), num_iterations=3)
    config.update(kwargs)
    return RIGNet(**config)


def images(batch=2, height=65, width=71, seed=0):
    """Random float images (odd sizes by default: RIGNet must take any H and W)."""
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype("float32")


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
