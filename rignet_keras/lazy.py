"""Module attributes loaded on first use (PEP 562), for the package's `__init__` modules.

A package lists its public names with the module defining each; importing the package then
imports none of them, so a command's `--help` and the parts that need no TensorFlow start fast.
"""

import importlib


def lazy_attributes(package, table, namespace):
    """The `__getattr__` and `__dir__` of a package whose names load on first use.

    Args:
        package: the package's `__name__` (for the error message).
        table: {public name: the module that defines it}.
        namespace: the package's `globals()`; a loaded name is cached there.

    Returns:
        (`__getattr__`, `__dir__`), to assign at the package's top level.
    """

    def __getattr__(name):
        if name in table:
            value = getattr(importlib.import_module(table[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
