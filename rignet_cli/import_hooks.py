"""Running code around the first import of a module: a `sys.meta_path` finder.

`ImportHooks({"keras": around})` wraps the first import of `keras` in `around(execute)` (the
module is imported by `execute()`), once, then removes itself from `sys.meta_path`. The package
uses it to register its classes when Keras is imported after it; the commands use it to hold
TensorFlow's import-time log lines (`rignet_cli.tensorflow_logs`).
"""

import importlib.abc
import sys


class HookedLoader(importlib.abc.Loader):
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


class ImportHooks(importlib.abc.MetaPathFinder):
    """Wraps the first import of some top-level modules ({name: around(execute)}), once each;
    leaves `sys.meta_path` when none is left."""

    def __init__(self, hooks):
        self._hooks = dict(hooks)

    def install(self):
        """Puts the finder first in `sys.meta_path`; returns it."""
        sys.meta_path.insert(0, self)
        return self

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
            spec.loader = HookedLoader(spec.loader, around)
        return spec
