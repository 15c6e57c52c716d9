"""Start-up of the commands: `--help` without TensorFlow, in well under a second; TensorFlow's
log lines off unless `--verbose` or the user's `TF_CPP_MIN_LOG_LEVEL`; the saved-model classes
registered whichever of `import rignet_keras` and `import keras` comes first; the library itself
leaves the environment, the import machinery and descriptor 2 of its host alone."""

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


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["evaluate", "--help"],
        ["predict", "--help"],
        ["quickstart", "--help"],
    ],
)
@pytest.mark.subprocess
def test_help_imports_no_tensorflow_and_is_fast(argv):
    _help("rignet_keras.cli", argv)


@pytest.mark.parametrize(
    "module, argv",
    [("rignet_keras.data.cli", ["--help"]), ("rignet_keras.cli", ["data", "--help"])],
)
@pytest.mark.subprocess
def test_data_help_imports_no_tensorflow(module, argv):
    _help(module, argv)


# A command that imports TensorFlow (Keras, to read the model file), then fails on a user error:
# the file is no Keras model.
PREDICT_COMMAND = (
    "import sys; from rignet_keras.cli import main; "
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


@pytest.mark.subprocess
def test_importing_the_package_alone_imports_no_keras():
    proc, _ = python(
        "import sys, rignet_keras; print(sorted(m for m in ('keras', 'tensorflow') "
        "if m in sys.modules))"
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr[-3000:]


HOST_CODE = """
import json, os, sys
import keras, numpy as np

def descriptor_2():
    stat = os.fstat(2)
    return [stat.st_dev, stat.st_ino, stat.st_mode]

before = dict(environ=dict(os.environ), meta_path=[repr(f) for f in sys.meta_path],
              fd2=descriptor_2())
import rignet_keras
from rignet_keras import RIGNet
model = RIGNet(3, backbone="resnet18", feedback_blocks=(4, 6), num_iterations=2)
model(np.zeros((1, 32, 32, 3), np.uint8))
after = dict(environ=dict(os.environ), meta_path=[repr(f) for f in sys.meta_path],
             fd2=descriptor_2())
print(json.dumps([before, after]))
"""


@pytest.mark.subprocess
def test_the_library_leaves_its_host_alone():
    # Keras first: the package then registers its classes at once, with no finder left behind.
    # The environment variables, the import machinery and descriptor 2 are those of before.
    proc, _ = python(HOST_CODE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before, after = json.loads(proc.stdout.strip().splitlines()[-1])
    assert after["environ"] == before["environ"]
    assert after["meta_path"] == before["meta_path"]
    assert after["fd2"] == before["fd2"]


@pytest.mark.subprocess
def test_importing_the_package_first_sets_no_environment_variable():
    # (TensorFlow's own import sets some, TF_CPP_MIN_LOG_LEVEL among them: compared before it.)
    proc, _ = python(
        "import os; before = dict(os.environ); import rignet_keras; "
        "print(dict(os.environ) == before, 'TF_CPP_MIN_LOG_LEVEL' in os.environ)"
    )
    assert proc.returncode == 0 and proc.stdout.split() == ["True", "False"], proc.stderr
