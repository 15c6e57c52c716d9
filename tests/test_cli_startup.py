"""Start-up of the commands: `rignet --help` without TensorFlow, in well under a second (the
launcher, `rignet_cli`); every other command's TensorFlow log lines off unless `--verbose` or
the user's `TF_CPP_MIN_LOG_LEVEL`; the saved-model classes registered whichever of
`import rignet_keras` and `import keras` comes first; the library itself leaves the environment,
the import machinery and descriptor 2 of its host as its dependencies leave them."""

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# absl's log line prefix (I0000 00:00:..., E0000 ...) and its pre-initialisation notice.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog", re.MULTILINE)
HELP_SECONDS = 1.0


def python(code, env_changes=None, timeout=300):
    """Runs `python -c code` in a fresh process without the test session's TF_CPP_MIN_LOG_LEVEL
    (plus `env_changes`); returns (CompletedProcess, wall seconds)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(env_changes or {})
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    return proc, time.perf_counter() - t0


HELP_CODE = """
import sys, time
t0 = time.perf_counter()
from {module} import main
try:
    code = main({argv!r})
except SystemExit as exit_:
    code = exit_.code
seconds = time.perf_counter() - t0
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(f"HELP seconds={{seconds:.3f}} heavy={{heavy}}", file=sys.stderr)
sys.exit(code)
"""


def _help(module, argv):
    proc, wall = python(HELP_CODE.format(module=module, argv=argv))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "usage:" in proc.stdout
    assert "heavy=[]" in proc.stderr, proc.stderr[-3000:]  # neither TensorFlow nor Keras
    seconds = float(re.search(r"seconds=([0-9.]+)", proc.stderr).group(1))
    assert seconds < HELP_SECONDS, f"{argv}: {seconds:.2f} s to print help"
    assert wall < 5 * HELP_SECONDS, f"{argv}: the process took {wall:.2f} s"


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--verbose", "--help"]])
@pytest.mark.subprocess
def test_the_top_level_help_imports_no_tensorflow_and_is_fast(argv):
    _help("rignet_cli.launcher", argv)


@pytest.mark.subprocess
def test_the_launcher_and_the_runtime_import_no_tensorflow():
    proc, _ = python(
        "import sys, rignet_cli.launcher, rignet_runtime; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'rignet_keras') if m in sys.modules))"
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr[-3000:]


@pytest.mark.parametrize(
    "argv, usage",
    [
        (["train", "--help"], "usage: rignet train"),
        (["evaluate", "--help"], "usage: rignet evaluate"),
        (["predict", "--help"], "usage: rignet predict"),
        (["quickstart", "--help"], "usage: rignet quickstart"),
        (["data", "--help"], "usage: rignet data"),
    ],
)
@pytest.mark.subprocess
def test_a_commands_help_prints_no_tensorflow_log_lines(argv, usage):
    # A command's flags are defined by the library, which imports TensorFlow: its help is not
    # instant, but as quiet as the command.
    proc, _ = python(f"import sys; from rignet_cli.launcher import main; sys.exit(main({argv!r}))")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(usage), proc.stdout[:300]
    assert not TF_LOG_LINE.search(proc.stderr), proc.stderr[-3000:]


# A command that imports TensorFlow (Keras, to read the model file), then fails on a user error:
# the file is no Keras model.
PREDICT_COMMAND = (
    "import sys; from rignet_cli.launcher import main; "
    "sys.exit(main({argv!r} + ['predict', '--model', {model!r}, {image!r}, '--output-dir', "
    "{output!r}]))"
)


@pytest.fixture
def predict_command(tmp_path):
    """`PREDICT_COMMAND` on a text file named `.keras` and a real image, for `argv` before it."""
    model = tmp_path / "not_a_model.keras"
    model.write_text("not a model")
    image = tmp_path / "image.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)

    def command(argv):
        return PREDICT_COMMAND.format(
            argv=argv, model=str(model), image=str(image), output=str(tmp_path / "masks")
        )

    return command


def _tensorflow_prints_log_lines():
    proc, _ = python("import tensorflow", {"TF_CPP_MIN_LOG_LEVEL": "0"})
    return bool(TF_LOG_LINE.search(proc.stderr))


@pytest.fixture(scope="module")
def tensorflow_logs():
    """Whether a bare `import tensorflow` prints log lines on this machine (it does on x86
    Linux: oneDNN, CUDA probing); the `--verbose` test needs lines to look for."""
    return _tensorflow_prints_log_lines()


@pytest.mark.subprocess
def test_a_command_prints_no_tensorflow_log_lines(predict_command):
    proc, _ = python(predict_command([]))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert not TF_LOG_LINE.search(proc.stderr), proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --model"), proc.stderr[-3000:]
    assert "not_a_model.keras" in lines[0]


@pytest.mark.subprocess
def test_verbose_and_the_users_log_level_turn_the_lines_on(tensorflow_logs, predict_command):
    if not tensorflow_logs:
        pytest.skip("TensorFlow prints no log lines at import on this machine")
    verbose, _ = python(predict_command(["--verbose"]))
    assert verbose.returncode == 2 and TF_LOG_LINE.search(verbose.stderr), verbose.stderr
    explicit, _ = python(predict_command([]), {"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert explicit.returncode == 2 and TF_LOG_LINE.search(explicit.stderr), explicit.stderr


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from rignet_keras import RIGNet

    path = tmp_path_factory.mktemp("saved") / "m.keras"
    model = RIGNet(3, backbone="resnet18", feedback_blocks=(4, 6), num_iterations=2)
    model(np.zeros((1, 32, 32, 3), np.uint8))
    model.save(path)
    return path


@pytest.mark.parametrize(
    "imports",
    [
        "import rignet_keras; import keras",
        "import keras; import rignet_keras",
        # A subpackage first: it imports Keras before it has defined what the models import.
        "import rignet_keras.layers; import keras",
        "from rignet_keras.backbones import split_model; import keras",
        "import rignet_keras.backbones.mit; import keras",
    ],
)
@pytest.mark.subprocess
def test_load_model_finds_the_classes_whichever_import_comes_first(saved_model, imports):
    code = (
        f"{imports}; m = keras.models.load_model({str(saved_model)!r}, safe_mode=True); "
        "print(type(m).__name__, m.num_iterations)"
    )
    proc, _ = python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["RIGNet", "2"]


HOST_CODE = """
import json, os, sys

