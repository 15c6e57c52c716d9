"""The XNNPACK weight cache of the on-device runner (`--weight-cache`, `runtime/litert_cache.py`).

With a cache folder the runner's graphs run in `CompiledModel` instead of the classic
Interpreter; its outputs must be the Interpreter's exactly, whether the cache is being written
(the first load) or read (later loads), and a cache must never serve another model file.
Nothing here is timed.
"""

import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import weakref

import numpy as np
import pytest
from PIL import Image

import rignet_runtime as runtime
from rignet_runtime import litert_cache
from tests.harness import ROOT, RUNNER_PRELUDE, RUNNER_SCRIPT, fresh_images, run_runner_script

UI_FILE = "rignet_float32.tflite"
STEPWISE_FILE = "rignet_stepwise_float32.tflite"


def _cache_files(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _assert_same(a, b, what):
    assert set(a) == set(b), what
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, (what, name)
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"{what}: {name}")


def _ui_outputs(interpreter, images):
    """{(signature, image index): outputs} of every ui signature."""
    outputs = {}
    for signature in runtime.ui_signatures(interpreter).values():
        call = interpreter.get_signature_runner(signature)
        for index, image in enumerate(images):
            outputs[signature, index] = call(images=image[None])
    return outputs


@pytest.mark.export
@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_cached_outputs_equal_the_interpreter_when_written_and_when_read(
    exports, tmp_path, precision
):
    _, _, folder = exports.get("parallel")
    model = folder / f"rignet_{precision}.tflite"
    cache_dir = tmp_path / "cache" / "nested"  # created by the runner
    images = fresh_images(2, seed=31)
    reference = _ui_outputs(runtime.make_interpreter(model), images)
    assert {s for s, _ in reference} == {"ui_1", "ui_2", "ui_3"}

    for expected_state in ("written", "reused"):
        cached = runtime.make_interpreter(model, weight_cache=cache_dir)
        assert isinstance(cached, litert_cache.CachedInterpreter)
        assert cached.cache_state == expected_state
        assert cached.get_signature_list() == runtime.make_interpreter(model).get_signature_list()
        outputs = _ui_outputs(cached, images)
        for key in reference:
            _assert_same(outputs[key], reference[key], f"{precision} {key} ({expected_state})")
        # The Segmenter over it: the same class map and probabilities as over the Interpreter.
        plain = runtime.Segmenter(model, ui=2)
        segmenter = runtime.Segmenter(model, ui=2, weight_cache=cache_dir)
        assert segmenter.input_size == plain.input_size
        for image in images:
            for got, want in zip(segmenter(image), plain(image), strict=True):
                np.testing.assert_array_equal(got, want)

    # One complete cache file, named for the model file; no temporary file left behind.
    expected = litert_cache.cache_file_for(model, cache_dir)
    assert _cache_files(cache_dir) == [os.path.basename(expected)]
    assert os.path.basename(expected).startswith(model.name + ".")
    assert os.path.getsize(expected) > 0


@pytest.mark.export
@pytest.mark.parametrize("name", ["rignet_int8.tflite", "rignet_stepwise_int8.tflite"])
def test_graphs_with_quantized_activations_get_no_cache(exports, tmp_path, caplog, name):
    """XNNPACK's weight cache changes an int8 graph's labels (LiteRT 2.3), so it is not used."""
    _, _, folder = exports.get("parallel")
    model = folder / name
    cache_dir = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger=litert_cache.logger.name):
        cached = runtime.make_interpreter(model, weight_cache=cache_dir)
    assert cached.cache_state == "off" and cached.cache_file is None
    assert "quantized activations" in caplog.text and name in caplog.text
    assert _cache_files(cache_dir) == []
    images = fresh_images(2, seed=31)
    if "stepwise" in name:
        for image in images:
            a = runtime.AnytimeSegmenter(model, interpreter=cached).run(image, max_iterations=3)
            b = runtime.AnytimeSegmenter(model).run(image, max_iterations=3)
            np.testing.assert_array_equal(a.probabilities, b.probabilities)
    else:
        reference = _ui_outputs(runtime.make_interpreter(model), images)
        outputs = _ui_outputs(cached, images)
        for key in reference:
            _assert_same(outputs[key], reference[key], f"{name} {key}")


