"""The house's layering, read from the source (`ast`), so a stray import fails a test, not a review.

- formatters see the domain only (`scangate.model`) plus the pure text helpers;
- the poller does not know the providers (`ScanProgress` is a domain type);
- the modules of `src/scangate` import one another without a cycle.

Only imports that run at import time form the graph: those inside a function (deliberately lazy)
or under `if TYPE_CHECKING:` cannot make a cycle at import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from conftest import ROOT

SRC = ROOT / "src"
PACKAGE = SRC / "scangate"

FORMATS_MAY_IMPORT = (
    "scangate.model",
    "scangate.text",
    "scangate.fingerprint",
    "scangate.errors",
    "scangate.secrets",
    "scangate.formats",
)
"""What `scangate.formats` may import, besides `from scangate import __version__`: the domain and
the leaf helpers (text, fingerprints, errors, the one list of secret shapes)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".")
    if not _modules()[module].name == "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(module: str, *, eager_only: bool) -> Iterator[tuple[str, int]]:
    """(imported scangate module, line) for each import in `module`.

    `from a import b` names module `a.b` when that is a module, else `a`.
    """
    tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))

    def visit(nodes: list[ast.AST]) -> Iterator[tuple[str, int]]:
        for node in nodes:
            if isinstance(node, ast.Import):
                yield from ((alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, node)
                for alias in node.names:
                    name = f"{source}.{alias.name}"
                    yield (name if name in _modules() else source), node.lineno
            elif isinstance(node, ast.If) and eager_only and _is_type_checking(node):
                yield from visit(node.orelse)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and eager_only:
                continue
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        yield from visit(children)

    body: list[ast.AST] = list(tree.body)
    yield from ((name, line) for name, line in visit(body) if name.split(".")[0] == "scangate")


def test_the_package_is_found() -> None:
    assert "scangate.formats.sarif" in _modules()
    assert "scangate.model" in _modules()


@pytest.mark.parametrize(
    "module", sorted(m for m in _modules() if m.startswith("scangate.formats"))
)
def test_formatters_import_only_the_domain(module: str) -> None:
    stray = [
        f"{module}:{line} imports {name}"
        for name, line in _imports(module, eager_only=False)
        if name != "scangate"  # `from scangate import __version__`
        and not any(
            name == allowed or name.startswith(allowed + ".") for allowed in FORMATS_MAY_IMPORT
        )
    ]
    assert stray == []


def test_polling_does_not_import_the_providers() -> None:
    imported = [name for name, _ in _imports("scangate.polling", eager_only=False)]
    assert imported
    assert not [name for name in imported if name.startswith("scangate.providers")]


def _cycle() -> list[str] | None:
    """One import cycle among the modules, as the list of modules around it, or None."""
    graph = {
        module: sorted(
            {name for name, _ in _imports(module, eager_only=True) if name in _modules()}
        )
        for module in _modules()
    }
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str] | None:
        path.append(module)
        on_path.add(module)
        for imported in graph[module]:
            if imported in on_path:
                return path[path.index(imported) :] + [imported]
            if imported not in done and (found := visit(imported)):
                return found
        on_path.discard(path.pop())
        done.add(module)
        return None

    for module in graph:
        if module not in done and (found := visit(module)):
            return found
    return None


def test_no_import_cycles() -> None:
    assert _cycle() is None
