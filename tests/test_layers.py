"""Imports flow one way: the ops never import the tuner, the benchmarks or the command line.

The imports are read from the source with ``ast`` (module level and inside functions, so a
lazy import counts too).
"""

import ast
from pathlib import Path

import clnn

ROOT = Path(clnn.__file__).parent
TOP = ("clnn.tune", "clnn.bench", "clnn.cli")  # the layer above the ops and nn


def _modules() -> dict:
    """{module name: (path, package parts)} of every module of clnn."""
    mods = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            pkg = parts
        else:
            pkg = parts[:-1]
        mods[".".join(parts)] = (p, pkg)
    return mods


def _imports(path: Path, pkg: list) -> set:
    """The absolute names of everything ``path`` imports (``from . import x`` gives both the
    package and ``package.x``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _under(name: str, prefixes: tuple) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_only_the_top_layer_imports_tune_bench_or_cli():
    bad = []
    for mod, (path, pkg) in _modules().items():
        if _under(mod, TOP) or mod == "clnn.__main__":  # `python -m clnn` runs the CLI
            continue
        bad += [f"{mod} imports {t}" for t in sorted(_imports(path, pkg)) if _under(t, TOP)]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports():
    """The walk above finds relative, nested and lazy imports (so its silence means
    something): the tuner's modules import their ops."""
    mods = _modules()
    path, pkg = mods["clnn.tune.gemv"]
    assert {"clnn.gemv", "clnn.gemv_tunables", "clnn.bench.timing"} <= _imports(path, pkg)
    path, pkg = mods["clnn.tune"]
    assert "clnn.runtime" in _imports(path, pkg)  # imported inside run()