@pytest.mark.export
def test_int8_weights_shared_at_two_scales_get_no_cache(exports, tmp_path, caplog):
    """With each pass's batch-norm statistics folded into a kernel copy of its own
    (`tflite_gated_batch_norm="folded"`), the ungated and gated passes' folded weights quantise
    to one int8 buffer at two scales; XNNPACK's weight cache would pack it once (LiteRT 2.3), so
    the graph runs without one. The default layout stores one kernel copy: nothing rescaled."""
    from rignet_keras.export import export_model
    from tests.harness import SIZE, UIS, tiny_rignet

    _, _, default_folder = exports.get("parallel")
    assert not litert_cache.rescaled_shared_weights(default_folder / "rignet_dynamic_int8.tflite")
    folder = tmp_path / "folded"
    export_model(
        tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0),
        folder,
        input_size=SIZE,
        uis=UIS,
        precisions=("float32", "dynamic_int8"),
        tflite_gated_batch_norm="folded",
        stepwise=False,
        latency_runs=1,
    )
    model = folder / "rignet_dynamic_int8.tflite"
    assert litert_cache.rescaled_shared_weights(model)
    assert not litert_cache.rescaled_shared_weights(folder / UI_FILE)
    with caplog.at_level(logging.WARNING, logger=litert_cache.logger.name):
        cached = runtime.make_interpreter(model, weight_cache=tmp_path / "cache")
    assert cached.cache_state == "off" and cached.cache_file is None
    assert "serve several scales" in caplog.text and model.name in caplog.text
    assert _cache_files(tmp_path / "cache") == []
    images = fresh_images(2, seed=31)
    reference = _ui_outputs(runtime.make_interpreter(model), images)
    outputs = _ui_outputs(cached, images)
    for key in reference:
        _assert_same(outputs[key], reference[key], f"dynamic_int8 {key}")


@pytest.mark.export
def test_dynamic_int8_without_gated_passes_uses_the_cache(tmp_path):
    """A ui 1 graph has no gated pass, hence no rescaled shared buffer: its cache is used and
    gives the Interpreter's outputs."""
    from rignet_keras.export import export_model
    from tests.harness import SIZE, tiny_rignet

    folder = tmp_path / "out"
    export_model(
        tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0),
        folder,
        input_size=SIZE,
        uis=(1,),
        formats=("tflite",),
        precisions=("dynamic_int8",),
        stepwise=False,
        latency_runs=1,
    )
    model = folder / "rignet_ui1_dynamic_int8.tflite"
    assert not litert_cache.rescaled_shared_weights(model)
    images = fresh_images(2, seed=31)
    reference = _ui_outputs(runtime.make_interpreter(model), images)
    for expected_state in ("written", "reused"):
        cached = runtime.make_interpreter(model, weight_cache=tmp_path / "cache")
        assert cached.cache_state == expected_state
        outputs = _ui_outputs(cached, images)
        for key in reference:
            _assert_same(outputs[key], reference[key], f"dynamic_int8 {key} ({expected_state})")


