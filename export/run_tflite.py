"""Run an exported RIGNet TFLite graph on a device: NumPy, Pillow and ai_edge_litert only.

    python export/run_tflite.py photo.jpg --manifest exports/rignet --budget-ms 40
    python export/run_tflite.py photos/ --model exports/rignet/rignet_float32.tflite --ui 2
    python export/run_tflite.py photo.jpg --manifest exports/rignet --deadline-ms 30
    python export/run_tflite.py --manifest exports/rignet --benchmark --threads 2

The runner library is `rignet_keras/export/runner.py`. It is loaded here by file path, not
imported as `rignet_keras.export.runner`, because importing the `rignet_keras` package imports
Keras and TensorFlow, which a device does not have. To deploy, copy this file, runner.py and
litert_cache.py (needed for `--weight-cache`) into one folder (the runner is looked for beside
this file first).
"""

import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_CANDIDATES = (
    os.path.join(_HERE, "runner.py"),
    os.path.join(_HERE, os.pardir, "rignet_keras", "export", "runner.py"),
)


def load_runner():
    """The runner module, loaded from its file without importing the rignet_keras package."""
    for path in _CANDIDATES:
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location("rignet_tflite_runner", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # dataclasses look their module up here
            spec.loader.exec_module(module)
            return module
    raise SystemExit(f"runner.py not found (looked in {', '.join(_CANDIDATES)})")


if __name__ == "__main__":
    sys.exit(load_runner().main())
