"""Preset folders in keras-hub's layout, written whole or not at all, and read back.

A folder holds (`keras_hub.src.utils.preset_utils` names them the same):
    config.json         the backbone, `keras.saving.serialize_keras_object` (compile and build
                        configurations left out)
    model.weights.h5    the backbone's weights
    task.json           the task (the segmenter) without its backbone and preprocessor
    preprocessor.json   the preprocessor
    metadata.json       keras_version, rignet_keras_version, parameter_count, date_saved, tasks

The tasks stage the files in a temporary sibling and rename it onto the final path
(`rignet_keras.export.files.atomic_directory`), so a reader never sees half a preset; a folder
that exists is refused (`check_new_folder`, one line), not merged into.
"""

import datetime
import json
import os

import keras

from rignet_runtime.atomic import write_json

CONFIG_FILE = "config.json"
MODEL_WEIGHTS_FILE = "model.weights.h5"
TASK_CONFIG_FILE = "task.json"
PREPROCESSOR_CONFIG_FILE = "preprocessor.json"
METADATA_FILE = "metadata.json"


def is_preset_folder(name_or_dir):
    """True when `name_or_dir` names a folder holding a config.json."""
    return os.path.isfile(os.path.join(os.fspath(name_or_dir), CONFIG_FILE))


def check_new_folder(path):
    """Refuses (`FileExistsError`, one line) a preset folder that exists: presets are written
    to a new folder (`rignet_keras.export.files.atomic_directory` stages and renames it)."""
    if os.path.exists(path):
        raise FileExistsError(f"{os.fspath(path)} already exists; save a preset to a new folder")
    return path


def serialized(obj):
    """`serialize_keras_object(obj)` less the compile and build configurations (keras-hub)."""
    config = keras.saving.serialize_keras_object(obj)
    for key in ("compile_config", "build_config"):
        config.pop(key, None)
    return config


def write_backbone(folder, backbone, tasks=()):
    """Writes config.json, model.weights.h5 and metadata.json of `backbone` into `folder`."""
    from rignet_keras.version import __version__

    write_json(os.path.join(folder, CONFIG_FILE), serialized(backbone), indent=4)
    backbone.save_weights(os.path.join(folder, MODEL_WEIGHTS_FILE))
    metadata = {
        "keras_version": keras.version(),
        "rignet_keras_version": __version__,
        "parameter_count": backbone.count_params(),
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "tasks": sorted(tasks),
    }
    write_json(os.path.join(folder, METADATA_FILE), metadata, indent=4)


def read_json(folder, name):
    """The JSON content of `folder/name`; a missing file is refused in one line."""
    path = os.path.join(os.fspath(folder), name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: {folder} is not a whole preset folder")
    with open(path) as f:
        return json.load(f)


def read_backbone(folder):
    """The backbone of preset `folder`, built and with its weights loaded."""
    backbone = keras.saving.deserialize_keras_object(read_json(folder, CONFIG_FILE))
    backbone.build((None, None, None, 3))
    backbone.load_weights(os.path.join(os.fspath(folder), MODEL_WEIGHTS_FILE))
    return backbone
