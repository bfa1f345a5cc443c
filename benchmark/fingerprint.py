"""Fingerprints of the code that produced a record: a record made by other code is never taken as current.

A job's fingerprint names its root modules (for training: the method's, the dataset's and the model's
modules, benchmark/train.py and benchmark/numerics.py; for evaluation: benchmark/evaluate.py, the
attacks' modules, the dataset's and the model's) and hashes the source of every package module they
import at module level, transitively, with comments, docstrings and blank lines removed. So a change
of a comment or docstring, or of a module no root reaches, invalidates nothing; a change to the code
of any module a root reaches invalidates the records of every job with that root. Plugins are not
package modules: their content digest is part of the job key instead (benchmark/plugins.py).

Checking a record recomputes the digest of its recorded roots from the current sources (no import,
no torch), so renaming or removing a module, or adding an import to one, also makes records stale.
"""

from __future__ import annotations

import ast
import hashlib
import io
import tokenize
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

#: the folder holding the package's three top-level packages
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "methods", "attacks")


@cache
def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported(statements: Iterable[ast.stmt], module: str) -> frozenset[str]:
    """The package modules other than `module` that these statements import (`from package import module` names
    the module, `from module import name` the module)."""
    files = module_files()
    found: set[str] = set()
    for node in statements:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in files}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in files else node.module)
    return frozenset(name for name in found if name in files and name != module)


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(module_files()[module].read_text(encoding="utf-8"))


@cache
def imports(module: str) -> frozenset[str]:
    """The package modules `module` imports at module level (outside `if TYPE_CHECKING:`): what importing it
    runs, so what its fingerprint covers."""
    return _imported((node for node in _tree(module).body if not _is_type_checking(node)), module)


@cache
def every_import(module: str) -> frozenset[str]:
    """The package modules any import statement of `module` names: at module level, inside functions and under
    `if TYPE_CHECKING:` (the package's structure, which tests/test_architecture.py keeps free of circles)."""
    return _imported((node for node in ast.walk(_tree(module)) if isinstance(node, ast.stmt)), module)


def import_graph() -> dict[str, frozenset[str]]:
    """Module -> the package modules it imports at module level."""
    return {module: imports(module) for module in module_files()}


def full_import_graph() -> dict[str, frozenset[str]]:
    """Module -> the package modules any of its import statements names (`every_import`)."""
    return {module: every_import(module) for module in module_files()}


def closure(roots: Iterable[str]) -> list[str]:
    """The roots that are package modules and every package module they import, transitively, sorted."""
    files = module_files()
    seen: set[str] = set()
    todo = [r for r in roots if r in files]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imports(module) - seen)
    return sorted(seen)


@cache
def normalized_source(module: str) -> str:
    """A package module's `normalize`d source."""
    return normalize(module_files()[module].read_text(encoding="utf-8"))


def normalize(text: str) -> str:
    """Python source as its tokens without comments, docstrings and layout-only tokens: what the code does."""
    docstrings = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                docstrings.add((first.lineno, first.col_offset))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING}
    tokens = [tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline)
              if tok.type not in skip and not (tok.type == tokenize.STRING and tok.start in docstrings)]
    return " ".join(tokens)


def fingerprint(roots: Iterable[str]) -> dict[str, Any]:
    """{"roots": ..., "digest": ...}: what a record stores of the code that produced it (roots outside the
    package, a plugin's module, are left out: the plugin's content digest is in the job key)."""
    roots = sorted(set(roots) & set(module_files()))
    digest = hashlib.sha256()
    for module in closure(roots):
        digest.update(f"{module}\n{normalized_source(module)}\n".encode())
    return {"roots": roots, "digest": digest.hexdigest()[:16]}


def is_current(recorded: dict[str, Any] | None) -> bool:
    """Whether a recorded fingerprint matches the current code (a record without one never does)."""
    if not recorded or not recorded.get("roots"):
        return False
    if any(root not in module_files() for root in recorded["roots"]):
        return False
    return fingerprint(recorded["roots"])["digest"] == recorded.get("digest")


def record_is_current(record: dict[str, Any]) -> bool:
    """Whether a train or eval record was made by the current code (an eval record: its training's code too)."""
    recorded = record.get("fingerprint") or {}
    if record.get("kind") == "train":
        return is_current(recorded)
    return is_current(recorded.get("train")) and is_current(recorded.get("eval"))
