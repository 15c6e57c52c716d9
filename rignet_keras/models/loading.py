"""Loading a saved RIGNet from a `.keras` file: one loader, one set of errors.

`load_rignet(path)` is what the commands, the evaluation of a run and the exporter call. Every
failure is a `ValueError` whose one line names the file: a missing file, a file that is not a
Keras archive, another kind of model, or weights that do not fit the configuration. For the last,
the stored tensors' shapes are compared with those of the configured architecture, so that a
configuration edited to another class count is named as such ("the configuration says 7
classes, the weights are those of 5") instead of Keras' "2 objects could not be loaded".
"""

import io
import json
import os
import zipfile

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"


def load_rignet(path, compile=False):
    """The RIGNet saved in the `.keras` file `path`.

    Args:
        path: a `.keras` file written by `RIGNet.save` (or `keras.saving.save_model`).
        compile: passed to `keras.models.load_model`.

    Returns:
        The `RIGNet`.

    Raises:
        ValueError: one line naming the file (see the module docstring).
    """
    import keras

    from rignet_keras.models.rignet import RIGNet

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist")
    if not path.endswith(".keras"):
        raise ValueError(f"{path!r} is not a .keras file (save the model with model.save)")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a Keras model file this package can load: it could not be "
            "loaded as a .keras archive (a zip file)"
        )
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=compile)
    except Exception as error:  # noqa: BLE001  (Keras raises many kinds; name the file)
        reason = class_count_mismatch(path) or first_line(error)
        raise ValueError(
            f"{path!r} could not be loaded as a RIGNet (architecture or weights do not fit): "
            f"{reason}"
        ) from error
    if not isinstance(model, RIGNet):
        raise ValueError(
            f"{path!r} holds a {type(model).__name__} ({model.name!r}), not a rignet_keras.RIGNet"
        )
    return model


def first_line(error):
    """The first line of an exception's message (at most 500 characters), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__


def stored_shapes(path):
    """The sorted shapes of the weights inside a `.keras` archive."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        data = archive.read(WEIGHTS_FILE)
    shapes = []
    with h5py.File(io.BytesIO(data), "r") as weights:
        weights.visititems(
            lambda _, item: (
                shapes.append(tuple(item.shape)) if isinstance(item, h5py.Dataset) else None
            )
        )
    return sorted(shapes)


def _architecture_shapes(config, num_classes):
    """The sorted variable shapes of the RIGNet `config` (a `RIGNet.get_config()` dict) built
    with `num_classes` classes and no weights."""
    from rignet_keras.models.rignet import RIGNet

    model = RIGNet.from_config({**config, "num_classes": num_classes})
    model.build((None, 64, 64, 3))  # the variables' shapes do not depend on the image size
    return sorted(tuple(int(d) for d in v.shape) for v in model.weights)


def class_count_mismatch(path):
    """A sentence naming the class counts when the weights in the `.keras` file `path` are those
    of its architecture with another `num_classes` than its configuration says; else None.

    Candidates are the lengths of the stored 1-D tensors that the configured architecture does
    not have; the first one whose architecture has exactly the stored shapes is named."""
    try:
        with zipfile.ZipFile(path) as archive:
            saved = json.loads(archive.read(CONFIG_FILE))
        if saved.get("class_name") != "RIGNet":
            return None
        config = saved["config"]
        configured = int(config["num_classes"])
        stored = stored_shapes(path)
        expected = _architecture_shapes(config, configured)
        if stored == expected:
            return None
        candidates = sorted(
            {shape[0] for shape in stored if len(shape) == 1 and shape not in expected}
        )
        for candidate in candidates:
            if candidate != configured and _architecture_shapes(config, candidate) == stored:
                return (
                    f"its configuration ({CONFIG_FILE}) says num_classes={configured}, but its "
                    f"weights are those of a {candidate}-class model"
                )
    except Exception:  # noqa: BLE001  (a diagnosis only: the caller reports Keras' error)
        return None
    return None
