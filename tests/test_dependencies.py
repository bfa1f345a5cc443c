"""Every third-party package the code imports directly is declared in setup.cfg, not only pulled in by another."""

from __future__ import annotations

import ast
import configparser
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"benchmark", "methods", "attacks", "tests"}
#: the optional launchers' extras (benchmark/launchers.py imports them where a launcher is built)
LAUNCHER_EXTRAS = ("ray", "slurm")


def imported_modules(folder: str) -> set[str]:
    """The top-level names of every module imported anywhere (also inside functions) by the files under `folder`."""
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - FIRST_PARTY - set(sys.stdlib_module_names)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*sections: str) -> set[str]:
    """Distribution names in setup.cfg's install_requires and the named extras."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = config["options"]["install_requires"].split("\n")
    for extra in sections:
        lines += config["options.extras_require"][extra].split("\n")
    return {normalized(re.match(r"[A-Za-z0-9_.-]+", line.strip()).group()) for line in lines if line.strip()}


def undeclared(modules: set[str], allowed: set[str]) -> dict[str, list[str]]:
    """Modules whose distribution is not among `allowed` (an uninstalled module names no distribution)."""
    distributions = metadata.packages_distributions()
    return {m: distributions.get(m, []) for m in sorted(modules)
            if not {normalized(d) for d in distributions.get(m, [])} & allowed}


def test_the_package_declares_what_it_imports():
    modules = set().union(*(imported_modules(folder) for folder in ("benchmark", "methods", "attacks")))
    assert {"scipy", "sklearn", "torch"} <= modules
    assert undeclared(modules, declared(*LAUNCHER_EXTRAS)) == {}


def test_the_tests_and_speed_scripts_declare_theirs_in_the_test_extra():
    modules = imported_modules("tests") | imported_modules("perf")
    assert {"captum", "torchattacks", "pytest"} <= modules
    assert undeclared(modules, declared("test", *LAUNCHER_EXTRAS)) == {}


def test_an_undeclared_import_is_found():
    assert undeclared({"scipy", "numpy"}, declared() - {"scipy"}) == {"scipy": ["scipy"]}