@pytest.mark.export
def test_cache_name_changes_with_the_model_file(exports, tmp_path):
    _, _, folder = exports.get("parallel")
    model = tmp_path / "model.tflite"
    shutil.copyfile(folder / UI_FILE, model)
    cache_dir = tmp_path / "cache"
    first = litert_cache.cache_file_for(model, cache_dir)
    assert os.path.dirname(first) == str(cache_dir)
    assert first == litert_cache.cache_file_for(model, cache_dir)  # stable for the same file
    stat = os.stat(model)

    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a touch
    assert litert_cache.cache_file_for(model, cache_dir) != first
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert litert_cache.cache_file_for(model, cache_dir) == first

    # Other bytes of the same size in the same file, even with the old modification time.
    data = bytearray(model.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(255 - b for b in data[middle : middle + 8])
    with open(model, "r+b") as f:
        f.write(data)
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(model).st_ino == stat.st_ino and os.stat(model).st_size == stat.st_size
    assert litert_cache.cache_file_for(model, cache_dir) != first

    # A copy (another inode) has its own cache.
    shutil.copy2(folder / UI_FILE, tmp_path / "copy.tflite")
    os.replace(tmp_path / "copy.tflite", model)
    assert litert_cache.cache_file_for(model, cache_dir) != first


@pytest.mark.export
def test_a_replaced_model_never_reads_the_old_cache(exports, tmp_path):
    """The file at one path is replaced by another model: a second cache file is written, and
    the outputs are the new model's."""
    _, _, folder = exports.get("parallel")
    model = tmp_path / "model.tflite"
    cache_dir = tmp_path / "cache"
    image = fresh_images(1, seed=5)[0]
    shutil.copyfile(folder / UI_FILE, model)
    assert runtime.make_interpreter(model, weight_cache=cache_dir).cache_state == "written"
    old_cache = _cache_files(cache_dir)
    assert len(old_cache) == 1

    shutil.copyfile(folder / "rignet_float16.tflite", model)  # rewritten in place
    cached = runtime.make_interpreter(model, weight_cache=cache_dir)
    assert cached.cache_state == "written"
    assert len(_cache_files(cache_dir)) == 2 and old_cache[0] in _cache_files(cache_dir)
    for ui in (1, 3):
        got = runtime.Segmenter(model, ui=ui, interpreter=cached)(image)
        want = runtime.Segmenter(folder / "rignet_float16.tflite", ui=ui)(image)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.export
def test_stepwise_graph_with_and_without_cache(exports, tmp_path):
    _, _, folder = exports.get("parallel")
    model = folder / STEPWISE_FILE
    cache_dir = tmp_path / "cache"
    images = fresh_images(2, seed=11)
    plain = runtime.AnytimeSegmenter(model)
    for expected_state in ("written", "reused"):
        cached = runtime.AnytimeSegmenter(model, weight_cache=cache_dir)
        assert cached.interpreter.cache_state == expected_state
        assert cached.input_size == plain.input_size
        assert cached.state_inputs == plain.state_inputs
        for image in images:
            want, want_state = plain.init(image)
            got, got_state = cached.init(image)
            for _ in range(4):
                _assert_same(got, want, f"step-wise outputs ({expected_state})")
                _assert_same(got_state, want_state, f"step-wise state ({expected_state})")
                want, want_state = plain.step(want_state)
                got, got_state = cached.step(got_state)
            a = cached.run(image, max_iterations=3, stop_when_stable=False)
            b = plain.run(image, max_iterations=3, stop_when_stable=False)
            assert a.iterations == b.iterations == 3 and a.changed == b.changed
            np.testing.assert_array_equal(a.class_map, b.class_map)
            np.testing.assert_array_equal(a.probabilities, b.probabilities)
    assert len(_cache_files(cache_dir)) == 1

    rows = runtime.benchmark(model=model, runs=1, warmup=0, weight_cache=cache_dir)
    assert [r["signature"] for r in rows] == ["init", "step"]


@pytest.mark.export
def test_cli_weight_cache_writes_masks_without_tensorflow(exports, tmp_path):
    _, _, folder = exports.get("parallel")
    image = fresh_images(1, seed=21)[0]
    Image.fromarray(image).save(tmp_path / "a.png")
    cache_dir = tmp_path / "cache"
    status, _, err = run_runner_script(
        tmp_path / "a.png", "--manifest", folder, "--ui", 2, "--output-dir", tmp_path / "plain"
    )
    assert status == 0, err
    expected = np.array(Image.open(tmp_path / "plain" / "a.png"))
    for run in ("first", "second"):
        out_dir = tmp_path / run
        status, out, err = run_runner_script(
            tmp_path / "a.png",
            "--manifest",
            folder,
            "--ui",
            2,
            "--output-dir",
            out_dir,
            "--weight-cache",
            cache_dir,
        )
        assert status == 0, err
        assert "ui 2" in out
        # LiteRT's load log is kept back, and its release lines (the model's when the runner
        # is done, its process-wide environment's at exit) are left out.
        assert err == "", err
        np.testing.assert_array_equal(np.array(Image.open(out_dir / "a.png")), expected)
        assert (out_dir / "a_overlay.png").exists()
        assert _cache_files(cache_dir) == [
            os.path.basename(litert_cache.cache_file_for(folder / UI_FILE, cache_dir))
        ]
    status, out, err = run_runner_script(
        tmp_path / "a.png",
        "--manifest",
        folder,
        "--deadline-ms",
        1e6,
        "--max-iterations",
        2,
        "--precision",
        "float32",
        "--output-dir",
        tmp_path / "anytime",
        "--weight-cache",
        cache_dir,
    )
    assert status == 0, err
    assert "2 iterations" in out
    assert len(_cache_files(cache_dir)) == 2  # the step-wise file has its own


@pytest.mark.export
def test_closing_leaves_out_the_release_lines_and_ends_the_interpreter(exports, tmp_path, capfd):
    _, _, folder = exports.get("parallel")
    image = fresh_images(1, seed=22)[0][None]
    cached = runtime.make_interpreter(folder / UI_FILE, weight_cache=tmp_path / "cache")
    call = cached.get_signature_runner("ui_1")
    call(images=image)
    capfd.readouterr()
    cached.close()
    assert "DestroyAccelerator" not in capfd.readouterr().err
    with pytest.raises(ValueError, match="the interpreter was closed"):
        call(images=image)
    cached.close()  # a second close does nothing


@pytest.mark.export
def test_a_collected_interpreter_leaves_out_the_release_lines(exports, tmp_path, capfd):
    _, _, folder = exports.get("parallel")
    segmenter = runtime.Segmenter(folder / UI_FILE, ui=1, weight_cache=tmp_path / "cache")
    segmenter(fresh_images(1, seed=23)[0])
    capfd.readouterr()
    collected = weakref.ref(segmenter.interpreter)
    del segmenter
    gc.collect()
    assert collected() is None  # the release ran, and printed nothing
    assert "DestroyAccelerator" not in capfd.readouterr().err


@pytest.mark.export
def test_concurrent_first_runs_leave_one_valid_cache(exports, tmp_path):
    """Three processes build the same cache at once (each into its own temporary file)."""
    _, _, folder = exports.get("parallel")
    image = fresh_images(1, seed=3)[0]
    Image.fromarray(image).save(tmp_path / "a.png")
    cache_dir = tmp_path / "cache"

    def args(out):
        return [
            RUNNER_SCRIPT,
            [str(tmp_path / "a.png"), "--manifest", str(folder), "--ui", "3", "--output-dir"]
            + [str(tmp_path / out), "--weight-cache", str(cache_dir), "--no-overlay"],
        ]

    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RUNNER_PRELUDE, json.dumps(args(f"out{i}"))],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    assert _cache_files(cache_dir) == [
        os.path.basename(litert_cache.cache_file_for(folder / UI_FILE, cache_dir))
    ]
    expected = runtime.Segmenter(folder / UI_FILE, ui=3)(image)[0]
    cached = runtime.Segmenter(folder / UI_FILE, ui=3, weight_cache=cache_dir)
    assert cached.interpreter.cache_state == "reused"
    np.testing.assert_array_equal(cached(image)[0], expected)
    for i in range(3):
        np.testing.assert_array_equal(
            np.array(Image.open(tmp_path / f"out{i}" / "a.png")), expected
        )


