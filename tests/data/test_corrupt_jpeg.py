"""JPEG scan data that libjpeg decodes with only a warning is refused, naming the file.

`jpeg_fault` (rignet_runtime/jpeg.py) is checked against libjpeg itself: every corrupt file
that libjpeg warns about (through TensorFlow's decoder, in a process of its own) must be flagged,
and no whole file of any coding process may be. The commands (validate, predict, the on-device
runner) are then run as real processes on a JPEG whose scan data is random bytes.
"""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rignet_runtime.jpeg import jpeg_fault
from tests.data.data_fixtures import corrupt_jpeg_body
from tests.harness import ROOT

ENCODINGS = {
    "baseline": dict(quality=90),
    "optimized": dict(quality=50, optimize=True),
    "4:4:4": dict(quality=75, subsampling=0),
    "4:2:2": dict(quality=95, subsampling=1),
    "restarts": dict(quality=90, restart_marker_blocks=3),
    "progressive": dict(quality=90, progressive=True),
    "progressive 4:4:4 restarts": dict(
        quality=80, progressive=True, subsampling=0, restart_marker_rows=1
    ),
}


def _photo(height, width, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = [128 + 100 * np.sin(x / 7 + c) * np.cos(y / 9) for c in range(3)]
    noisy = np.stack(smooth, -1) + rng.normal(0, 15, (height, width, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _jpeg(image, mode="RGB", **options):
    buffer = io.BytesIO()
    Image.fromarray(image).convert(mode).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _scan_start(data):
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


@pytest.mark.parametrize("size", [(1, 1), (17, 9), (65, 71), (40, 130)])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_whole_jpegs_pass(encoding, size):
    image = _photo(*size)
    assert jpeg_fault(_jpeg(image, **ENCODINGS[encoding])) is None
    for mode in ("L", "CMYK"):
        assert jpeg_fault(_jpeg(image, mode, **ENCODINGS[encoding])) is None


def test_not_a_jpeg_is_not_checked_here():
    buffer = io.BytesIO()
    Image.fromarray(_photo(8, 8)).save(buffer, "PNG")
    assert jpeg_fault(buffer.getvalue()) is None


@pytest.mark.parametrize(
    "cut, reason",
    [
        (lambda d, s: d[: s + (len(d) - s) // 2] + b"\xff\xd9", "premature end of data"),
        (lambda d, s: d[:-2] + bytes(range(1, 40)) + b"\xff\xd9", "39 extraneous bytes"),
        (lambda d, s: d[: s - 60] + b"\xff\xd9", "segment 0x"),
        (lambda d, s: d[:-2], "ends inside scan data"),
    ],
)
def test_each_fault_is_named(cut, reason):
    data = _jpeg(_photo(65, 71), quality=90)
    assert reason in jpeg_fault(cut(data, _scan_start(data)))


def _corruptions(data, rng, count):
    """`count` corrupt copies of a JPEG's bytes: bytes changed, a run of noise, bytes cut from
    or put into the scan data (never a 0xFF, so the markers stay as they were)."""
    start, end = _scan_start(data), len(data) - 2
    for trial in range(count):
        copy = bytearray(data)
        at = int(rng.integers(start, end - 1))
        if trial % 4 == 0:
            copy[at] = (copy[at] + 1 + int(rng.integers(0, 200))) % 255
        elif trial % 4 == 1:
            length = len(copy[at : int(rng.integers(at + 1, end))])
            copy[at : at + length] = rng.integers(0, 255, length, np.uint8).tobytes()
        elif trial % 4 == 2:
            del copy[at : at + int(rng.integers(1, 50))]
        else:
            copy[at:at] = rng.integers(0, 255, int(rng.integers(1, 20)), np.uint8).tobytes()
        if copy[at - 1] != 0xFF:  # a stuffed byte stays stuffed
            yield bytes(copy)


LIBJPEG_WARNINGS = """
import os, sys
import tensorflow as tf
for path in sys.argv[1:]:
    os.write(2, f"@@{path}\\n".encode())
    try:
        tf.io.decode_jpeg(open(path, "rb").read()).numpy()
    except tf.errors.InvalidArgumentError:
        os.write(2, b"Corrupt JPEG data: refused\\n")
"""


@pytest.mark.subprocess
def test_every_file_libjpeg_warns_about_is_flagged(tmp_path):
    """libjpeg is the reference: what it calls "Corrupt JPEG data" (or refuses) is flagged.
    The check is stricter where libjpeg decodes silently: a block that codes more than 64
    coefficients, a band overrun in a progressive scan."""
    rng = np.random.default_rng(1)
    paths = []
    for name in ("baseline", "restarts", "progressive", "4:4:4"):
        data = _jpeg(_photo(48, 64), **ENCODINGS[name])
        for number, corrupt in enumerate(_corruptions(data, rng, 24)):
            paths.append(tmp_path / f"{name.replace(':', '')}_{number}.jpg")
            paths[-1].write_bytes(corrupt)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.run(
        [sys.executable, "-c", LIBJPEG_WARNINGS, *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    warned = {}
    for block in process.stderr.split("@@")[1:]:
        path, _, messages = block.partition("\n")
        warned[path] = "Corrupt JPEG data" in messages or "Premature end" in messages
    assert len(warned) == len(paths) and sum(warned.values()) >= len(paths) // 2
    missed = [p for p, w in warned.items() if w and jpeg_fault(open(p, "rb").read()) is None]
    assert missed == []


def _random_scan_jpeg(path):
    Image.fromarray(_photo(65, 71)).save(path, "JPEG", quality=90)
    corrupt_jpeg_body(path, "random")
    assert Image.open(path).convert("RGB").size == (71, 65)  # Pillow decodes it silently
    return path


def _one_line_refusal(process, path):
    """Exit status 2 and one error line naming the file (progress bars and libjpeg's own
    warning may come before it)."""
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert process.returncode == 2, process.stderr
    assert len(errors) == 1 and str(path) in errors[0], process.stderr
    assert "corrupt JPEG data" in errors[0], process.stderr


@pytest.mark.subprocess
def test_validate_refuses_random_scan_data(voc_tree):
    path = os.path.join(voc_tree.voc, "JPEGImages", "2007_000002.jpg")
    corrupt_jpeg_body(path, "random")
    command = ["validate", "voc", "--split", "train", "--data-dir", str(voc_tree.root)]
    process = subprocess.run(
        [sys.executable, "-m", "rignet_keras.data", *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    _one_line_refusal(process, path)


@pytest.mark.subprocess
def test_predict_refuses_random_scan_data_before_loading_a_model(tmp_path):
    path = _random_scan_jpeg(tmp_path / "photo.jpg")
    command = ["predict", str(path), "--model", str(tmp_path / "absent.keras")]
    process = subprocess.run(
        [sys.executable, "-m", "rignet_keras.cli", *command, "--output-dir", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    _one_line_refusal(process, path)
