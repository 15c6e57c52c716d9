"""The run configuration: the model section is RIGNet's signature, JSON round trips, generic
overrides and their aliases, refusals that name the key, and the resume check."""

import dataclasses
import inspect
import json
import os
import re
import subprocess
import sys

import pytest

from rignet_keras.cli import load_recipe
from rignet_keras.cli import main as rignet
from rignet_keras.config import (
    CONFIG_NAME,
    ConfigError,
    RunConfig,
    check_model_kwargs,
    check_resume,
    model_label,
    parse_assignment,
)
from rignet_keras.models import RIGNet
from rignet_keras.presets import PRESETS
from tests.harness import ROOT, SMALL_VOC_RUN, VOC_RECIPE

TABLES = [os.path.join(ROOT, "recipes", f"table{n}.py") for n in range(1, 9)]


def rignet_arguments():
    params = inspect.signature(RIGNet.__init__).parameters
    return [
        n for n, p in params.items() if n not in ("self", "num_classes") and p.kind != p.VAR_KEYWORD
    ]


def test_the_model_section_is_rignets_signature():
    for name in rignet_arguments():  # every option, the day it exists
        assert check_model_kwargs({name: None} if name != "backbone" else {name: "resnet18"})
    with pytest.raises(ConfigError, match=r"model\.gate_size is not a RIGNet argument"):
        check_model_kwargs({"gate_size": 3})
    with pytest.raises(ConfigError, match=r"model\.num_classes"):
        RunConfig(model={"num_classes": 21})
    for name, kwargs in PRESETS.items():  # the presets are written in it
        assert check_model_kwargs(kwargs) == kwargs, name
    assert model_label(PRESETS["resnet101_rignet"]) == "ResNet101-RIGNet Pf_u<6..1>, ui=6"


def test_every_recipe_variant_round_trips_through_json(tmp_path):
    for path in TABLES + [VOC_RECIPE]:
        for variant, config in load_recipe(path).EXPERIMENTS.items():
            file = config.save(str(tmp_path / f"{variant}.json"))
            again = RunConfig.load(file)
            assert again == config, (path, variant)
            assert again.fingerprint() == config.fingerprint()
            assert json.loads(open(file).read())["label"] == config.label()


def test_values_of_overrides():
    assert parse_assignment("train.steps=100") == ("train.steps", 100)
    assert parse_assignment("model.feedback_blocks=[1,6]") == ("model.feedback_blocks", [1, 6])
    assert parse_assignment("model.feedback_blocks=(1, 6)") == ("model.feedback_blocks", (1, 6))
    assert parse_assignment("model.gate_pooling=none") == ("model.gate_pooling", None)
    assert parse_assignment("model.sync_batch_norm=true") == ("model.sync_batch_norm", True)
    assert parse_assignment("model.backbone=resnet18") == ("model.backbone", "resnet18")
    config = RunConfig().override(["model.feedback_blocks=[1,6]", "data.eval_size=[64,64]"])
    assert config.model["feedback_blocks"] == (1, 6) and config.data.eval_size == (64, 64)
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_assignment("train.steps")


