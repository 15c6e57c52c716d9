"""Bad input gets a clear error naming the file or value, and a failed export leaves nothing."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest

from rignet_keras.export import ParityError, export_model, load_rignet
from tests.harness import SIZE, tiny_rignet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A RIGNet .keras file, and the same with its config edited so its weights do not fit."""
    folder = tmp_path_factory.mktemp("keras_files")
    model = tiny_rignet("parallel", backbone="resnet18", head_filters=64, calibrate=True, seed=0)
    path = folder / "rignet.keras"
    model.save(path)

    def edited(name, change):
        target = folder / name
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
            for item in source.namelist():
                data = source.read(item)
                if item == "config.json":
                    config = json.loads(data)
                    change(config["config"])
                    data = json.dumps(config).encode()
                out.writestr(item, data)
        return target

    return {
        "model": model,
        "path": path,
        "other_backbone": edited("resnet34.keras", lambda c: c.update(backbone="resnet34")),
        "other_classes": edited("seven.keras", lambda c: c.update(num_classes=7)),
    }


def test_keras_file_that_is_not_a_rignet(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 1)], name="plain")
    path = tmp_path / "plain.keras"
    model.save(path)
    with pytest.raises(ValueError, match=r"plain\.keras.*holds a Sequential.*not a rignet_keras"):
        load_rignet(path)


@pytest.mark.parametrize("key", ["other_backbone", "other_classes"])
def test_weights_that_do_not_fit_the_architecture(saved, key):
    path = saved[key]
    with pytest.raises(ValueError, match=rf"{path.name}.*could not be loaded as a RIGNet"):
        load_rignet(path)


def test_weights_file_for_another_architecture(saved, tmp_path):
    other = tiny_rignet(
        "parallel", backbone="tiny", calibrate=True, seed=0
    )  # the tiny custom backbone
    weights = tmp_path / "tiny.weights.h5"
    other.save_weights(weights)
    with pytest.raises(ValueError, match=r"tiny\.weights\.h5.*do not fit the RIGNet of"):
        load_rignet(saved["path"], weights=weights)


def test_missing_and_misnamed_files(tmp_path):
    with pytest.raises(ValueError, match=r"nothing\.keras.*does not exist"):
        load_rignet(tmp_path / "nothing.keras")
    text = tmp_path / "model.h5"
    text.write_text("no")
    with pytest.raises(ValueError, match=r"model\.h5.*not a \.keras file"):
        load_rignet(text)
    broken = tmp_path / "broken.keras"
    broken.write_text("not a zip")
    with pytest.raises(ValueError, match=r"broken\.keras.*could not be loaded"):
        load_rignet(broken)


def test_export_options_are_checked(tmp_path):
    model = tiny_rignet("sequential", backbone="tiny", calibrate=True, seed=0)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"needs? a parallel, multi_range.*'sequential'"):
        export_model(model, out, input_size=SIZE, stepwise=True)
    with pytest.raises(ValueError, match="precision must be one of.*'int4'"):
        export_model(model, out, input_size=SIZE, precisions=("int4",))
    with pytest.raises(ValueError, match="TFLite graphs need a fixed input_size"):
        export_model(model, out, input_size=None)
    with pytest.raises(ValueError, match="formats must be.*'coreml'"):
        export_model(model, out, input_size=SIZE, formats=("coreml",))
    with pytest.raises(ValueError, match="every ui must be an int >= 1; received 0"):
        export_model(model, out, input_size=SIZE, uis=(0, 1))
    with pytest.raises(ValueError, match=r"input_size must be \(height, width\)"):
        export_model(model, out, input_size="big")
    with pytest.raises(TypeError, match="must be a rignet_keras.RIGNet"):
        export_model(keras.Sequential([keras.layers.Dense(1)]), out, input_size=SIZE)
    assert not out.exists()


def test_class_names_must_name_every_class(tmp_path):
    model = tiny_rignet("parallel", backbone="tiny", ui=2, num_classes=3, seed=0)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="class_names has 2 names; the model has num_classes=3"):
        export_model(model, out, input_size=SIZE, class_names=("a", "b"))
    assert not out.exists()


def test_representative_data_of_the_wrong_size_or_type(tmp_path):
    model = tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0)
    wrong_size = np.zeros((2, 64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match=r"representative data.*64x64.*71x65"):
        export_model(
            model,
            tmp_path / "a",
            input_size=SIZE,
            formats=("tflite",),
            precisions=("int8",),
            representative_data=[wrong_size],
        )
    with pytest.raises(ValueError, match="parity data must be uint8.*float32"):
        export_model(
            model,
            tmp_path / "b",
            input_size=SIZE,
            formats=("saved_model",),
            parity_data=[np.zeros((1, *SIZE, 3), np.float32)],
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_failed_export_leaves_nothing(tmp_path, monkeypatch):
    """The export runs in a hidden temporary folder; a parity failure removes it. The fault: the
    Keras reference the files are compared with is turned upside down."""
    from rignet_keras.export import exporter

    reference = exporter._probabilities
    monkeypatch.setattr(exporter, "_probabilities", lambda *args: 1.0 - reference(*args))
    model = tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0)
    out = tmp_path / "exported"
    with pytest.raises(ParityError, match=r"saved_model ui_1.*max \|probability difference\|"):
        export_model(
            model,
            out,
            input_size=SIZE,
            uis=(1,),
            formats=("saved_model",),
            stepwise=False,
            latency_runs=0,
        )
    assert os.listdir(tmp_path) == []  # no output folder, no partial folder


def test_existing_output_folder_needs_overwrite(tmp_path):
    out = tmp_path / "exported"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="exported.*already exists.*overwrite"):
        export_model(
            tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0),
            out,
            input_size=SIZE,
            formats=("saved_model",),
        )
    assert (out / "keep.txt").read_text() == "mine"


def test_export_script_names_the_bad_file(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "export_model_script", os.path.join(ROOT, "export", "export_model.py")
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    plain = tmp_path / "plain.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]).save(plain)
    assert script.main([str(plain), str(tmp_path / "out"), "--input-size", "65", "71"]) == 2
    assert "plain.keras" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
