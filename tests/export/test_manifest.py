"""`select_graph`: the largest ui whose measured latency fits the budget."""

import copy

import pytest

from rignet_keras.export import RunnerError, select_graph
from rignet_runtime import MANIFEST_FORMAT, MANIFEST_VERSION, find_stepwise


def _manifest():
    def signatures(latencies):
        return [
            {"name": f"ui_{ui}", "ui": ui, "latency_ms": {"median_ms": ms}}
            for ui, ms in latencies.items()
        ]

    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "_dir": "/exports/x",
        "artifacts": [
            {
                "file": "model.keras",
                "format": "keras",
                "kind": "model",
                "precision": "float32",
                "signatures": [],
            },
            {
                "file": "rignet_float32.tflite",
                "format": "tflite",
                "kind": "ui",
                "precision": "float32",
                "signatures": signatures({1: 10.0, 2: 19.0, 3: 28.0}),
            },
            {
                "file": "rignet_ui2_float32.tflite",
                "format": "tflite",
                "kind": "ui",
                "precision": "float32",
                "signatures": signatures({2: 18.0}),
            },
            {
                "file": "rignet_dynamic_int8.tflite",
                "format": "tflite",
                "kind": "ui",
                "precision": "dynamic_int8",
                "signatures": signatures({1: 4.0, 2: 7.0, 3: 9.5}),
            },
            {
                "file": "rignet_stepwise_float32.tflite",
                "format": "tflite",
                "kind": "stepwise",
                "precision": "float32",
                "signatures": [
                    {"name": "init", "ui": 1, "latency_ms": {"median_ms": 10.0}},
                    {"name": "step", "ui": None, "latency_ms": {"median_ms": 9.0}},
                ],
            },
            {
                "file": "rignet_ui3.onnx",
                "format": "onnx",
                "kind": "ui",
                "precision": "float32",
                "signatures": signatures({3: 5.0}),
            },
        ],
    }


@pytest.mark.parametrize(
    ("budget", "precision", "ui", "file"),
    [
        (100.0, None, 3, "rignet_dynamic_int8.tflite"),  # every ui fits: the fastest ui 3
        (20.0, "float32", 2, "rignet_ui2_float32.tflite"),  # ties on ui go to the faster file
        (28.0, "float32", 3, "rignet_float32.tflite"),  # the budget is inclusive
        (27.9, "float32", 2, "rignet_ui2_float32.tflite"),
        (10.0, "float32", 1, "rignet_float32.tflite"),
        (9.0, None, 2, "rignet_dynamic_int8.tflite"),
        (8.0, "dynamic_int8", 2, "rignet_dynamic_int8.tflite"),
    ],
)
def test_largest_ui_that_fits(budget, precision, ui, file):
    choice = select_graph(_manifest(), budget, precision)
    assert choice["ui"] == ui
    assert choice["file"] == f"/exports/x/{file}"
    assert choice["signature"] == f"ui_{ui}"
    assert choice["latency_ms"] <= budget


def test_other_formats_and_errors():
    manifest = _manifest()
    assert select_graph(manifest, 6.0, fmt="onnx")["ui"] == 3
    with pytest.raises(RunnerError, match=r"no graph fits a budget of 3\.0 ms.*4\.0 ms"):
        select_graph(manifest, 3.0)
    with pytest.raises(RunnerError, match=r"precision 'int8'.*'float32', 'dynamic_int8'"):
        select_graph(manifest, 100.0, "int8")
    with pytest.raises(RunnerError, match="positive"):
        select_graph(manifest, 0)
    no_latency = copy.deepcopy(manifest)
    for artifact in no_latency["artifacts"]:
        for signature in artifact["signatures"]:
            signature["latency_ms"] = None
    with pytest.raises(RunnerError, match="measured latency"):
        select_graph(no_latency, 100.0)
    assert find_stepwise(manifest).endswith("rignet_stepwise_float32.tflite")
    with pytest.raises(RunnerError, match="no step-wise"):
        find_stepwise(manifest, "int8")


@pytest.mark.export
def test_on_a_real_export(exports):
    _, manifest, folder = exports.get("parallel")
    tflite = [
        (s["ui"], s["latency_ms"]["median_ms"], a["precision"])
        for a in manifest["artifacts"]
        if a["format"] == "tflite" and a["kind"] == "ui"
        for s in a["signatures"]
    ]
    for budget in sorted({ms for _, ms, _ in tflite}):
        choice = (
            select_graph(str(folder), budget, "float32")
            if any(p == "float32" and ms <= budget for _, ms, p in tflite)
            else None
        )
        if choice is None:
            continue
        fitting = [ui for ui, ms, p in tflite if p == "float32" and ms <= budget]
        assert choice["ui"] == max(fitting)
        assert choice["precision"] == "float32"
        assert choice["file"] == str(folder / "rignet_float32.tflite")
