"""Recipe files: a Python file with an `EXPERIMENTS` dict of `RunConfig`s (its variants), loaded
by path (`rignet train --recipe`, `recipes/run_table.py`, the benchmarks)."""

import importlib.util
import os


def load_recipe(path):
    """The module of a recipe file (its `EXPERIMENTS` dict is what `rignet train` runs)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"recipe not found: {path}")
    spec = importlib.util.spec_from_file_location(
        f"rignet_recipe_{os.path.splitext(os.path.basename(path))[0]}", path
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "EXPERIMENTS"):
        raise ValueError(f"recipe {path} defines no EXPERIMENTS dict")
    return module
