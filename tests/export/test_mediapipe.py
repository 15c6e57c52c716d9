"""MediaPipe-ready files (`tflite_layouts` "mediapipe"): MediaPipe Tasks' `ImageSegmenter` loads
each as it is, its category mask agrees with the runner's class map, and its `labels` are the
export's class names."""

import os

import numpy as np
import pytest

from rignet_keras.export.tflite import non_builtin_ops
from rignet_runtime import Segmenter
from tests.harness import SIZE, UIS, fresh_images, tiny_rignet

CLASS_NAMES = ("background", "person", "car", "dog", "tree")


@pytest.fixture(scope="module")
def mediapipe_export(tmp_path_factory):
    from rignet_keras.export import export_model

    model = tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0)
    assert model.num_classes == len(CLASS_NAMES)
    folder = tmp_path_factory.mktemp("mediapipe") / "out"
    manifest = export_model(
        model,
        folder,
        input_size=SIZE,
        uis=UIS,
        precisions=("float32", "int8"),
        tflite_layouts=("mediapipe",),
        class_names=CLASS_NAMES,
        stepwise=False,
        latency_runs=2,
    )
    return model, manifest, folder


def _mediapipe_files(manifest):
    return [a for a in manifest["artifacts"] if a["kind"] == "mediapipe"]


@pytest.mark.export
def test_the_manifest_lists_one_file_per_ui_and_precision(mediapipe_export):
    _, manifest, folder = mediapipe_export
    files = _mediapipe_files(manifest)
    assert sorted(a["file"] for a in files) == sorted(
        f"rignet_mediapipe_ui{ui}_{p}.tflite" for ui in UIS for p in ("float32", "int8")
    )
    for artifact in files:
        (signature,) = artifact["signatures"]
        assert signature["latency_ms"]["median_ms"] > 0
        assert signature["parity"]["label_agreement"] > 0.85
        assert artifact["labels"] == list(CLASS_NAMES)
        content = (folder / artifact["file"]).read_bytes()
        assert non_builtin_ops(content) == []


@pytest.mark.export
def test_the_runner_runs_a_mediapipe_file(mediapipe_export):
    _, _, folder = mediapipe_export
    segmenter = Segmenter(folder / "rignet_mediapipe_ui2_float32.tflite")
    assert segmenter.ui == 2
    class_map, probabilities = segmenter(fresh_images(1)[0])
    assert class_map.shape == SIZE and probabilities.shape == SIZE + (len(CLASS_NAMES),)
    np.testing.assert_array_equal(class_map, probabilities.argmax(-1))


@pytest.mark.export
def test_mediapipe_category_mask_and_labels(mediapipe_export):
    mp = pytest.importorskip("mediapipe", reason="mediapipe is not installed (extra: mediapipe)")
    from mediapipe.tasks.python import BaseOptions, vision

    _, manifest, folder = mediapipe_export
    images = fresh_images(6, seed=23)
    for artifact in _mediapipe_files(manifest):
        path = str(folder / artifact["file"])
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=path),
            output_category_mask=True,
            output_confidence_masks=False,
        )
        runner = Segmenter(path)
        with vision.ImageSegmenter.create_from_options(options) as segmenter:
            assert segmenter.labels == list(CLASS_NAMES)
            agree = []
            for image in images:
                frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
                mask = segmenter.segment(frame).category_mask.numpy_view().reshape(SIZE)
                agree.append(np.mean(mask == runner(image)[0]))
        assert np.mean(agree) >= 0.995, (artifact["file"], agree)


def _snippet(section="## Deploying with MediaPipe"):
    """The Python code block of `section` in docs/EXPORT.md."""
    from tests.harness import ROOT

    with open(os.path.join(ROOT, "docs", "EXPORT.md"), encoding="utf-8") as f:
        text = f.read()
    after = text[text.index(section) :]
    start = after.index("```python\n") + len("```python\n")
    return after[start : after.index("```\n", start)]


@pytest.mark.export
def test_the_documented_python_snippet_runs(mediapipe_export, tmp_path):
    pytest.importorskip("mediapipe", reason="mediapipe is not installed (extra: mediapipe)")
    from PIL import Image

    _, _, folder = mediapipe_export
    photo = tmp_path / "photo.jpg"
    Image.fromarray(fresh_images(1, seed=5)[0]).save(photo, quality=95)
    code = _snippet()
    assert '"export/rignet_mediapipe_ui2_int8.tflite"' in code and '"photo.jpg"' in code
    code = code.replace(
        "export/rignet_mediapipe_ui2_int8.tflite", str(folder / "rignet_mediapipe_ui2_int8.tflite")
    ).replace("photo.jpg", str(photo))
    namespace = {}
    exec(compile(code, "docs/EXPORT.md", "exec"), namespace)
    assert namespace["labels"] == list(CLASS_NAMES)
    assert namespace["mask"].reshape(SIZE).max() < len(CLASS_NAMES)
