"""What an export can be trusted with: one test per row, each a bad input or a fault and what must
hold afterwards (names stay in the folder, options are checked before any work, latencies follow
the MACs or are flagged, the default export writes what a device needs with the umask's modes,
a killed export leaves the previous folder whole and its leftovers go at the next export)."""

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from rignet_keras.export import export_model
from rignet_keras.export.files import atomic_directory, remove_stale_partials
from rignet_keras.export.manifest import flag_latency_order
from rignet_runtime import sha256_file
from tests.harness import SIZE, tiny_rignet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _script():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "export_model_script", os.path.join(ROOT, "export", "export_model.py")
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.fixture(scope="module")
def default_export(tmp_path_factory):
    """A tiny parallel RIGNet exported with the defaults, under umask 022."""
    folder = tmp_path_factory.mktemp("default") / "out"
    previous = os.umask(0o022)
    try:
        manifest = export_model(
            tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0),
            folder,
            input_size=SIZE,
        )
    finally:
        os.umask(previous)
    return manifest, folder


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", ["../outside", "a/b", "..", "/tmp/abs", "", ".hidden", "x" * 101])
def test_a_stem_cannot_place_files_outside_the_export(tmp_path, stem):
    out = tmp_path / "exports" / "out"
    with pytest.raises(ValueError, match=r"stem must be a plain file name prefix"):
        export_model(
            tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0),
            out,
            input_size=SIZE,
            stem=stem,
            latency_runs=0,
        )
    assert os.listdir(tmp_path) == []  # nothing written, not even the parent folder


