"""The packages' shape: no import cycle anywhere in the repository, no upward import between the
layers, nothing but the `rignet` dispatchers importing the commands, the device runtime alone,
and no module of `rignet_keras/` over 500 lines.

Imports are read from the source (every `import` and `from ... import`, inside functions
included), not by importing, so a lazy import counts as much as a top-level one.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TREES = ("rignet_runtime", "rignet_cli", "rignet_keras", "bench", "export", "recipes")
MAX_LINES = 500

# The layers, low to high: a module may import its own layer and those below. The longest
# matching prefix decides a module's layer.
LAYERS = (
    ("rignet_runtime",),  # the device runtime: NumPy and LiteRT only
    ("rignet_cli",),  # what a command runs before TensorFlow is imported
    (
        "rignet_keras.version",
        "rignet_keras.labels",
        "rignet_keras.lazy",
        "rignet_keras.ops",
        "rignet_keras.preprocessing",
        "rignet_keras.presets",
        "rignet_keras.confusion",
        "rignet_keras.profile",
        "rignet_keras.receptive_field",
    ),
    ("rignet_keras.layers",),
    ("rignet_keras.backbones",),
    ("rignet_keras.models",),
    ("rignet_keras.data",),
    ("rignet_keras.export",),
    ("rignet_keras.config", "rignet_keras.console"),
    ("rignet_keras.training",),
    ("rignet_keras.tasks",),  # the keras-hub shaped API over training and export
    ("rignet_keras",),  # the package's __init__: the public API (importing it registers)
    ("rignet_keras.cli", "rignet_keras.quickstart"),  # the commands
    ("rignet_cli.launcher", "rignet_cli.__main__"),  # the `rignet` entry point
    ("bench", "export", "recipes"),  # scripts over the package
)
COMMANDS = ("rignet_keras.cli", "rignet_keras.quickstart")
# The imports of a command by another module: the launcher runs `rignet_keras.cli`, which
# dispatches `rignet quickstart`.
DISPATCH = {
    ("rignet_cli.launcher", "rignet_keras.cli"),
    ("rignet_keras.cli", "rignet_keras.quickstart"),
}


def module_files():
    """{dotted module name: path} of every Python file of the repository's trees."""
    modules = {}
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def known_module(name, modules):
    """The longest prefix of dotted `name` that is one of `modules`, or None (not ours)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module, path, modules):
    """The repository modules that `module` (at `path`) imports, anywhere in its source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            names = [source] + [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = known_module(name, modules)
            if target is not None and target != module:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph():
    modules = module_files()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def layer_of(module):
    best, rank = "", None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > len(best):
                best, rank = prefix, index
    return rank


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walk_sees_lazy_and_relative_imports(tmp_path):
    modules = {"pkg": tmp_path / "pkg/__init__.py", "pkg.a": tmp_path / "pkg/a.py"}
    modules["pkg.b"] = tmp_path / "pkg/b.py"
    (tmp_path / "pkg").mkdir()
    modules["pkg.a"].write_text("def f():\n    from .b import thing\n")
    modules["pkg.b"].write_text("import pkg.a\n")
    modules["pkg"].write_text("")
    graph = {m: imports_of(m, p, modules) for m, p in modules.items()}
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_every_module_has_a_layer(graph):
    assert [m for m in graph if layer_of(m) is None] == []


def test_no_import_cycle(graph):
    assert cycles(graph) == []


def test_no_upward_import(graph):
    upward = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_only_the_dispatcher_imports_a_command(graph):
    importers = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if target in COMMANDS and (module, target) not in DISPATCH
    ]
    assert importers == []


def test_the_runtime_imports_nothing_else_of_the_package(graph):
    outside = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if module.startswith("rignet_runtime")
        for target in sorted(targets)
        if not target.startswith("rignet_runtime")
    ]
    assert outside == []


def test_no_module_of_the_package_over_500_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in sorted((ROOT / "rignet_keras").rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_runtime_imports_itself_relatively():
    """The runtime folder can be copied to a device alone, under any name: it names no package,
    its own included."""

    def names_the_package(node):
        if isinstance(node, ast.ImportFrom):
            return node.level == 0 and (node.module or "").startswith("rignet")
        if isinstance(node, ast.Import):
            return any(alias.name.startswith("rignet") for alias in node.names)
        return False

    absolute = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((ROOT / "rignet_runtime").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if names_the_package(node)
    ]
    assert absolute == []
