"""The one loader of saved RIGNets (`rignet_keras.models.loading`): a model round-trips, and
every file it cannot load is refused in one line naming the file and what does not fit."""

import json
import zipfile

import numpy as np
import pytest

from rignet_keras.cli import UsageError
from rignet_keras.cli import load_rignet as cli_load_rignet
from rignet_keras.models.loading import class_count_mismatch, load_rignet
from tests.harness import tiny_rignet


def _edit_class_count(source, target, delta):
    """A copy of the archive `source` whose configuration says `delta` more classes."""
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["num_classes"] += delta
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


@pytest.fixture
def saved(tmp_path):
    model = tiny_rignet()
    images = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    expected = model(images, training=False)
    path = tmp_path / "model.keras"
    model.save(path)
    return path, images, np.asarray(expected)


def test_a_saved_model_loads_and_predicts_the_same(saved):
    path, images, expected = saved
    model = load_rignet(path)
    np.testing.assert_array_equal(np.asarray(model(images, training=False)), expected)
    assert class_count_mismatch(path) is None


def test_a_configuration_edited_to_another_class_count_is_named(saved, tmp_path):
    path, _, _ = saved
    classes = json.loads(zipfile.ZipFile(path).read("config.json"))["config"]["num_classes"]
    edited = tmp_path / "edited.keras"
    _edit_class_count(path, edited, 2)
    expected = (
        f"its configuration (config.json) says num_classes={classes + 2}, but its weights are "
        f"those of a {classes}-class model"
    )
    with pytest.raises(ValueError) as raised:
        load_rignet(edited)
    message = str(raised.value)
    assert "\n" not in message and str(edited) in message and message.endswith(expected)
    with pytest.raises(UsageError, match=r"^--model '.*edited\.keras.*num_classes="):
        cli_load_rignet(str(edited))


def test_files_that_are_no_rignet_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"nothing\.keras' does not exist"):
        load_rignet(tmp_path / "nothing.keras")
    text = tmp_path / "model.keras"
    text.write_text("not an archive")
    with pytest.raises(
        ValueError, match=r"model\.keras' is not a Keras model file this package can load"
    ):
        load_rignet(text)
    other = tmp_path / "model.h5"
    other.touch()
    with pytest.raises(ValueError, match=r"is not a \.keras file"):
        load_rignet(other)