@pytest.mark.export
def test_unusable_cache_folder_is_logged_not_raised(exports, tmp_path, caplog):
    _, _, folder = exports.get("parallel")
    model = folder / UI_FILE
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    image = fresh_images(1, seed=9)[0]
    with caplog.at_level(logging.WARNING, logger=litert_cache.logger.name):
        segmenter = runtime.Segmenter(model, ui=1, weight_cache=blocker / "cache")
    assert segmenter.interpreter.cache_state == "off"
    assert segmenter.interpreter.cache_file is None
    assert "no XNNPACK weight cache" in caplog.text and "a_file" in caplog.text
    for got, want in zip(segmenter(image), runtime.Segmenter(model, ui=1)(image), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.export
def test_errors_name_the_file(exports, tmp_path, capsys):
    _, _, folder = exports.get("parallel")
    not_tflite = tmp_path / "model.tflite"
    not_tflite.write_bytes(b"\0" * 64)
    with pytest.raises(runtime.RunnerError, match="model.tflite"):
        runtime.make_interpreter(not_tflite, weight_cache=tmp_path / "cache")
    with pytest.raises(runtime.RunnerError, match="does not exist"):
        runtime.make_interpreter(tmp_path / "missing.tflite", weight_cache=tmp_path / "cache")
    cached = runtime.make_interpreter(folder / UI_FILE, weight_cache=tmp_path / "cache")
    with pytest.raises(ValueError, match="ui_7"):
        cached.get_signature_runner("ui_7")
    call = cached.get_signature_runner("ui_1")
    with pytest.raises(ValueError, match="uint8"):
        call(images=np.zeros((1, 65, 71, 3), np.float32))
    with pytest.raises(ValueError, match="takes inputs"):
        call(pictures=np.zeros((1, 65, 71, 3), np.uint8))
