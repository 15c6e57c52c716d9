"""Quality per exported graph: the manifest's mIoU of every file equals an independent
evaluation of that file, and the runner chooses by a latency budget and/or a quality floor."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

import rignet_runtime as runtime
from rignet_keras.confusion import confusion_matrix, segmentation_scores
from rignet_runtime import RunnerError, select_graph
from tests.harness import NUM_CLASSES, SIZE, fresh_images, keras_probabilities, tiny_rignet

NUM_VAL = 6
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _validation(model):
    """Images and labels on which the test model scores neither 0 nor 1: its own ui 2
    prediction with a band changed to another class and a void block."""
    images = fresh_images(NUM_VAL, seed=11)
    labels = keras_probabilities(model, images, 2).argmax(-1).astype(np.uint8)
    labels[:, :10] = (labels[:, :10] + 1) % NUM_CLASSES
    labels[:, -5:, -5:] = 255
    return images, labels


def _miou(labels, maps):
    scores = segmentation_scores(confusion_matrix(labels, maps, NUM_CLASSES))
    return scores["mIoU"], scores["pAcc"]


@pytest.fixture(scope="module")
def scored_export(tmp_path_factory):
    from rignet_keras.export import export_model

    model = tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0)
    images, labels = _validation(model)
    folder = tmp_path_factory.mktemp("quality") / "out"
    manifest = export_model(
        model,
        folder,
        input_size=SIZE,
        uis=(1, 2, 3),
        formats=("tflite", "onnx"),
        precisions=("float32", "dynamic_int8"),
        stepwise_precisions=("float32",),
        stepwise_iterations=3,
        latency_runs=2,
        latency_warmup=1,
        validation=(images, labels),
    )
    return model, manifest, folder, images, labels


def _signatures(manifest, file):
    for artifact in manifest["artifacts"]:
        if artifact["file"] == file:
            return {s["name"]: s for s in artifact["signatures"]}
    raise AssertionError(f"no {file} in the manifest")


@pytest.mark.export
def test_every_tflite_ui_signature_scores_as_an_independent_run(scored_export):
    _, manifest, folder, images, labels = scored_export
    assert manifest["quality_data"]["source"] == "caller's arrays"
    assert manifest["quality_data"]["num_images"] == NUM_VAL
    for precision in ("float32", "dynamic_int8"):
        file = f"rignet_{precision}.tflite"
        signatures = _signatures(manifest, file)
        interpreter = Interpreter(model_path=str(folder / file))
        for ui in (1, 2, 3):
            runner = interpreter.get_signature_runner(f"ui_{ui}")
            maps = np.stack([runner(images=x[None])["class_map"][0] for x in images])
            miou, pacc = _miou(labels, maps)
            quality = signatures[f"ui_{ui}"]["quality"]
            assert quality["images"] == NUM_VAL and quality["source"] == "caller's arrays"
            assert quality["miou"] == pytest.approx(miou, abs=1e-6), (file, ui)
            assert quality["pixel_accuracy"] == pytest.approx(pacc, abs=1e-6)
            assert 0.05 < quality["miou"] < 0.99  # an informative figure, not 0 or 1


@pytest.mark.export
def test_stepwise_quality_per_iteration_scores_as_an_independent_run(scored_export):
    _, manifest, folder, images, labels = scored_export
    file = "rignet_stepwise_float32.tflite"
    signatures = _signatures(manifest, file)
    interpreter = Interpreter(model_path=str(folder / file))
    init = interpreter.get_signature_runner("init")
    step = interpreter.get_signature_runner("step")
    names = list(step.get_input_details())
    maps = [[], [], []]
    for x in images:
        out = init(images=x[None])
        state = {n: out[n] for n in names}
        maps[0].append(out["class_map"][0])
        for k in (1, 2):
            out = step(**state)
            state.update({n: out[n] for n in names if n in out})
            maps[k].append(out["class_map"][0])
    by_iterations = signatures["step"]["quality_by_iterations"]
    assert [q["num_iterations"] for q in by_iterations] == [1, 2, 3]
    for k in range(3):
        miou, _ = _miou(labels, np.stack(maps[k]))
        assert by_iterations[k]["miou"] == pytest.approx(miou, abs=1e-6)
    assert signatures["init"]["quality"]["miou"] == by_iterations[0]["miou"]
    # init + k - 1 steps is ui k: the same figures as the ui graphs'.
    ui = _signatures(manifest, "rignet_float32.tflite")
    for k in range(3):
        assert by_iterations[k]["miou"] == pytest.approx(ui[f"ui_{k + 1}"]["quality"]["miou"])


@pytest.mark.export
def test_onnx_quality_scores_as_an_independent_run(scored_export):
    import onnxruntime as ort

    _, manifest, folder, images, labels = scored_export
    for ui in (1, 3):
        file = f"rignet_ui{ui}.onnx"
        session = ort.InferenceSession(str(folder / file), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        maps = dict(zip(names, session.run(None, {"images": images}), strict=True))["class_map"]
        miou, _ = _miou(labels, maps)
        assert _signatures(manifest, file)[f"ui_{ui}"]["quality"]["miou"] == pytest.approx(
            miou, abs=1e-6
        )


@pytest.mark.export
def test_add_quality_to_an_existing_export_gives_the_same_figures(scored_export, tmp_path):
    import shutil

    from rignet_keras.export.quality import add_quality

    _, manifest, folder, images, labels = scored_export
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    rewritten = add_quality(copy, (images, labels))
    on_disk = json.loads((copy / "manifest.json").read_text())
    for source in (rewritten, on_disk):
        for artifact, original in zip(source["artifacts"], manifest["artifacts"], strict=True):
            for sig, old in zip(artifact["signatures"], original["signatures"], strict=True):
                assert sig.get("quality") == old.get("quality")
                assert sig.get("quality_by_iterations") == old.get("quality_by_iterations")
    runtime.verify_artifact(runtime.load_manifest(copy), str(copy / "rignet_float32.tflite"))


# -- validation sources ---------------------------------------------------------------------------


def test_synthetic_and_voc_folder_sources(tmp_path):
    from rignet_keras.data.synthetic import SyntheticConfig, make_synthetic, write_synthetic_voc
    from rignet_keras.export.quality import collect_validation

    data = collect_validation("synthetic", (64, 48), 3, limit=4)
    images, labels = make_synthetic(
        4, 0, SyntheticConfig(image_size=(64, 48), num_classes=3), "val"
    )
    np.testing.assert_array_equal(data["images"], images)
    np.testing.assert_array_equal(data["labels"], labels)
    assert "synthetic val split" in data["source"]

    config = SyntheticConfig(image_size=(64, 64), num_classes=3)
    write_synthetic_voc(tmp_path / "voc", num_train=2, num_val=3, config=config)
    data = collect_validation(str(tmp_path / "voc"), (32, 40), 3, limit=10)
    assert data["images"].shape == (3, 32, 40, 3) and data["labels"].shape == (3, 32, 40)
    assert set(np.unique(data["labels"])) <= {0, 1, 2, 255}
    assert "VOC-layout folder" in data["source"]


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        ("no_such_folder", "validation folder 'no_such_folder' does not exist"),
        ((np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8))), "2 images but 3 label maps"),
        ((np.zeros((1, 8, 8, 3), np.float32), np.zeros((1, 8, 8))), "must be uint8 RGB"),
        ((np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 7))), "a label map of shape (8, 7)"),
        (42, "validation must be a VOC-layout folder, 'synthetic'"),
    ],
)
def test_bad_validation_sources_are_refused(validation, message):
    from rignet_keras.export.quality import collect_validation

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        collect_validation(validation, (8, 8), 3)


def test_synthetic_source_needs_the_models_classes():
    from rignet_keras.data.synthetic import SyntheticConfig
    from rignet_keras.export.quality import collect_validation

    with pytest.raises(ValueError, match="has 4 classes; the model predicts 3"):
        collect_validation(SyntheticConfig(num_classes=4), (96, 96), 3)


# -- choosing by budget and quality ---------------------------------------------------------------


def _manifest(rows, quality=True):
    """A hand-made manifest: rows of (file, precision, ui, median ms or None, mIoU, MACs)."""
    artifacts = {}
    for file, precision, ui, ms, miou, macs in rows:
        entry = artifacts.setdefault(
            file,
            {
                "file": file,
                "format": "tflite",
                "kind": "ui",
                "precision": precision,
                "signatures": [],
            },
        )
        sig = {"name": f"ui_{ui}", "ui": ui, "macs": macs}
        if ms is not None:
            sig["latency_ms"] = {"median_ms": ms}
        if quality:
            sig["quality"] = {"miou": miou, "pixel_accuracy": 0.9, "images": 8, "source": "x"}
        entry["signatures"].append(sig)
    return {"_dir": "/exports", "artifacts": list(artifacts.values())}


ROWS = [
    ("f32.tflite", "float32", 1, 10.0, 0.600, 100),
    ("f32.tflite", "float32", 2, 18.0, 0.640, 180),
    ("f32.tflite", "float32", 3, 26.0, 0.648, 260),
    ("f32.tflite", "float32", 4, 34.0, 0.650, 340),
    ("i8.tflite", "int8", 1, 5.0, 0.590, 100),
    ("i8.tflite", "int8", 2, 9.0, 0.635, 180),
    ("i8.tflite", "int8", 3, 13.0, 0.642, 260),
]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"budget_ms": 20}, ("i8.tflite", 3)),  # budget alone: the largest ui that fits
        ({"quality_floor": 1.0}, ("i8.tflite", 3)),  # 0.642 >= 0.650 - 0.01, cheapest
        ({"quality_floor": 0.5}, ("f32.tflite", 3)),  # 0.648 >= 0.645; int8 ui 3 is not
        ({"quality_floor": 0.0}, ("f32.tflite", 4)),  # the best itself
        ({"quality_floor": 1.0, "precision": "float32"}, ("f32.tflite", 2)),  # best 0.650
        ({"quality_floor": 5.0}, ("i8.tflite", 2)),  # int8 ui 1 (0.590) is below 0.600
        ({"min_miou": 64.0}, ("i8.tflite", 3)),
        ({"min_miou": 64.0, "budget_ms": 12}, None),
        ({"min_miou": 63.0, "budget_ms": 12}, ("i8.tflite", 2)),
        ({"quality_floor": 1.0, "min_miou": 64.5}, ("f32.tflite", 3)),
        ({"quality_floor": 2.0, "budget_ms": 20}, ("i8.tflite", 2)),
    ],
)
def test_budget_and_quality_choice(kwargs, expected):
    manifest = _manifest(ROWS)
    if expected is None:
        with pytest.raises(RunnerError, match="no graph of the required quality fits a budget"):
            select_graph(manifest, **kwargs)
        return
    choice = select_graph(manifest, **kwargs)
    assert (choice["file"].rsplit("/", 1)[-1], choice["ui"]) == expected


def test_ties_go_to_fewer_macs_then_the_smaller_ui():
    rows = [
        ("a.tflite", "float32", 1, 10.0, 0.60, 300),
        ("a.tflite", "float32", 2, 10.0, 0.60, 200),
        ("b.tflite", "float32", 3, 10.0, 0.60, 200),
    ]
    assert select_graph(_manifest(rows), quality_floor=0.0)["ui"] == 2
    # No latencies: the MACs decide.
    rows = [
        ("a.tflite", "float32", 1, None, 0.60, 100),
        ("a.tflite", "float32", 2, None, 0.61, 200),
    ]
    assert select_graph(_manifest(rows), quality_floor=1.0)["ui"] == 1
    assert select_graph(_manifest(rows), quality_floor=0.5)["ui"] == 2


def test_nothing_reaches_the_minimum():
    with pytest.raises(RunnerError, match="reaches an mIoU of 70: the best has 65.00"):
        select_graph(_manifest(ROWS), min_miou=70)


def test_quality_choice_without_quality_figures_is_refused():
    with pytest.raises(RunnerError, match="records no quality \\(mIoU\\) for ui_1 in f32.tflite"):
        select_graph(_manifest(ROWS, quality=False), quality_floor=1.0)
    # A budget alone still works on such a manifest.
    assert select_graph(_manifest(ROWS, quality=False), budget_ms=30)["ui"] == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quality_floor": -1}, "quality_floor must be a number of mIoU points, >= 0"),
        ({"quality_floor": float("nan")}, "quality_floor must be"),
        ({"min_miou": 101}, "min_miou must be a number of mIoU points, 0..100"),
        ({"min_miou": True}, "min_miou must be"),
        ({}, "needs budget_ms, quality_floor or min_miou"),
    ],
)
def test_bad_quality_arguments_are_refused(kwargs, message):
    with pytest.raises(RunnerError, match=message):
        select_graph(_manifest(ROWS), **kwargs)


# -- the command lines ----------------------------------------------------------------------------


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(fresh_images(1)[0]).save(path)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quality-floor", "-1"], "--quality-floor must be mIoU points, >= 0; received -1.0"),
        (["--min-miou", "120"], "--min-miou must be mIoU points, 0..100; received 120.0"),
        (["--quality-floor", "nan"], "--quality-floor must be mIoU points"),
        (["--quality-floor", "1", "--ui", "2"], "it does not combine with --ui"),
        (["--min-miou", "50", "--deadline-ms", "9"], "it does not combine with --deadline-ms"),
        (["--quality-floor", "1", "--benchmark"], "--quality-floor does not apply"),
    ],
)
def test_runner_quality_flag_errors_are_one_line(args, message, capsys):
    status = runtime.main(["no_such_image.png", "--manifest", "no_such_export"] + args)
    assert status == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_runner_quality_flag_needs_a_manifest(capsys):
    status = runtime.main(["x.png", "--model", "m.tflite", "--quality-floor", "1"])
    assert status == 2
    assert "--quality-floor chooses by a manifest's quality figures" in capsys.readouterr().err


def test_runner_refuses_a_quality_choice_on_a_manifest_without_quality(tmp_path, image, capsys):
    manifest = _manifest(ROWS, quality=False)
    manifest.pop("_dir")
    manifest.update(format=runtime.MANIFEST_FORMAT, format_version=runtime.MANIFEST_VERSION)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    status = runtime.main([str(image), "--manifest", str(tmp_path), "--quality-floor", "1"])
    assert status == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "records no quality (mIoU) for ui_1 in f32.tflite" in err


@pytest.mark.export
def test_runner_prints_the_choice_with_its_quality_and_latency(
    scored_export, image, tmp_path, capsys
):
    _, manifest, folder, _, _ = scored_export
    args = [str(image), "--manifest", str(folder), "--output-dir", str(tmp_path / "o")]
    assert runtime.main(args + ["--quality-floor", "100", "--no-overlay"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "the cheapest graph within --quality-floor 100 mIoU points of the best" in line
    assert "median latency" in line and "expected mIoU" in line and "6 validation images" in line
    assert runtime.main(args + ["--budget-ms", "1e6", "--no-overlay"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "the largest ui whose median latency" in line and "expected mIoU" in line


@pytest.mark.subprocess
def test_export_script_validation_flags(tmp_path):
    script = [sys.executable, "export/export_model.py", "no.keras", str(tmp_path / "o")]
    for extra, message in (
        (["--validation-images", "5"], "--validation-images needs --validation"),
        (["--validation", "synthetic"], "--validation needs --input-size"),
        (["--validation", "nowhere", "--input-size", "8", "8"], "--validation folder 'nowhere'"),
        (
            ["--validation", "synthetic", "--input-size", "8", "8", "--validation-images", "0"],
            "expected an int >= 1",
        ),
    ):
        done = subprocess.run(script + extra, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_validation_images": 0}, "num_validation_images must be an int >= 1; received 0"),
        ({"validation": "synthetic", "input_size": None}, "a validation source needs a fixed"),
    ],
)
def test_export_validation_options_are_checked_before_the_model_is_loaded(
    kwargs, message, tmp_path
):
    from rignet_keras.export import export_model

    options = {"input_size": SIZE, "formats": ("onnx",), **kwargs}
    with pytest.raises(ValueError, match=message):
        export_model(str(tmp_path / "missing.keras"), tmp_path / "out", **options)


# -- scoring a model on its own task (real processes) --------------------------------------------

EXPORT_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "export", "export_model.py")
QUICK_EXPORT = ["--formats", "tflite", "--precisions", "float32", "--no-stepwise"]
QUICK_EXPORT += ["--latency-runs", "0", "--input-size", str(SIZE[0]), str(SIZE[1])]


def _export_process(model_path, output_dir, *flags):
    return subprocess.run(
        [sys.executable, EXPORT_SCRIPT, str(model_path), str(output_dir), *QUICK_EXPORT, *flags],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _one_error_line(process):
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert process.returncode == 2 and len(errors) == 1, process.stderr
    assert "Traceback" not in process.stderr, process.stderr
    return errors[0]


@pytest.mark.subprocess
def test_validation_labels_the_model_cannot_predict_are_refused(tmp_path):
    from rignet_keras.data.synthetic import SyntheticConfig, write_synthetic_voc

    model = tiny_rignet("parallel", backbone="tiny", num_classes=3, seed=0)
    model.save(tmp_path / "m.keras")
    config = SyntheticConfig(image_size=SIZE, num_classes=5)
    write_synthetic_voc(tmp_path / "voc", num_train=1, num_val=6, config=config)
    process = _export_process(
        tmp_path / "m.keras", tmp_path / "out", "--validation", tmp_path / "voc"
    )
    error = _one_error_line(process)
    assert "holds classes [3, 4]" in error and "predicts 3 (0..2)" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.subprocess
def test_validation_synthetic_scores_the_runs_own_task(tmp_path):
    """`--validation synthetic` reads the synthetic task from the model's run folder, scores on
    it and records it; a model outside a run folder is refused."""
    from rignet_keras.config import RunConfig
    from rignet_keras.data.synthetic import SyntheticConfig

    model = tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0)
    task = {"image_size": list(SIZE), "num_classes": NUM_CLASSES, "object_shape": "bar"}
    config = RunConfig().override([("data.source", "synthetic"), ("data.synthetic", task)])
    run = tmp_path / "run"
    config.save(str(run / "run_config.json"))
    os.makedirs(run / "checkpoints")
    model.save(run / "checkpoints" / "best.keras")

    process = _export_process(
        run / "checkpoints" / "best.keras", tmp_path / "out", "--validation", "synthetic"
    )
    assert process.returncode == 0, process.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    recorded = manifest["quality_data"]
    assert SyntheticConfig(**recorded["synthetic"]) == SyntheticConfig(**task)
    assert "object_shape=bar" in recorded["source"]

    model.save(tmp_path / "loose.keras")
    error = _one_error_line(
        _export_process(tmp_path / "loose.keras", tmp_path / "out2", "--validation", "synthetic")
    )
    assert "loose.keras is not a run's checkpoint" in error
