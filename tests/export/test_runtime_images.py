"""The runtime's image files: upright loading, PNG outputs, one output per input, inputs never
overwritten."""

import numpy as np
import pytest
from PIL import Image

import rignet_runtime as runtime


def _random_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_exif_orientation_is_applied(tmp_path):
    raw = _random_image(2, 4)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "portrait.png"
    Image.fromarray(raw).save(path, exif=exif)
    loaded = runtime.load_image(path)
    assert loaded.shape == (4, 2, 3)
    np.testing.assert_array_equal(loaded, np.rot90(raw, k=-1))
    plain = tmp_path / "plain.png"
    Image.fromarray(raw).save(plain)
    np.testing.assert_array_equal(runtime.load_image(plain), raw)


def test_colliding_stems_get_one_output_each(tmp_path):
    inputs = [str(tmp_path / "a.jpg"), str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    plans = runtime.output_paths(inputs, tmp_path / "out")
    out = str(tmp_path / "out")
    assert plans == [
        {"mask": f"{out}/a_jpg.png", "overlay": f"{out}/a_jpg_overlay.png"},
        {"mask": f"{out}/a_png.png", "overlay": f"{out}/a_png_overlay.png"},
        {"mask": f"{out}/b.png", "overlay": f"{out}/b_overlay.png"},
    ]
    assert runtime.output_paths(inputs[2:], out, overlays=False) == [
        {"mask": f"{out}/b.png", "overlay": None}
    ]


def test_an_output_never_overwrites_an_input(tmp_path):
    Image.fromarray(_random_image(4, 4)).save(tmp_path / "a.png")
    with pytest.raises(runtime.RunnerError, match="would overwrite the input image") as error:
        runtime.output_paths(runtime.list_images(tmp_path), tmp_path)
    assert "a.png" in str(error.value) and "--output-dir" in str(error.value)
    # an input named like another input's overlay
    Image.fromarray(_random_image(4, 4)).save(tmp_path / "b.jpg")
    Image.fromarray(_random_image(4, 4)).save(tmp_path / "b_overlay.jpg")
    with pytest.raises(runtime.RunnerError, match="would both be"):
        runtime.output_paths(
            [tmp_path / "b.jpg", tmp_path / "b_overlay.jpg"], tmp_path / "out", overlays=True
        )


def test_masks_and_overlays_are_png_only(tmp_path):
    class_map = np.array([[0, 1], [15, 255]], np.int32)
    runtime.write_mask(tmp_path / "m.png", class_map)
    with Image.open(tmp_path / "m.png") as mask:
        assert mask.format == "PNG" and mask.mode == "P"
        np.testing.assert_array_equal(np.array(mask), class_map)
    for writer in (
        lambda p: runtime.write_mask(p, class_map),
        lambda p: runtime.write_overlay(p, _random_image(2, 2), class_map),
    ):
        with pytest.raises(runtime.RunnerError, match=r"m\.jpg.*is not \.png"):
            writer(tmp_path / "m.jpg")
    assert not (tmp_path / "m.jpg").exists()


@pytest.mark.export
def test_folder_with_colliding_stems_end_to_end(exports, tmp_path):
    """Two inputs with one stem give two masks, each that of its own image."""
    _, _, folder = exports.get("parallel")
    images = [_random_image(65, 71, seed) for seed in (1, 2)]
    Image.fromarray(images[0]).save(tmp_path / "a.png")
    Image.fromarray(images[1]).save(tmp_path / "a.bmp")
    records = runtime.run(tmp_path, tmp_path / "out", manifest=folder, ui=2, precision="float32")
    segmenter = runtime.Segmenter(folder / "rignet_float32.tflite", ui=2)
    assert [r["mask"] for r in records] == [
        str(tmp_path / "out" / "a_bmp.png"),
        str(tmp_path / "out" / "a_png.png"),
    ]
    for record, image in zip(records, (images[1], images[0]), strict=True):
        np.testing.assert_array_equal(np.array(Image.open(record["mask"])), segmenter(image)[0])


@pytest.mark.export
def test_warm_up_comes_before_the_first_timed_image(exports, tmp_path, monkeypatch):
    _, _, folder = exports.get("parallel")
    Image.fromarray(_random_image(65, 71)).save(tmp_path / "a.png")
    Image.fromarray(_random_image(65, 71, 1)).save(tmp_path / "b.png")
    calls = []
    for name in ("warm_up", "run"):
        original = getattr(runtime.AnytimeSegmenter, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(runtime.AnytimeSegmenter, name, spy)
    runtime.run(tmp_path, tmp_path / "out", manifest=folder, deadline_ms=1e6, precision="float32")
    assert calls == ["warm_up", "run", "run"]
