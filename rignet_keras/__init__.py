"""rignet-keras: Recurrent Iterative Gating Networks for semantic segmentation (Keras 3).

Importing this package makes every serializable class known to Keras, so that
`keras.models.load_model("model.keras", safe_mode=True)` rebuilds saved RIGNets, whichever of
`import rignet_keras` and `import keras` comes first: with Keras already imported, the models are
registered at once; otherwise they are registered the moment Keras finishes importing (an
import hook), so that `import rignet_keras` alone (the command line's `--help`, the device
runtime) imports neither Keras nor TensorFlow.

TensorFlow's C++ log lines (CUDA probing, CPU features, the `E0000 ... CUDA error` of a machine
without a GPU) are off: `TF_CPP_MIN_LOG_LEVEL` defaults to "3", and the lines TensorFlow prints
while it is imported, before that setting applies, are held back (and shown if the import
fails). A value of `TF_CPP_MIN_LOG_LEVEL` set by the user wins; the commands' `--verbose` turns
the lines on (`show_tensorflow_logs`).
"""

import importlib
import importlib.abc
import os
import sys
import tempfile

from rignet_keras.lazy import lazy_attributes

__version__ = "0.1.0"

TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# The user's own setting (None when unset): it wins over the default and over --verbose.
_USER_TF_LOG_LEVEL = os.environ.get(TF_LOG_LEVEL)
os.environ.setdefault(TF_LOG_LEVEL, "3")

# Public name -> the module that defines it; loaded on first use.
_LAZY = {
    "BACKBONES": "rignet_keras.backbones",
    "build_blocks": "rignet_keras.backbones",
    "load_imagenet_weights": "rignet_keras.backbones",
    "FeedbackGate": "rignet_keras.layers",
    "MultiRangeFeedbackGate": "rignet_keras.layers",
    "RIGNet": "rignet_keras.models",
    "RecurrentState": "rignet_keras.models",
    "calibrate_batch_norm": "rignet_keras.models",
    "UNROLL_MODES": "rignet_keras.models",
    "PRESETS": "rignet_keras.presets",
    "normalize": "rignet_keras.preprocessing",
    "count_macs": "rignet_keras.profile",
    "profile": "rignet_keras.profile",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


def show_tensorflow_logs():
    """Turns TensorFlow's C++ log lines back on (`--verbose`), unless the user set
    `TF_CPP_MIN_LOG_LEVEL`; call it before TensorFlow is imported."""
    if _USER_TF_LOG_LEVEL is None:
        os.environ[TF_LOG_LEVEL] = "0"


def _start_up_lines_hidden():
    """Whether the log threshold hides warnings (>= 2), hence TensorFlow's import-time lines."""
    level = os.environ.get(TF_LOG_LEVEL, "0").strip()
    return level.isdigit() and int(level) >= 2


class _HookedLoader(importlib.abc.Loader):
    """A module's own loader, with `around(execute)` wrapped about its execution."""

    def __init__(self, loader, around):
        self._loader, self._around = loader, around

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        spec = getattr(module, "__spec__", None)
        if spec is not None:  # resources and reloads go to the module's own loader
            spec.loader = self._loader
        module.__loader__ = self._loader
        self._around(lambda: self._loader.exec_module(module))

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _ImportHooks(importlib.abc.MetaPathFinder):
    """Wraps the first import of some top-level modules ({name: around(execute)}), once each."""

    def __init__(self, hooks):
        self._hooks = dict(hooks)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self._hooks:
            return None
        around = self._hooks.pop(fullname)
        if not self._hooks and self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _HookedLoader(spec.loader, around)
        return spec


def _quiet_tensorflow_import(execute):
    """Runs TensorFlow's import with file descriptor 2 held in a temporary file (its C++
    start-up lines precede any log setting); the held text is written out if the import fails."""
    if not _start_up_lines_hidden():
        return execute()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            execute()
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_registration_pending = False


def _initializing(exclude=None):
    """Names of this package's modules whose import is under way (`exclude` left out)."""
    return [
        name
        for name, module in list(sys.modules.items())
        if (name == __name__ or name.startswith(__name__ + "."))
        and name != exclude
        and getattr(getattr(module, "__spec__", None), "_initializing", False)
    ]


def _register_after(execute):
    """Runs Keras's import, then registers this package's classes (imports the models).

    When Keras is first imported by one of this package's own modules (`import
    rignet_keras.layers` in a fresh process), the models cannot be imported yet: they import
    names that module has not defined. The registration then waits until that package's import
    ends (`register_pending`, called last by `rignet_keras.layers` and `rignet_keras.backbones`).
    """
    global _registration_pending
    execute()
    try:
        importlib.import_module("rignet_keras.models")
    except ImportError:
        if not _initializing():
            raise
        _registration_pending = True


def register_pending(caller):
    """Registers the classes if an import of Keras left them waiting and no module of this
    package but `caller` (the package whose import ends now) is still being imported."""
    global _registration_pending
    if _registration_pending and not _initializing(exclude=caller):
        _registration_pending = False
        importlib.import_module("rignet_keras.models")


def _install_import_hooks():
    """Registers the classes now if Keras is imported, else when it is; quiets TensorFlow's
    import if it has not happened yet. Without Keras (a device with only the LiteRT runtime)
    nothing is registered and the package still imports."""
    hooks = {}
    if "tensorflow" not in sys.modules:
        hooks["tensorflow"] = _quiet_tensorflow_import
    if sys.modules.get("keras") is not None:
        importlib.import_module("rignet_keras.models")
    else:
        hooks["keras"] = _register_after
    if hooks:
        sys.meta_path.insert(0, _ImportHooks(hooks))


_install_import_hooks()
