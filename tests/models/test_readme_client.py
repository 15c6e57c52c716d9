"""README's "Using the model" block is the client script a keras-hub user would write: run as it
stands in a fresh process (from_preset of a small architecture, compile() with no arguments, fit
on uint8 images and masks with void pixels, predict, save_to_preset, export to LiteRT), then the
preset folder reloaded in another process gives identical outputs, and every ui signature of the
LiteRT export gives the segmenter's probabilities at that ui."""

import os
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.harness import assert_matches_keras

ROOT = pathlib.Path(__file__).resolve().parents[2]
MARK = "<!-- client-example -->"


def readme_block():
    """The Python block that follows the client-example mark in README.md."""
    text = (ROOT / "README.md").read_text()
    found = re.search(re.escape(MARK) + r"\s*```python\n(.*?)```", text, re.S)
    assert found, f"README.md has no python block after {MARK}"
    return found.group(1)


# Appended to the README block: what the test compares afterwards.
RECORD = """
import json
np.save("images.npy", images)
np.save("scores.npy", scores)
for ui in range(1, segmenter.backbone.num_iterations + 1):
    np.save(f"probabilities_ui{ui}.npy", keras.ops.convert_to_numpy(
        keras.ops.softmax(segmenter(images[:2], num_iterations=ui), axis=-1)))
np.save("reloaded_scores.npy", reloaded.predict(images))
"""

RELOAD = """
import numpy as np
from rignet_keras import RIGNetImageSegmenter
segmenter = RIGNetImageSegmenter.from_preset("my_rignet")
np.save("fresh_scores.npy", segmenter.predict(np.load("images.npy")))
"""


def run(script, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]


def test_readme_block_is_python():
    compile(readme_block(), "README.md", "exec")


@pytest.mark.subprocess
@pytest.mark.export
def test_readme_client_script_round_trips_and_exports(tmp_path):
    run("import keras\n" + readme_block() + textwrap.dedent(RECORD), tmp_path)
    for name in (
        "config.json",
        "model.weights.h5",
        "task.json",
        "preprocessor.json",
        "metadata.json",
    ):
        assert (tmp_path / "my_rignet" / name).is_file(), name
    scores = np.load(tmp_path / "scores.npy")
    assert scores.shape == (8, 64, 64, 3)
    np.testing.assert_array_equal(np.load(tmp_path / "reloaded_scores.npy"), scores)
    run(RELOAD, tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "fresh_scores.npy"), scores)

    from ai_edge_litert.interpreter import Interpreter

    tflite = tmp_path / "my_rignet_litert" / "rignet_float32.tflite"
    interpreter = Interpreter(str(tflite), num_threads=2)
    images = np.load(tmp_path / "images.npy")[:2]
    uis = sorted(tmp_path.glob("probabilities_ui*.npy"))
    assert len(uis) == 3
    signatures = interpreter.get_signature_list()
    for path in uis:
        ui = int(path.stem.removeprefix("probabilities_ui"))
        assert f"ui_{ui}" in signatures, sorted(signatures)
        runner = interpreter.get_signature_runner(f"ui_{ui}")
        outs = [runner(images=images[i : i + 1]) for i in range(len(images))]
        assert_matches_keras(
            np.load(path),
            np.concatenate([o["probabilities"] for o in outs]),
            np.concatenate([o["class_map"] for o in outs]),
            what=f"litert ui_{ui}",
        )
