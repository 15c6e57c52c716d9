"""The VOC recipe fails fast without data and runs end to end on a tiny VOCdevkit; `rignet
predict` and `rignet evaluate` on the model it saved."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from rignet_keras.cli import load_recipe
from rignet_keras.cli import main as rignet
from tests.harness import VOC_RECIPE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.subprocess
def test_voc_recipe_without_data_fails_fast_with_the_data_layers_message(tmp_path):
    missing = tmp_path / "no-data-here"
    t0 = time.time()
    cmd = [
        sys.executable,
        VOC_RECIPE,
        "--data-dir",
        str(missing),
        "--output-dir",
        str(tmp_path / "r"),
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert str(missing / "VOCdevkit" / "VOC2012") in proc.stderr
    assert "rignet data download voc" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "r" / "checkpoints")  # nothing was built or trained
    assert time.time() - t0 < 60  # the TF import dominates; no model is built
    module = load_recipe(VOC_RECIPE)  # in-process: the same, in well under a second
    t0 = time.time()
    assert module.recipe_main(module.EXPERIMENTS, ["--data-dir", str(missing)]) == 2
    assert time.time() - t0 < 5


def test_voc_recipe_runs_end_to_end_on_a_fixture(voc_run):
    _, out = voc_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["label"] == "ResNet18-RIGNet Pu<6..4>, ui=6"
    assert summary["steps"] == 2 and summary["num_classes"] == 21 and summary["ui"] == 6
    assert set(summary["anytime"]) == {str(k) for k in range(1, 7)}
    results = json.loads((out / "eval" / "results.json").read_text())
    assert results["num_images"] == 3 and results["iterations"] == [1, 2, 3, 4, 5, 6]
    for name in ("best.keras", "last.keras", "checkpoints.json"):
        assert (out / "checkpoints" / name).is_file()
    assert (out / "eval" / "anytime_miou.png").is_file()
    masks = sorted(os.listdir(out / "eval" / "predictions" / "masks"))
    assert masks == ["2007_val000.png", "2007_val001.png"]
    assert (out / "eval" / "predictions" / "gate_maps" / "2007_val000.png").is_file()
    history = (out / "history.csv").read_text()
    assert "val_mIoU" in history.splitlines()[0]


@pytest.mark.large
def test_rignet_predict_and_evaluate_commands(voc_run, tmp_path):
    data_dir, out = voc_run
    model = str(out / "checkpoints" / "best.keras")
    images = os.path.join(data_dir, "VOCdevkit", "VOC2012", "JPEGImages")
    assert (
        rignet(
            [
                "predict",
                images,
                "--model",
                model,
                "--output-dir",
                str(tmp_path / "p"),
                "--ui",
                "2",
                "--gate-maps",
            ]
        )
        == 0
    )
    with Image.open(tmp_path / "p" / "2007_val000.png") as im:
        assert im.mode == "P" and im.size == (64, 48)  # each image at its own size
        assert np.array(im).max() < 21
    assert (tmp_path / "p" / "2007_val000_overlay.png").is_file()  # every output a PNG
    assert (tmp_path / "p" / "2007_val000_gates.png").is_file()
    code = rignet(
        [
            "evaluate",
            "--model",
            model,
            "--source",
            "voc",
            "--data-dir",
            data_dir,
            "--iterations",
            "1,3",
            "--num-visualize",
            "0",
            "--output-dir",
            str(tmp_path / "e"),
            "--quiet",
        ]
    )
    assert code == 0
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert results["iterations"] == [1, 3] and results["num_images"] == 3
    assert rignet(["predict", str(tmp_path / "nothing"), "--model", model]) == 2


def test_table_runner_writes_the_papers_layout(tmp_path):
    from rignet_keras.training.tables import run_folder, run_table

    module = load_recipe(os.path.join(ROOT, "recipes", "table8.py"))
    run = tmp_path / os.path.basename(run_folder(str(tmp_path), module.EXPERIMENTS["r50_fcn"]))
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"pAcc": 0.5, "mAcc": 0.25, "mIoU": 0.125}))
    assert (
        run_table(
            module.EXPERIMENTS, module.TABLE, ["--output-dir", str(tmp_path), "--markdown-only"]
        )
        == 0
    )
    lines = (tmp_path / "table8.md").read_text().splitlines()
    assert "| Method | pAcc | mAcc | mIoU |" in lines
    assert "| ResNet50-FCN | 50.0 (57.2) | 25.0 (35.2) | 12.5 (24.3) |" in lines
    assert "| DeepLabV2-RIGNet Pu<6..1>, ui=2 | — (66.1) | — (46.6) | — (35.0) |" in lines
    for number in range(1, 9):  # every table's variants build valid configs
        table = load_recipe(os.path.join(ROOT, "recipes", f"table{number}.py"))
        cells = table.TABLE.get("cells", {}).values() or [v for _, v in table.TABLE["rows"]]
        assert set(cells) <= set(table.EXPERIMENTS)


def test_a_variant_shared_by_several_tables_is_one_run(tmp_path):
    """Pu<6..4>, ui = 2 on ResNet-50 is a cell of Tables 2, 4, 5 and 6: one folder, one run."""
    from rignet_keras.training.tables import run_folder, run_tables

    recipes = {n: load_recipe(os.path.join(ROOT, "recipes", f"table{n}.py")) for n in (2, 4, 5, 6)}
    shared = {("2", "pu_64"), ("4", "r50_mul_sigmoid"), ("5", "r50_avg"), ("6", "pu_64")}
    folders = {run_folder(str(tmp_path), recipes[int(n)].EXPERIMENTS[v]) for n, v in shared}
    assert len(folders) == 1
    other = run_folder(str(tmp_path), recipes[4].EXPERIMENTS["r50_mul_tanh"])
    assert other not in folders  # a different gate is a different run
    folder = folders.pop()
    os.makedirs(folder)
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump({"mIoU": 0.5}, f)
    tables = [(recipes[n].EXPERIMENTS, recipes[n].TABLE) for n in (2, 4, 5, 6)]
    assert run_tables(tables, ["--output-dir", str(tmp_path), "--markdown-only"]) == 0
    assert "| Pu | — (62.3) | — (64.8) | 50.0 (65.2) |" in (tmp_path / "table2.md").read_text()
    assert (
        "| ResNet50-RIGNet | — (64.2) | 50.0 (65.2) | — (65.2) |"
        in (tmp_path / "table4.md").read_text()
    )
    assert (
        "| ResNet50-RIGNet | — (65.2) | — (65.2) | 50.0 (65.2) |"
        in (tmp_path / "table5.md").read_text()
    )
    assert (
        "| ResNet50-RIGNet Pu<6..4>, ui = 2 | 50.0 (65.2) |" in (tmp_path / "table6.md").read_text()
    )
