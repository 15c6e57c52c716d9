"""Quality per exported graph: each file's mIoU on a validation set, recorded in the manifest.

A device choosing a graph by its latency (`--budget-ms`) should also know what it gets: the
exporter, given a validation source, runs **each exported file** on it with the file's own
runtime (TFLite with `ai_edge_litert`, ONNX with onnxruntime, the SavedModel with TensorFlow),
every ui signature, and the step-wise graphs after every iteration, and scores the class maps
with the package's one mIoU (`rignet_keras.confusion`). Each signature gets

    "quality": {"miou": ..., "pixel_accuracy": ..., "images": N, "source": "..."}

(a step-wise `step` signature gets `quality_by_iterations`, one entry per iteration, `init`
the first), and the manifest a top-level `quality_data` saying where the images came from.

Validation sources (`collect_validation`):
    a folder in the VOC layout (`VOCdevkit/VOC2012` with `ImageSets/Segmentation/val.txt`, as
        `rignet_keras.data.synthetic.write_synthetic_voc` writes): its "val" split;
    "synthetic": the built-in synthetic dataset's validation split, generated at the export's
        input size with the model's classes and the default settings; a `SyntheticConfig` for
        the task a model was trained on (`export/export_model.py --validation synthetic`
        reads it from the model's run folder); the manifest records the configuration;
    arrays: `(images, labels)`, uint8 (N, H, W, 3) and int (N, H, W) with 255 for void.
Labels the model cannot predict (a class >= its class count) are refused. Images of another
size are resized to the export's input size (bilinear), and their labels
with nearest neighbours, so the figures are those of the graph as a device runs it.
"""

import os

import numpy as np
from PIL import Image

from rignet_keras.confusion import IGNORE_LABEL, confusion_matrix, segmentation_scores
from rignet_keras.export.defaults import DEFAULT_VALIDATION_IMAGES
from rignet_runtime.wire import CLASS_MAP, INIT_SIGNATURE, STEP_SIGNATURE

__all__ = [
    "DEFAULT_VALIDATION_IMAGES",
    "add_quality",
    "collect_validation",
    "evaluate_artifacts",
    "score",
]

# The formats whose files are scored (the `model.keras` file is the model itself).
SCORED_FORMATS = ("tflite", "onnx", "saved_model")
# Validation images per call, where a file's graphs take a batch (SavedModel, ONNX).
QUALITY_BATCH = 8


def _resize(array, size, resample):
    if tuple(array.shape[:2]) == tuple(size):
        return array
    return np.asarray(Image.fromarray(array).resize((size[1], size[0]), resample))


def _fit(images, labels, size, what):
    images, labels = list(images), list(labels)
    if len(images) != len(labels):
        raise ValueError(f"{what}: {len(images)} images but {len(labels)} label maps")
    if not images:
        raise ValueError(f"{what} holds no image")
    fitted_images, fitted_labels = [], []
    for image, label in zip(images, labels, strict=True):
        image, label = np.asarray(image), np.asarray(label)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"{what}: images must be uint8 RGB (H, W, 3); received {image.dtype} {image.shape}"
            )
        if label.shape != image.shape[:2]:
            raise ValueError(
                f"{what}: a label map of shape {label.shape} for an image of {image.shape[:2]}"
            )
        if label.min() < 0 or label.max() > 255:
            raise ValueError(f"{what}: labels must be class ids 0..254 or 255 for void")
        fitted_images.append(_resize(image, size, Image.BILINEAR))
        fitted_labels.append(_resize(label.astype(np.uint8), size, Image.NEAREST))
    return np.stack(fitted_images), np.stack(fitted_labels)


