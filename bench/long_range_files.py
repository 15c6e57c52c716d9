"""Where the long-range study keeps its results and runs, shared by `bench.long_range` (which
trains and measures the runs) and `bench.receptive_field` (which measures their ERFs further).

A results folder (default `bench/results`) holds

    long_range.json               the runs' records (`bench.long_range`)
    receptive_field.json          the ERF radii per task, model, seed and ui, and `mark_share`
    receptive_field_maps.npz      the ERF maps, keyed "task/model/seed/ui"

and each run trains in `<work dir>/<task>-<model>-s<seed>-<steps>steps`. The folder is passed
to the functions that read or write these files as a `ResultFiles`.
"""

import dataclasses
import os

from bench.common import RESULTS_DIR

DEFAULT_WORK_DIR = "/tmp/rignet-long-range"


@dataclasses.dataclass(frozen=True)
class ResultFiles:
    """The result files of the long-range study in `folder`."""

    folder: str = RESULTS_DIR

    @property
    def long_range(self):
        """The runs' records (`bench.long_range`)."""
        return os.path.join(self.folder, "long_range.json")

    @property
    def erf(self):
        """The ERF radii and mark shares (`bench.receptive_field`)."""
        return os.path.join(self.folder, "receptive_field.json")

    @property
    def maps(self):
        """The ERF maps (float16, each normalised to sum 1)."""
        return os.path.join(self.folder, "receptive_field_maps.npz")

    def path(self, name):
        """Another file (a plot) of the study in the folder."""
        return os.path.join(self.folder, name)


def run_folder(work_dir, task, model, seed, steps):
    """The folder of one run: its configuration, checkpoints and history."""
    return os.path.join(work_dir, f"{task}-{model}-s{seed}-{steps}steps")
