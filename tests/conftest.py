"""The test lanes, and the fixtures every test shares (deterministic seeds, a NumPy generator).

Two lanes (docs/DESIGN.md, "Running the tests"):

- the fast lane, `python -m pytest -q`: what a contributor runs before every commit. It leaves
  out every test carrying one of the heavy markers below;
- the full lane, `python -m pytest -q --all`: every test but the `slow` ones (what CI runs).

`-m EXPR` replaces the lanes: pytest selects by the expression alone (`-m export`, `-m slow`).
In the fast lane a test that starts a process without the `subprocess` marker fails, naming the
marker, so a heavy test cannot slip into it unmarked. Helpers live in tests/harness.py.
"""

import os
import subprocess

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the tests quiet TensorFlow for themselves

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Marker -> what puts a test behind it. Each is left out of the fast lane.
HEAVY_MARKERS = {
    "subprocess": "starts a Python process (a TensorFlow import is seconds before any work)",
    "export": "converts a model to SavedModel, TFLite or ONNX",
    "large": "builds a network of ResNet-50 size or more, trains more than a few steps, or "
    "takes more than a few seconds for another reason",
}
SLOW_MARKER = "minutes each (the largest conversions); only with -m slow"


def pytest_addoption(parser):
    parser.addoption(
        "--all",
        action="store_true",
        default=False,
        help="run the full lane: every test but the slow ones (-m slow runs those); what CI runs",
    )


def pytest_configure(config):
    for name, why in HEAVY_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {why}; not in the fast lane (--all runs it)")
    config.addinivalue_line("markers", f"slow: {SLOW_MARKER}")


def _lane(config):
    """ "fast", "all", or None when -m chose the tests."""
    if config.getoption("markexpr"):
        return None
    return "all" if config.getoption("--all") else "fast"


def pytest_collection_modifyitems(config, items):
    lane = _lane(config)
    if lane is None:
        return
    left_out = {"slow"} if lane == "all" else {"slow", *HEAVY_MARKERS}
    kept, deselected = [], []
    for item in items:
        marks = {m.name for m in item.iter_markers()}
        (deselected if marks & left_out else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(autouse=True)
def _no_unmarked_process(request, monkeypatch):
    """In the fast lane, a test that starts a process must carry the `subprocess` marker."""
    if _lane(request.config) != "fast" or request.node.get_closest_marker("subprocess"):
        yield
        return

    def refuse(self, args, *rest, **kwargs):
        shown = args if isinstance(args, str) else " ".join(map(str, args))[:120]
        pytest.fail(
            f"{request.node.nodeid} starts a process ({shown}) without the subprocess marker: "
            "mark it @pytest.mark.subprocess (it then runs in the full lane, --all)",
            pytrace=False,
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    yield


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
