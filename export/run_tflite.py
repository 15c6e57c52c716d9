"""Run an exported RIGNet TFLite graph on a device: NumPy, Pillow and ai_edge_litert only.

    python export/run_tflite.py photo.jpg --manifest exports/rignet --budget-ms 40
    python export/run_tflite.py photos/ --model exports/rignet/rignet_float32.tflite --ui 2
    python export/run_tflite.py photo.jpg --manifest exports/rignet --deadline-ms 30
    python export/run_tflite.py photos/ --manifest exports/rignet --quality-floor 1 --budget-ms 40
    python export/run_tflite.py photo.jpg --manifest exports/rignet --deadline-ms 30 \
        --stop either --stable-tolerance 0.01 --confidence 0.9 --uncertain-tolerance 0.05
    python export/run_tflite.py --manifest exports/rignet --benchmark --threads 2

A thin entry point for the installed package: the runner is `rignet_runtime`
(`python -m rignet_runtime` is the same command). The runtime imports neither TensorFlow
nor Keras. To deploy without the project, copy the folder `rignet_runtime` to the device
under any name and run it as a module: `python -m rignet_runtime photo.jpg --manifest DIR`.
"""

import sys

from rignet_runtime.cli import main
from rignet_runtime.litert_log import exit_status

if __name__ == "__main__":
    sys.exit(exit_status(main()))
