"""`rignet predict` writes one mask, overlay and gate-map picture per input, all PNG, named by
the device runtime (`rignet_runtime.output_paths`): colliding stems kept apart, EXIF
orientation honoured. The command runs in a subprocess on a small saved RIGNet."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rignet_keras import RIGNet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """A folder holding `a.jpg`, `a.png` and a phone photo stored landscape with EXIF
    orientation 6 (shown portrait), segmented by `rignet predict --gate-maps`."""
    root = tmp_path_factory.mktemp("predict")
    model = RIGNet(3, backbone="resnet18", feedback_blocks=(4, 6), num_iterations=2)
    model(np.zeros((1, 64, 64, 3), np.uint8))
    model.save(root / "m.keras")
    images = root / "in"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), np.uint8)).save(images / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), np.uint8)).save(images / "a.png")
    phone = Image.fromarray(rng.integers(0, 255, (40, 64, 3), np.uint8))  # 64 wide, 40 high
    exif = phone.getexif()
    exif[EXIF_ORIENTATION] = 6  # rotate 90 degrees clockwise to show it upright
    phone.save(images / "phone.jpg", exif=exif)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rignet_keras.cli",
            "predict",
            str(images),
            "--model",
            str(root / "m.keras"),
            "--output-dir",
            str(root / "out"),
            "--gate-maps",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, images, root / "out"


@pytest.mark.subprocess
def test_colliding_stems_give_one_set_of_outputs_per_input(predicted):
    proc, _, out = predicted
    assert sorted(os.listdir(out)) == sorted(
        f"{stem}{suffix}"
        for stem in ("a_jpg", "a_png", "phone")
        for suffix in (".png", "_overlay.png", "_gates.png")
    )
    assert "wrote 3 masks and overlays (PNG) for 3 images" in proc.stdout


@pytest.mark.subprocess
def test_every_output_is_a_png_masks_with_the_voc_palette(predicted):
    _, _, out = predicted
    for name in os.listdir(out):
        with Image.open(out / name) as image:
            assert image.format == "PNG", name
            if not name.endswith(("_overlay.png", "_gates.png")):
                assert image.mode == "P" and np.asarray(image).max() < 3
                assert image.getpalette()[3:6] == [128, 0, 0]  # VOC class 1


@pytest.mark.subprocess
def test_masks_follow_the_exif_orientation(predicted):
    _, images, out = predicted
    with Image.open(images / "phone.jpg") as stored:
        assert stored.size == (64, 40)  # landscape pixels, shown portrait
    for name in ("phone.png", "phone_overlay.png"):
        with Image.open(out / name) as image:
            assert image.size == (40, 64), name  # width x height: portrait, as displayed
    with Image.open(out / "a_jpg.png") as image:
        assert image.size == (56, 40)  # no EXIF: as stored


@pytest.mark.subprocess
def test_inputs_are_left_untouched(predicted):
    _, images, _ = predicted
    assert sorted(os.listdir(images)) == ["a.jpg", "a.png", "phone.jpg"]


def test_save_predictions_refuses_a_repeated_sample_id(tmp_path):
    import tensorflow as tf

    from rignet_keras.training.visualize import save_predictions

    model = RIGNet(3, backbone="resnet18", feedback_blocks=(4, 6), num_iterations=2)
    images = np.zeros((2, 32, 32, 3), np.float32)
    masks = np.zeros((2, 32, 32), np.int32)
    ids = np.array([b"2007_000032", b"2007_000032"])
    data = tf.data.Dataset.from_tensor_slices((images, masks, ids)).batch(2)
    with pytest.raises(ValueError, match="sample id '2007_000032' appears twice"):
        save_predictions(model, data, str(tmp_path), num_images=2, with_gate_maps=False)
    assert sorted(os.listdir(tmp_path / "masks")) == ["2007_000032.png"]  # the first, alone
