"""The layout's rules, checked on the source: import directions, no cycles, small modules, words defined once."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from pipeline import vocab

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("parsers", "storage", "pipeline")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Project modules imported anywhere in the file (top level or inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n in MODULES}


IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("parsers", "storage"),
        ("parsers", "pipeline"),
        ("storage", "pipeline"),
        ("pipeline.domain", "pipeline.inbound"),
        ("pipeline.domain", "pipeline.outputs"),
        ("pipeline.domain", "pipeline.outbound"),
        ("pipeline.domain", "pipeline.clerk"),
        ("pipeline.domain", "pipeline.context"),
        ("pipeline.inbound", "pipeline.outbound"),
        ("pipeline.inbound", "pipeline.clerk"),
        ("pipeline.outputs", "pipeline.outbound"),
        ("pipeline.outputs", "pipeline.clerk"),
    ],
)
def test_import_direction(importer: str, forbidden: str) -> None:
    """GIVEN the layout's arrows WHEN a package imports one it must not THEN the offending modules are named."""
    offenders = sorted(
        f"{name} -> {target}"
        for name, targets in IMPORTS.items()
        if _under(name, importer)
        for target in targets
        if _under(target, forbidden)
    )
    assert offenders == []


# The storage modules the pure domain may take: its words and its rows, which do no I/O.
PURE_STORAGE = ("storage.vocab", "storage.rows")


def test_domain_takes_only_pure_storage_modules() -> None:
    """GIVEN domain/ is pure rules WHEN it imports from storage THEN only the row and vocabulary modules."""
    offenders = sorted(
        f"{name} -> {target}"
        for name, targets in IMPORTS.items()
        if _under(name, "pipeline.domain")
        for target in targets
        if _under(target, "storage") and target != "storage" and not any(_under(target, ok) for ok in PURE_STORAGE)
    )
    assert offenders == []


@pytest.mark.parametrize("module", PURE_STORAGE)
def test_pure_storage_modules_import_only_the_standard_library(module: str) -> None:
    """GIVEN a storage module the domain may take WHEN it imports anything but the standard library THEN it fails."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}  # fmt: skip
    assert sorted(imported - set(sys.stdlib_module_names) - {"__future__"}) == []


def test_nothing_imports_the_cli() -> None:
    """GIVEN the CLI is the outermost shell THEN no module outside it imports it (the entry point aside)."""
    offenders = sorted(
        f"{name} -> {target}"
        for name, targets in IMPORTS.items()
        if not _under(name, "pipeline.cli") and name != "pipeline.__main__"
        for target in targets
        if _under(target, "pipeline.cli")
    )
    assert offenders == []


def test_no_import_cycles() -> None:
    """GIVEN every project import WHEN followed module to module THEN no path comes back to where it started."""

    def owner(target: str) -> str:  # "pipeline.vocab.Kind" is a name in module pipeline.vocab
        return target if target in MODULES else target.rpartition(".")[0]

    graph = {name: {owner(t) for t in targets} - {name} for name, targets in IMPORTS.items()}
    # A package's __init__ importing its own submodules (the CLI registering its commands) is not a cycle.
    graph = {name: {t for t in targets if not _under(t, name)} for name, targets in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_modules_stay_small() -> None:
    """GIVEN modules with one job THEN none is over 500 lines."""
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


# "report" and "exempt" are left out: one is an ordinary English word in names and texts, the other
# also the name of a config key ([campaign] exempt).
WORDS = sorted({m.value for enum in (vocab.Kind, vocab.Status, vocab.MessageKind) for m in enum} - {"report", "exempt"})


@pytest.mark.parametrize("word", WORDS)
def test_vocabulary_words_are_written_only_in_their_enum(word: str) -> None:
    """GIVEN the domain's words defined once WHEN the code outside the vocabulary spells one out as a string
    THEN the module and line are named."""
    allowed = {"storage.vocab", "pipeline.vocab"}
    offenders = []
    for name, path in MODULES.items():
        if name in allowed or _under(name, "pipeline.demo"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value == word:
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