def test_the_script_refuses_a_stem_with_a_folder(tmp_path, capsys):
    status = _script().main(
        [str(tmp_path / "missing.keras"), str(tmp_path / "out"), "--input-size", "65", "71"]
        + ["--stem", "../escape"]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "stem must be a plain file name prefix" in err and "'../escape'" in err
    assert os.listdir(tmp_path) == []


# -- options before work ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"num_parity_images": 0}, r"num_parity_images must be an int >= 1; received 0"),
        ({"num_calibration_images": -1}, r"num_calibration_images must be an int >= 1"),
        ({"num_parity_images": 2.5}, r"num_parity_images must be an int >= 1; received 2\.5"),
        ({"latency_runs": -1}, r"latency_runs must be an int >= 0; received -1"),
        ({"latency_warmup": True}, r"latency_warmup must be an int >= 0; received True"),
        ({"threads": 0}, r"threads must be an int >= 1; received 0"),
        ({"opset": 7}, r"opset must be an int >= 13; received 7"),
        ({"opset": 99}, r"opset must be an int from 13 to 18; received 99"),
        ({"stepwise_iterations": 0}, r"stepwise_iterations must be an int >= 1"),
        ({"serving_ui": 0}, r"serving_ui must be an int >= 1; received 0"),
        (
            {"tolerances": {"float32": {"max_abs_diff": -1.0}}},
            r"tolerances\['float32'\]\['max_abs_diff'\] must be >= 0; received -1\.0",
        ),
        (
            {"tolerances": {"int8": {"min_label_agreement": 1.5}}},
            r"tolerances\['int8'\]\['min_label_agreement'\] must be in \[0, 1\]",
        ),
        (
            {"tolerances": {"float32": {"max_abs_diff": float("nan")}}},
            r"max_abs_diff'\] must be a finite number; received nan",
        ),
        ({"tolerances": {"int4": {}}}, r"tolerances\['int4'\]: precision must be one of"),
        ({"tolerances": {"float32": {"atol": 1}}}, r"unknown tolerance keys \['atol'\]"),
        ({"tflite_max_conv_input_channels": 0}, r"tflite_max_conv_input_channels must be None"),
    ],
)
def test_every_numeric_option_is_checked_before_any_work(tmp_path, option, message):
    """The model is a path that does not exist: the option's error comes first, so it was
    checked before the model was loaded, and nothing is written."""
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        export_model(tmp_path / "missing.keras", out, input_size=SIZE, **option)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--num-parity-images", "0"], "--num-parity-images"),
        (["--num-calibration-images", "-2"], "--num-calibration-images"),
        (["--latency-runs", "-1"], "--latency-runs"),
        (["--threads", "0"], "--threads"),
        (["--stepwise-iterations", "zero"], "--stepwise-iterations"),
        (["--input-size", "0", "71"], "--input-size"),
    ],
)
def test_script_flags_are_checked_before_the_model_is_loaded(tmp_path, capsys, flags, named):
    args = [str(tmp_path / "missing.keras"), str(tmp_path / "out")]
    if "--input-size" not in flags:
        args += ["--input-size", "65", "71"]
    with pytest.raises(SystemExit) as exit_info:
        _script().main(args + flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {named}" in err and "missing.keras" not in err
    assert os.listdir(tmp_path) == []


def test_the_script_checks_the_opset_before_loading(tmp_path, capsys):
    status = _script().main(
        [str(tmp_path / "missing.keras"), str(tmp_path / "out"), "--input-size", "65", "71"]
        + ["--opset", "9"]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "opset must be an int >= 13; received 9" in err and "does not exist" not in err


# -- latency ------------------------------------------------------------------------------------


def _artifact(file, fmt, precision, figures):
    return {
        "file": file,
        "format": fmt,
        "kind": "ui",
        "precision": precision,
        "signatures": [
            {"name": f"ui_{ui}", "ui": ui, "macs": macs, "latency_ms": {"median_ms": ms}}
            for ui, (macs, ms) in figures.items()
        ],
    }


def test_latencies_out_of_mac_order_are_flagged():
    """The reported export: ONNX ui_1 20.7 ms, ui_2 7.2 ms, ui_3 36.2 ms (one file per ui)."""
    artifacts = [
        _artifact(f"rignet_ui{ui}.onnx", "onnx", "float32", {ui: (ui * 100, ms)})
        for ui, ms in ((1, 20.7), (2, 7.2), (3, 36.2))
    ]
    artifacts.append(
        _artifact("rignet_float32.tflite", "tflite", "float32", {1: (100, 10.0), 2: (200, 9.7)})
    )
    out_of_order = flag_latency_order(artifacts)
    assert [(p["more_macs"]["signature"], p["fewer_macs"]["signature"]) for p in out_of_order] == [
        ("ui_2", "ui_1")
    ]
    assert out_of_order[0]["format"] == "onnx"
    follows = {
        (a["file"], s["name"]): s["latency_follows_macs"]
        for a in artifacts
        for s in a["signatures"]
    }
    assert follows == {
        ("rignet_ui1.onnx", "ui_1"): False,
        ("rignet_ui2.onnx", "ui_2"): False,
        ("rignet_ui3.onnx", "ui_3"): True,
        # 9.7 ms against 10.0 ms is within the 5% tolerance of timer noise
        ("rignet_float32.tflite", "ui_1"): True,
        ("rignet_float32.tflite", "ui_2"): True,
    }


@pytest.mark.export
def test_manifest_latencies_are_warmed_up_and_follow_the_macs_or_say_so(default_export):
    manifest, _ = default_export
    latency = manifest["latency"]
    assert latency["warmup"] == 3 and latency["runs"] == 15
    signatures = [s for a in manifest["artifacts"] if a["kind"] == "ui" for s in a["signatures"]]
    assert [s["ui"] for s in signatures] == [1, 2, 3]
    assert all(s["latency_ms"]["runs"] == 15 for s in signatures)
    in_order = all(
        b["latency_ms"]["median_ms"] >= 0.95 * a["latency_ms"]["median_ms"]
        for a in signatures
        for b in signatures
        if b["macs"] > a["macs"]
    )
    assert latency["follows_macs"] is in_order
    assert (latency["out_of_order"] == []) is in_order
    flags = [s["latency_follows_macs"] for s in signatures]
    assert all(flags) if in_order else not all(flags)


# -- what the default export writes -------------------------------------------------------------


@pytest.mark.export
def test_the_default_export_writes_what_a_device_needs(default_export):
    manifest, folder = default_export
    assert sorted(os.listdir(folder)) == [
        "manifest.json",
        "rignet_float32.tflite",
        "rignet_stepwise_float32.tflite",
    ]
    assert [a["file"] for a in manifest["artifacts"]] == [
        "rignet_float32.tflite",
        "rignet_stepwise_float32.tflite",
    ]
    assert [s["name"] for s in manifest["artifacts"][0]["signatures"]] == ["ui_1", "ui_2", "ui_3"]
    for artifact in manifest["artifacts"]:
        assert artifact["sha256"] == sha256_file(folder / artifact["file"])
        for signature in artifact["signatures"]:
            assert signature["macs"] > 0


@pytest.mark.export
def test_exported_files_are_readable_by_others_under_the_usual_umask(default_export):
    _, folder = default_export
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755
    for name in os.listdir(folder):
        assert stat.S_IMODE(os.stat(folder / name).st_mode) == 0o644, name


@pytest.mark.export
def test_the_rest_is_written_on_request(tmp_path):
    manifest = export_model(
        tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0),
        tmp_path / "out",
        input_size=SIZE,
        uis=(1, 2),
        formats=("keras", "onnx"),
        latency_runs=0,
    )
    assert sorted(os.listdir(tmp_path / "out")) == [
        "manifest.json",
        "model.keras",
        "rignet_ui1.onnx",
        "rignet_ui2.onnx",
    ]
    assert manifest["stepwise"] is None
    assert manifest["latency"]["follows_macs"] is None  # nothing measured


# -- a killed export ----------------------------------------------------------------------------

_KILLED_EXPORT = """
import sys
from rignet_keras.export import export_model
from tests.harness import SIZE, tiny_rignet

model = tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0)
export_model(model, sys.argv[1], input_size=SIZE, uis=(1,), latency_runs=0, stepwise=False)
print("first export done", flush=True)
export_model(model, sys.argv[1], input_size=SIZE, formats=("keras", "saved_model", "tflite"),
             tflite_layouts=("multi", "per_ui"), latency_runs=0, overwrite=True)
print("second export done", flush=True)
"""


def _partials(parent):
    return sorted(p for p in os.listdir(parent) if p.startswith(".out.partial-"))


@pytest.mark.subprocess
def test_an_export_killed_partway_leaves_the_previous_one_whole(tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_EXPORT, str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    try:
        assert process.stdout.readline().strip() == "first export done"
        first = json.loads((out / "manifest.json").read_text())
        deadline = time.monotonic() + 120
        while not _partials(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # well into the second export
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert _partials(tmp_path), "the export finished before the kill; nothing was tested"
    # The previous export is whole: its manifest, and every file it lists with its SHA-256.
    assert json.loads((out / "manifest.json").read_text()) == first
    assert sorted(os.listdir(out)) == sorted(
        ["manifest.json"] + [a["file"] for a in first["artifacts"]]
    )
    for artifact in first["artifacts"]:
        assert sha256_file(out / artifact["file"]) == artifact["sha256"]
    # The next export removes the killed one's temporary folder.
    export_model(
        tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0),
        out,
        input_size=SIZE,
        uis=(1,),
        formats=("keras",),
        latency_runs=0,
        overwrite=True,
    )
    assert _partials(tmp_path) == []
    assert sorted(os.listdir(out)) == ["manifest.json", "model.keras"]


@pytest.mark.subprocess
def test_a_kill_between_the_two_moves_puts_the_previous_export_back(tmp_path):
    """Killed after the previous folder was moved aside and before the new one moved in: the
    next export finds the final path empty and the previous export in the dead process's
    sibling, and moves it back."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    aside = tmp_path / f".out.partial-{dead.pid}-old-abc123"
    (aside / "previous").mkdir(parents=True)
    (aside / "previous" / "manifest.json").write_text("{}")
    built = tmp_path / f".out.partial-{dead.pid}-def456"
    built.mkdir()
    (built / "half.tflite").write_bytes(b"half")
    running = tmp_path / f".out.partial-{os.getpid()}-ghi789"  # this process: still running
    running.mkdir()
    removed = remove_stale_partials(tmp_path / "out")
    assert sorted(removed) == sorted([aside.name, built.name])
    assert (tmp_path / "out" / "manifest.json").read_text() == "{}"
    assert sorted(os.listdir(tmp_path)) == [running.name, "out"]
    running.rmdir()
    with pytest.raises(FileExistsError, match="already exists"):
        with atomic_directory(tmp_path / "out"):
            pass
    assert os.listdir(tmp_path) == ["out"]
