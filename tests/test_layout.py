"""The layout's promises, checked on the source: no import cycle in bot/, storage/ or wording/;
storage imports nothing of bot/; SQL is built in storage/ only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "storage", "wording")
SQL_BUILDERS = {"select", "insert", "update", "delete", "func", "text", "and_", "or_",
                "exists", "case"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # alembic's scripts are loaded by alembic, never imported
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _target(module: str, name: str) -> str:
    """`from module import name`: the submodule when name is one, else the module."""
    return f"{module}.{name}" if f"{module}.{name}" in MODULES else module


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {_target(node.module, alias.name) for alias in node.names}
    return {name for name in found if name in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done
    path: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                return [*path[path.index(imported):], imported]
            if imported not in state and (found := walk(imported)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := walk(module)):
            return found
    return None


def test_no_import_cycle() -> None:
    graph = {module: _imports(path, top_level_only=True) - {module}
             for module, path in MODULES.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_storage_and_wording_import_nothing_of_bot() -> None:
    wrong = {module: sorted(name for name in _imports(path, top_level_only=False)
                            if name == "bot" or name.startswith("bot."))
             for module, path in MODULES.items() if not module.startswith("bot")}
    assert {module: names for module, names in wrong.items() if names} == {}
    wording = _imports(MODULES["wording"], top_level_only=False)
    assert wording == set(), "wording is the bottom layer: it imports neither bot nor storage"


def test_sql_is_built_in_storage_only() -> None:
    built = {}
    for module, path in MODULES.items():
        if module.startswith("storage"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                names = {alias.name for alias in node.names} & SQL_BUILDERS
                if names:
                    built[path.relative_to(ROOT).as_posix()] = sorted(names)
    assert built == {}, "move these queries into storage/"