@pytest.mark.parametrize(
    "override, named",
    [
        ("model.gate_size=3", "model.gate_size"),
        ("train.stepz=3", "train.stepz"),
        ("data.sorce=voc", "data.sorce"),
        ("optimizer.lr=1", "optimizer.lr"),
        ("train.steps=many", "train.steps='many'"),
        ("eval.checkpoint=middle", "eval.checkpoint"),
    ],
)
def test_an_unknown_or_mistyped_override_fails_naming_it(override, named, capsys):
    module = load_recipe(VOC_RECIPE)
    assert module.recipe_main(module.EXPERIMENTS, ["--set", override, "--print-config"]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_override_the_recipe_cannot_honour_fails_naming_it(capsys):
    table3 = TABLES[2]
    assert rignet(["train", "--recipe", table3, "--variant", "pu_ui4", "--iterations", "6"]) == 2
    err = capsys.readouterr().err
    assert "cannot honour model.num_iterations" in err and "pu_ui4" in err
    assert rignet(["train", "--recipe", TABLES[3], "--set", "model.gate_combine=mul_tanh"]) == 2
    assert "cannot honour model.gate_combine" in capsys.readouterr().err
    # a training field stays free, even where the variants differ in it (Table 7's rates)
    assert rignet(["train", "--recipe", TABLES[6], "--lr", "0.001", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["learning_rate"] == 0.001


def test_flags_are_aliases_of_set_and_reach_every_option(capsys):
    aliases = [
        "--steps",
        "100",
        "--backbone",
        "resnet18",
        "--sync-batch-norm",
        "--source",
        "synthetic",
        "--feedback-blocks",
        "2",
        "--gate-pooling",
        "none",
        "--random-ui",
        "1,3",
        "--iterations",
        "3",
        "--scales",
        "0.75,1",
    ]
    generic = [
        "--set",
        "train.steps=100",
        "model.backbone=resnet18",
        "model.sync_batch_norm=true",
        "data.source=synthetic",
        "model.feedback_blocks=[2,6]",
        "model.gate_pooling=null",
        "train.train_iterations=[1,3]",
        "model.num_iterations=3",
        "eval.scales=[0.75,1.0]",
    ]
    printed = []
    for argv in (aliases, generic):
        assert rignet(["train", *argv, "--print-config"]) == 0
        printed.append(json.loads(capsys.readouterr().out))
    assert printed[0] == printed[1]
    tree = printed[0]
    assert tree["model"]["sync_batch_norm"] is True and tree["train"]["steps"] == 100
    assert tree["model"]["feedback_blocks"] == [2, 6] and tree["model"]["gate_pooling"] is None
    assert tree["train"]["train_iterations"] == [1, 3] and tree["eval"]["scales"] == [0.75, 1.0]
    # any RIGNet argument through --set, with or without a recipe
    assert (
        rignet(
            [
                "train",
                "--set",
                "model.recompute_blocks=true",
                "model.head_filters=64",
                "--print-config",
            ]
        )
        == 0
    )
    model = json.loads(capsys.readouterr().out)["model"]
    assert model["recompute_blocks"] is True and model["head_filters"] == 64
    # a recipe's flags are honoured, not ignored
    argv = [
        "train",
        "--recipe",
        VOC_RECIPE,
        "--source",
        "synthetic",
        "--backbone",
        "resnet18",
        "--steps",
        "10",
        "--sync-batch-norm",
        "--print-config",
    ]
    assert rignet(argv) == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree["data"]["source"] == "synthetic" and tree["model"]["backbone"] == "resnet18"
    assert tree["model"]["sync_batch_norm"] is True and tree["model"]["num_iterations"] == 6
    assert tree["train"]["steps"] == 10 and tree["train"]["steps_per_epoch"] == 10
    assert tree["train"]["warmup_steps"] == 1  # shortened with the steps


@pytest.mark.parametrize(
    "overrides, named",
    [
        (["export.quality_images=-1"], "export.quality_images must be at least 0; received -1"),
        (["export.quality_images=8"], "export.quality_images=8 needs an export"),
        (
            ['export.formats=["tflite"]', "export.quality_images=8", "data.source=cocostuff10k"],
            "needs an evaluation source in ('synthetic', 'voc', 'voc_aug'); the run's is "
            "'cocostuff10k'",
        ),
        (
            ['export.formats=["tflite"]', "export.quality_images=8", "data.eval_split=train"],
            "export.quality_images scores the val split; data.eval_split is 'train'",
        ),
    ],
)
def test_export_quality_is_refused_where_it_cannot_score(overrides, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        RunConfig().override(overrides)
    RunConfig().override(['export.formats=["tflite"]', "export.quality_images=8"])  # VOC


def test_check_resume_names_the_changed_field():
    config = load_recipe(VOC_RECIPE).EXPERIMENTS["pu64_ui6"]
    check_resume(config, config.override(["train.steps=60000"]))  # longer training: fine
    for change, named in (
        ("model.num_iterations=4", "model.num_iterations was 6"),
        ("train.seed=1", "train.seed was 0"),
        ("train.batch_size=8", "train.batch_size was 16"),
        ("data.crop_size=513", "data.crop_size was 321"),
    ):
        with pytest.raises(ConfigError, match=named):
            check_resume(config, config.override([change]))


# --------------------------------------------------------------------------------------------
# On a finished run (the tiny VOC fixture, shared with test_recipes_cli.py)


@pytest.mark.large
def test_recipe_to_resolved_config_file_to_the_same_run(voc_run, tmp_path, capsys):
    data_dir, out = voc_run
    recorded = RunConfig.load(str(out / CONFIG_NAME))
    module = load_recipe(VOC_RECIPE)
    argv = ["--data-dir", data_dir, *SMALL_VOC_RUN, "--print-config"]
    assert module.recipe_main(module.EXPERIMENTS, argv) == 0
    resolved = RunConfig.from_dict(json.loads(capsys.readouterr().out))
    resolved = resolved.replace(model={"backbone_weights": None})  # resnet18 has none
    assert recorded == resolved
    # the file alone runs it again: the same checkpoint, data and evaluation, the same numbers
    summary = json.loads((out / "summary.json").read_text())
    code = rignet(
        [
            "train",
            "--config",
            str(out / CONFIG_NAME),
            "--output-dir",
            str(out),
            "--eval-only",
            "--set",
            "eval.num_visualize=0",
        ]
    )
    assert code == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["mIoU"] == pytest.approx(summary["mIoU"], abs=1e-9)
    # and `rignet evaluate --run` reproduces every ui from the recorded data configuration
    assert (
        rignet(["evaluate", "--run", str(out), "--output-dir", str(tmp_path / "e"), "--quiet"]) == 0
    )
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    for k, value in summary["anytime"].items():
        assert results["scores"][k]["mIoU"] == pytest.approx(value, abs=1e-9)


def test_resume_with_a_changed_field_fails_naming_it(voc_run, capsys):
    _, out = voc_run
    before = (out / CONFIG_NAME).read_text()
    for flags, named in (
        (["--batch-size", "4"], "train.batch_size was 2"),
        (["--seed", "3"], "train.seed was 0"),
        (["--set", "data.num_train_samples=2"], "data.num_train_samples was None"),
        (["--set", "model.gate_combine=mul_tanh"], "model.gate_combine was 'mul_sigmoid'"),
    ):
        code = rignet(
            [
                "train",
                "--config",
                str(out / CONFIG_NAME),
                "--output-dir",
                str(out),
                "--resume",
                *flags,
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and named in err and "Traceback" not in err, err
    assert (out / CONFIG_NAME).read_text() == before  # nothing was overwritten


def test_evaluate_refuses_a_model_with_another_class_count(voc_run, capsys):
    _, out = voc_run
    model = str(out / "checkpoints" / "best.keras")
    code = rignet(
        [
            "evaluate",
            "--model",
            model,
            "--source",
            "synthetic",
            "--num-visualize",
            "0",
            "--num-samples",
            "2",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "predicts 21 classes" in err and len(err.strip().splitlines()) == 1


@pytest.mark.subprocess
def test_the_top_level_help_needs_no_tensorflow():
    """With Keras and TensorFlow unimportable (a device with the runtime only), `rignet --help`
    still works: the launcher imports neither."""
    code = (
        "import sys; sys.modules['keras'] = None; sys.modules['tensorflow'] = None; "
        "from rignet_cli.launcher import main; sys.exit(main(['--help']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: rignet" in proc.stdout
    for command in ("train", "evaluate", "predict", "quickstart", "data"):
        assert command in proc.stdout


def test_train_help_lists_the_configuration_flags(capsys):
    assert rignet(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--set SECTION.KEY=VALUE" in out and "--sync-batch-norm" in out


def test_a_model_section_rignet_refuses_fails_in_one_line(tmp_path, capsys):
    code = rignet(
        [
            "train",
            "--source",
            "synthetic",
            "--num-train-samples",
            "2",
            "--num-eval-samples",
            "2",
            "--crop-size",
            "64",
            "--output-dir",
            str(tmp_path / "r"),
            "--set",
            "model.unroll_mode=paralel",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "unroll_mode must be one of" in err[-1] and "'paralel'" in err[-1]
    assert not any("Traceback" in line for line in err)


@pytest.mark.subprocess
def test_evaluate_run_honours_every_flag(voc_run, tmp_path):
    """`rignet evaluate --run` applies its flags to the run's recorded configuration, and the
    results record what was evaluated."""
    data_dir, out = voc_run
    flags = ["--iterations", "2,5", "--num-samples", "2", "--flip", "--scales", "1,0.75"]
    flags += ["--split", "train", "--data-dir", data_dir, "--eval-mode", "none"]
    flags += ["--num-visualize", "1", "--output-dir", str(tmp_path / "e"), "--quiet"]
    process = subprocess.run(
        [sys.executable, "-m", "rignet_cli", "evaluate", "--run", str(out), *flags],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert results["iterations"] == [2, 5] and sorted(results["scores"]) == ["2", "5"]
    assert results["num_images"] == 2 and results["flip"] is True
    assert results["scales"] == [1.0, 0.75]
    recorded = results["info"]["run"]["data"]
    assert (recorded["eval_split"], recorded["eval_mode"]) == ("train", "none")
    assert len(os.listdir(tmp_path / "e" / "predictions")) >= 1


def test_evaluate_run_refuses_data_of_another_class_count(voc_run, tmp_path, capsys):
    from rignet_keras.data import write_synthetic_voc

    _, out = voc_run
    write_synthetic_voc(str(tmp_path), num_train=2, num_val=2)
    argv = ["evaluate", "--run", str(out), "--source", "synthetic", "--num-samples", "2"]
    argv += ["--data-dir", str(tmp_path)]
    code = rignet([*argv, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "predicts 21 classes" in err and len(err.strip().splitlines()) == 1


def test_every_file_of_a_run_follows_the_umask(voc_run):
    """Atomic writes go through private temporaries; what they leave has the mode a plain
    `open` would give (checkpoints, backups, config.json, history.csv, summary.json alike)."""
    from rignet_runtime.file_modes import current_umask

    _, out = voc_run
    umask = current_umask()
    modes = {}  # path -> (mode wanted, mode found)
    for folder, dirs, files in os.walk(out):
        for names, base in ((dirs, 0o777), (files, 0o666)):
            for name in names:
                path = os.path.join(folder, name)
                modes[path] = (base & ~umask, os.stat(path).st_mode & 0o777)
    assert {p: oct(found) for p, (want, found) in modes.items() if found != want} == {}
    names = {os.path.relpath(p, out) for p in modes}
    assert {"config.json", "history.csv", "summary.json", "run_config.json"} <= names
    assert any(n.startswith("backup/") for n in names) and "checkpoints/best.keras" in names


# The export_model arguments a configuration cannot hold as values: the model, the data arrays,
# the run's own folder decision and provenance note, and the validation source (a run scores on
# its own evaluation data: `quality_images`).
NOT_CONFIG_VALUES = {
    "model",
    "output_dir",
    "input_size",
    "representative_data",
    "parity_data",
    "overwrite",
    "source",
    "validation",
    "num_validation_images",
}


def test_the_export_section_is_export_models_signature_with_its_defaults():
    from rignet_keras.config import ExportConfig
    from rignet_keras.export import export_model

    params = inspect.signature(export_model).parameters
    fields = {f.name: f.default for f in dataclasses.fields(ExportConfig)}
    missing = [n for n in params if n not in NOT_CONFIG_VALUES and n not in fields]
    assert missing == []
    differ = {
        n: (fields[n], params[n].default)
        for n in params
        if n in fields and n not in NOT_CONFIG_VALUES and fields[n] != params[n].default
    }
    # A run exports nothing unless its export section names formats.
    assert differ == {"formats": ((), params["formats"].default)}
    options = ExportConfig(formats=("tflite",)).export_options()
    assert set(options) == set(params) - NOT_CONFIG_VALUES
    assert options["stepwise"] is None  # "whenever the model supports it", as export_model


def test_a_run_exports_with_every_option_of_its_section(monkeypatch, tmp_path):
    import rignet_keras.export as export
    from rignet_keras.training.experiment import export_run

    seen = {}

    def fake_export(network, folder, **kwargs):
        seen.update(kwargs)
        os.makedirs(folder)
        return {"artifacts": []}

    monkeypatch.setattr(export, "export_model", fake_export)
    config = RunConfig(model={"backbone": "resnet18"}).override(
        ['export.formats=["tflite"]', "export.stepwise_iterations=2", "export.latency_runs=0"]
    )
    export_run(None, config, str(tmp_path))
    assert seen["stepwise"] is None and seen["stepwise_iterations"] == 2
    assert seen["latency_runs"] == 0 and seen["input_size"] == (321, 321)
    assert seen["overwrite"] is True


def test_overriding_the_source_moves_the_evaluation_with_it(capsys):
    voc = load_recipe(VOC_RECIPE).EXPERIMENTS["pu64_ui6"]
    moved = voc.override([("data.source", "synthetic")])
    assert (moved.data.eval_source, moved.data.eval_split) == (None, "val")
    assert "data.eval_source follows data.source='synthetic'" in capsys.readouterr().err
    kept = voc.override([("data.source", "synthetic"), ("data.eval_source", "voc")])
    assert kept.data.eval_source == "voc"
    same = voc.override([("data.source", "voc_aug")])
    assert same.data.eval_source == "voc"
    coco = load_recipe(TABLES[7]).EXPERIMENTS["r50_pu64_ui6"]
    assert coco.data.eval_split == "test"
    assert coco.override([("data.source", "synthetic")]).data.eval_split == "val"


def test_a_paper_row_is_a_base_plus_a_preset():
    from rignet_keras.config import dataset_base, paper_experiment

    voc = load_recipe(VOC_RECIPE).EXPERIMENTS["pu64_ui6"]
    table7 = load_recipe(TABLES[6]).EXPERIMENTS["r50_pu64_ui6"]
    for config in (voc, table7):
        assert {k: config.model[k] for k in PRESETS["resnet50_rignet"]} == PRESETS[
            "resnet50_rignet"
        ]
        assert config.label() == "ResNet50-RIGNet Pu<6..4>, ui=6"
        assert config.train == dataset_base("voc").train
        assert config.data == dataset_base("voc").data
    fcn = paper_experiment("x", preset="resnet50_rignet", blocks=None)
    assert fcn.model["num_iterations"] == 1 and fcn.label() == "ResNet50-FCN"
    deeplab = paper_experiment("x", preset="deeplabv2")
    assert (deeplab.train.learning_rate, deeplab.train.weight_decay) == (0.0025, 5e-4)
    with pytest.raises(ConfigError, match="preset must be one of"):
        paper_experiment("x", preset="resnet51")


def test_every_entry_point_prints_its_resolved_configuration(tmp_path, capsys):
    import importlib.util

    from rignet_keras.quickstart import main as quickstart

    model = tmp_path / "m.keras"
    model.write_bytes(b"")  # --print-config reads no model
    argv = ["evaluate", "--model", str(model), "--flip", "--set", "eval.scales=[1,1.5]"]
    assert rignet([*argv, "--print-config"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["eval"]["flip"] is True and evaluated["eval"]["scales"] == [1, 1.5]
    assert evaluated["data"]["source"] == "voc"
    assert rignet(["evaluate", "--model", str(model), "--set", "train.steps=3"]) == 2
    assert "sets data and eval fields only" in capsys.readouterr().err

    assert quickstart(["--fast", "--set", "train.seed=3", "--print-config"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert sorted(runs) == ["fcn", "rignet"] and runs["rignet"]["train"]["seed"] == 3
    assert runs["rignet"]["export"]["stepwise"] is None  # the step-wise graphs where supported

    spec = importlib.util.spec_from_file_location(
        "export_model_script", os.path.join(ROOT, "export", "export_model.py")
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    flags = ["--layouts", "per_ui", "--no-strict", "--set", "export.opset=17", "--print-config"]
    assert script.main([str(model), str(tmp_path / "out"), *flags]) == 0
    section = json.loads(capsys.readouterr().out)["export"]
    assert section["tflite_layouts"] == ["per_ui"] and section["strict"] is False
    assert section["opset"] == 17 and section["isolate"] is True and section["stepwise"] is None
    assert section["formats"] == ["tflite"]
    assert script.main([str(model), str(tmp_path / "out"), "--set", "data.source=voc"]) == 2
    assert "sets the export section only" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_quickstart_flags_are_aliases_of_its_section(capsys, tmp_path):
    from rignet_keras.config.quickstart import QUICKSTART_FLAGS, QuickstartConfig
    from rignet_keras.quickstart import main as quickstart

    fields = {f.name for f in dataclasses.fields(QuickstartConfig)}
    assert {field for _, field, _, _, _ in QUICKSTART_FLAGS} <= fields

    def printed(*argv):
        argv = ["--fast", "--output-dir", str(tmp_path / "q"), *argv, "--print-config"]
        assert quickstart(argv) == 0
        return json.loads(capsys.readouterr().out)

    by_flag = printed("--image-size", "80", "--iterations", "4", "--num-train", "7")
    by_set = printed(
        "--set", "quickstart.image_size=80", "quickstart.num_iterations=4", "quickstart.num_train=7"
    )
    assert by_flag == by_set
    assert by_set["rignet"]["data"]["synthetic"]["image_size"] == [80, 80]
    assert by_set["rignet"]["export"]["input_size"] == 80
    assert by_set["rignet"]["model"]["num_iterations"] == 4
    assert by_set["fcn"]["model"]["num_iterations"] == 1
    assert by_set["rignet"]["data"]["num_train_samples"] == 7
    # a later --set wins over the flag, and its error names the key, not the flag
    assert printed("--steps", "5", "--set", "quickstart.steps=9")["fcn"]["train"]["steps"] == 9
    assert quickstart(["--fast", "--steps", "5", "--set", "quickstart.steps=0"]) == 2
    assert "quickstart.steps must be at least 1; received 0" in capsys.readouterr().err
    assert quickstart(["--fast", "--set", "quickstart.colour=2"]) == 2
    assert "quickstart.colour is not a QuickstartConfig field" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()
