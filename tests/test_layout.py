"""The library's layout rules: no import circles, no module reaching into another's private names,
ruff's lint rules on every Python file and its formatting on all but the chapters (pyproject.toml)."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "lib" / "rmbias"
MODULES = sorted(p.stem for p in LIBRARY.glob("*.py") if p.stem != "__init__")


def imports_of(source: str) -> dict[str, set[str]]:
    """The rmbias modules a module's source imports, at its top or inside a function (both can
    close a circle), each with the names it takes from them (``from .x import y``: ``y``)."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1 or node.module == "rmbias":
            if node.module and node.level == 1:  # from .x import y
                found.setdefault(node.module.split(".")[0], set()).update(a.name for a in node.names)
            else:  # from . import x, y
                for alias in node.names:
                    found.setdefault(alias.name, set())
        elif node.module and node.module.startswith("rmbias."):
            found.setdefault(node.module.split(".")[1], set()).update(a.name for a in node.names)
    return {m: names for m, names in found.items() if m in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle: the strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_circle_and_no_false_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert imports_of("from . import models, placement\ndef f():\n    from .training import x\n") == {
        "models": set(),
        "placement": set(),
        "training": {"x"},
    }


def test_the_library_has_no_import_circles():
    graph = {m: set(imports_of((LIBRARY / f"{m}.py").read_text())) - {m} for m in MODULES}
    assert cycles(graph) == []


def private_uses(source: str) -> list[str]:
    """Private names of other rmbias modules a source uses: ``module._name`` on an imported module,
    or ``from .module import _name``."""
    imported = imports_of(source)
    used = [f"{m}.{n}" for m, names in imported.items() for n in names if n.startswith("_")]
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            used.append(f"{node.value.id}.{node.attr}")
    return sorted(set(used))


def test_the_private_name_finder_sees_both_forms():
    assert private_uses("from . import models\nfrom .ablation import _x, y\nmodels._where(1)\nmodels.spec(2)\n") == [
        "ablation._x",
        "models._where",
    ]


@pytest.mark.parametrize("folder", ["lib/rmbias", "notebooks", "benchmarks", "scripts"])
def test_no_module_uses_another_modules_private_names(folder):
    offenders = {p.name: private_uses(p.read_text()) for p in sorted((ROOT / folder).glob("*.py"))}
    assert {name: used for name, used in offenders.items() if used} == {}


def test_ruff_finds_nothing_and_the_library_is_formatted():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed: `make env` installs it (the test extra)"
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run([ruff, *command], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, f"ruff {' '.join(command)}: " + result.stdout + result.stderr


def layer_map() -> dict[str, int]:
    """Each module's layer as ``rmbias/__init__.py``'s map gives it."""
    import re

    import rmbias

    layers, current = {}, None
    for line in rmbias.__doc__.splitlines():
        if heading := re.match(r"Layer (\d+), ", line):
            current = int(heading.group(1))
        elif current and (entry := re.match(r"    (\w+)\s{2,}\S", line)):
            layers[entry.group(1)] = current
    return layers


def test_the_package_map_names_every_module_once_by_layer():
    layers = layer_map()
    assert sorted(layers) == MODULES
    assert sorted(set(layers.values())) == [1, 2, 3, 4, 5]


def test_no_module_imports_from_a_layer_below_its_own():
    layers = layer_map()
    wrong = {
        m: sorted(d for d in imports_of((LIBRARY / f"{m}.py").read_text()) if layers[d] > layers[m]) for m in MODULES
    }
    assert {m: deps for m, deps in wrong.items() if deps} == {}
    # the check can fail: layer 1 holds modules that import nothing of rmbias
    assert all(not imports_of((LIBRARY / f"{m}.py").read_text()) for m, n in layers.items() if n == 1)