def collect_validation(validation, input_size, num_classes, limit=DEFAULT_VALIDATION_IMAGES):
    """The validation images and labels of a source (see the module docstring).

    Args:
        validation: a VOC-layout folder, "synthetic", a `SyntheticConfig`, or (images, labels).
        input_size: (H, W) of the export.
        num_classes: the model's classes (the synthetic set is generated with them).
        limit: the most images to take (the first ones).

    Returns:
        {"images": uint8 (N, H, W, 3), "labels": uint8 (N, H, W), "source": in words}.

    Raises:
        ValueError: naming the source, when it cannot be read or holds unusable data.
    """
    from rignet_keras.data.synthetic import SyntheticConfig, make_synthetic

    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"num_validation_images must be an int >= 1; received {limit!r}")
    if input_size is None:
        raise ValueError("a validation source needs a fixed input_size (height, width)")
    size = tuple(int(v) for v in input_size)
    synthetic = None
    if isinstance(validation, str) and validation == "synthetic":
        validation = SyntheticConfig(image_size=size, num_classes=num_classes)
    if isinstance(validation, SyntheticConfig):
        if validation.num_classes != num_classes:
            raise ValueError(
                f"the synthetic validation set has {validation.num_classes} classes; the model "
                f"predicts {num_classes}"
            )
        images, labels = make_synthetic(limit, 0, validation, "val")
        synthetic = validation.to_dict()
        h, w = validation.image_size
        fields = ", ".join(f"{k}={v}" for k, v in synthetic.items() if k != "image_size")
        source = f"synthetic val split (rignet_keras.data.synthetic, seed 0, {w}x{h}, {fields})"
        images, labels = _fit(images, labels, size, "the synthetic validation set")
    elif isinstance(validation, (str, os.PathLike)):
        images, labels = _voc_folder(os.fspath(validation), size, limit)
        source = f"VOC-layout folder {os.fspath(validation)!r}, split val"
    elif isinstance(validation, (tuple, list)) and len(validation) == 2:
        images, labels = _fit(validation[0][:limit], validation[1][:limit], size, "validation")
        source = "caller's arrays"
    else:
        raise ValueError(
            "validation must be a VOC-layout folder, 'synthetic', a SyntheticConfig or "
            f"(images, labels); received {type(validation).__name__}"
        )
    _check_classes(labels, num_classes, source)
    return {"images": images, "labels": labels, "source": source, "synthetic": synthetic}


def _check_classes(labels, num_classes, source):
    """Refuses labels the model cannot predict: an mIoU over them would mean nothing."""
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
    foreign = present[(present >= num_classes) & (present != IGNORE_LABEL)]
    if foreign.size:
        raise ValueError(
            f"validation data ({source}) holds classes {foreign.tolist()[:10]}; the model "
            f"predicts {num_classes} (0..{num_classes - 1}): score it on data of its own task"
        )


def _voc_folder(folder, size, limit):
    from rignet_keras.data.errors import DatasetError
    from rignet_keras.data.voc import read_png_mask, voc_records
    from rignet_runtime import RunnerError, load_image

    if not os.path.isdir(folder):
        raise ValueError(f"validation folder {folder!r} does not exist")
    try:
        records = voc_records(folder, "val")[:limit]
        images = [load_image(r.image_path) for r in records]
        labels = [read_png_mask(r.mask_path) for r in records]
    except (DatasetError, RunnerError) as error:
        raise ValueError(f"validation folder {folder!r}: {error}") from None
    return _fit(images, labels, size, f"validation folder {folder!r}")


def score(labels, class_maps, num_classes, source):
    """The manifest's quality entry of class maps against labels (the one mIoU)."""
    matrix = confusion_matrix(labels, np.asarray(class_maps), num_classes, IGNORE_LABEL)
    scores = segmentation_scores(matrix)
    return {
        "miou": round(float(scores["mIoU"]), 6),
        "pixel_accuracy": round(float(scores["pAcc"]), 6),
        "images": int(len(labels)),
        "source": source,
    }