def state():
    stat = os.fstat(2)
    return dict(
        environ=dict(os.environ),
        meta_path=[type(f).__module__ + "." + type(f).__qualname__ for f in sys.meta_path],
        fd2=[stat.st_dev, stat.st_ino, stat.st_mode],
    )

before = state()
import {module}
imported = state()
{then}
after = state()
print(json.dumps([before, imported, after]))
"""
RUN_A_MODEL = """
import numpy as np
from rignet_keras import RIGNet
model = RIGNet(3, backbone="resnet18", feedback_blocks=(4, 6), num_iterations=2)
model(np.zeros((1, 32, 32, 3), np.uint8))
"""


def _host_states(module, then="pass"):
    proc, _ = python(HOST_CODE.format(module=module, then=then))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _changes(before, after):
    """What an import changed: environment variables set or changed (name: value), finders
    added to `sys.meta_path`, and whether descriptor 2 is another file."""
    environ = {
        k: after["environ"].get(k)
        for k in set(before["environ"]) | set(after["environ"])
        if before["environ"].get(k) != after["environ"].get(k)
    }
    finders = sorted(set(after["meta_path"]) - set(before["meta_path"]))
    return environ, finders, after["fd2"] != before["fd2"]


@pytest.mark.subprocess
def test_the_library_leaves_its_host_as_keras_leaves_it():
    # Importing the package imports Keras, and Keras' own import (TensorFlow, absl, OpenCV)
    # sets environment variables and adds finders: `import rignet_keras` must change exactly
    # what `import keras` changes, and building and running a model nothing more.
    keras_before, keras_after, _ = _host_states("keras")
    before, imported, after = _host_states("rignet_keras", then=RUN_A_MODEL)
    assert _changes(before, imported) == _changes(keras_before, keras_after)
    assert not _changes(before, imported)[2]  # descriptor 2 untouched
    assert _changes(imported, after) == ({}, [], False)