def _record_iterations(artifact, per_iteration, labels, num_classes, source):
    """Scores the class maps after each iteration of a step-wise pair: `init` gets the first
    as "quality", `step` all of them as "quality_by_iterations"."""
    by_iterations = [
        dict(num_iterations=k, **score(labels, outputs[CLASS_MAP], num_classes, source))
        for k, outputs in enumerate(per_iteration, 1)
    ]
    for signature in artifact["signatures"]:
        if signature["name"] == INIT_SIGNATURE:
            signature["quality"] = {
                k: v for k, v in by_iterations[0].items() if k != "num_iterations"
            }
        elif signature["name"] == STEP_SIGNATURE:
            signature["quality_by_iterations"] = by_iterations


def evaluate_artifacts(artifacts, root, data, num_classes, iterations, threads=1):
    """Runs every artifact of an export on the validation data; records quality in place.

    Each file runs on its own runtime (`runners.open_graphs`), `QUALITY_BATCH` images per call
    where its graphs take a batch; the step-wise pairs run through the runtime's stepping loop
    (`rignet_runtime.stepping.outputs_by_iteration`). The `model.keras` file is skipped.

    Args:
        artifacts: the manifest's artifact entries (their `file` relative to `root`).
        root: the export folder.
        data: the dict of `collect_validation`.
        num_classes: the model's classes.
        iterations: how many iterations the step-wise graphs are scored at (1..this).
        threads: CPU threads of the runtimes.

    Returns:
        `artifacts`, each ui signature with "quality", step-wise ones with
        "quality_by_iterations".
    """
    from rignet_keras.export.runners import open_graphs, run_signature
    from rignet_runtime.stepping import outputs_by_iteration

    images, labels, source = data["images"], data["labels"], data["source"]
    for artifact in artifacts:
        if artifact["format"] not in SCORED_FORMATS:
            continue
        graphs = open_graphs(os.path.join(root, artifact["file"]), artifact["format"], threads)
        for signature in artifact["signatures"]:
            if signature.get("ui") is not None and signature["name"] != INIT_SIGNATURE:
                maps = run_signature(
                    graphs, signature["name"], images, QUALITY_BATCH, names=(CLASS_MAP,)
                )[CLASS_MAP]
                signature["quality"] = score(labels, maps, num_classes, source)
        names = {s["name"] for s in artifact["signatures"]}
        if INIT_SIGNATURE in names and STEP_SIGNATURE in names:
            per_iteration = outputs_by_iteration(
                graphs.stepwise(), images, iterations, QUALITY_BATCH, names=(CLASS_MAP,)
            )
            _record_iterations(artifact, per_iteration, labels, num_classes, source)
    return artifacts


def quality_data(data):
    """The manifest's top-level record of the validation data."""
    record = {
        "source": data["source"],
        "num_images": int(len(data["images"])),
        "size": list(data["images"].shape[1:3]),
        "metric": "mIoU and pixel accuracy (rignet_keras.confusion), void (255) left out",
    }
    if data.get("synthetic") is not None:
        record["synthetic"] = data["synthetic"]  # the SyntheticConfig scored on
    return record


def add_quality(export_dir, validation, num_validation_images=DEFAULT_VALIDATION_IMAGES, threads=1):
    """Scores the files of an existing export and rewrites its manifest with their quality.

    Every file is checked against the manifest's size and SHA-256 first.

    Returns:
        The new manifest dict.
    """
    from rignet_keras.export.manifest import write_manifest
    from rignet_runtime import artifact_path, load_manifest, verify_artifact

    manifest = load_manifest(export_dir)
    for artifact in manifest["artifacts"]:
        verify_artifact(manifest, artifact_path(manifest, artifact))
    size = (manifest["input"]["height"], manifest["input"]["width"])
    num_classes = manifest["model"]["num_classes"]
    data = collect_validation(validation, size, num_classes, num_validation_images)
    iterations = (manifest.get("stepwise") or {}).get("max_iterations") or 1
    evaluate_artifacts(
        manifest["artifacts"], manifest["_dir"], data, num_classes, iterations, threads
    )
    manifest["quality_data"] = quality_data(data)
    folder = manifest["_dir"]
    write_manifest(manifest, folder)
    return manifest
