"""The package's structure: rendering without torch, no import circle (of modules, or of a folder and the modules
outside it), no module over MAX_LINES, one declaration per concept, and every command-line entry point in
benchmark/cli/ (the documented `python -m benchmark.X` paths outside it are pure aliases)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from attacks import ATTACKS
from benchmark.artefacts import ARTEFACTS, artefact_order
from benchmark.display_catalog import Catalog
from benchmark.fingerprint import closure, full_import_graph, import_graph, module_files
from benchmark.tables import MAIN_METHODS
from methods import METHODS

ROOT = Path(__file__).resolve().parents[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_among_the_package_modules():
    graph = import_graph()  # module-level imports outside `if TYPE_CHECKING:` (the fingerprints' graph)
    assert {"benchmark.rendering", "benchmark.tables", "methods.egat", "attacks.sca.attack"} <= set(graph)
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_even_through_function_level_and_type_only_imports():
    """Every import statement counts (a function-level import is a dependency all the same: it hid the models <->
    pretraining circle from the fingerprints)."""
    graph = full_import_graph()
    assert "benchmark.pretraining" in graph["benchmark.jobs"]
    assert "benchmark.pretraining" not in graph["benchmark.models"]
    assert cycles(graph) == []


def test_a_training_fingerprint_reaches_its_pretraining_through_imports_alone():
    """The root naming where a model's starting weights come from (`starting_backbone`, what `new_model` calls) reaches
    the pretraining loop and its corpus; the model's module reaches neither."""
    from benchmark.config import PROFILES
    from benchmark.jobs import TrainJob

    roots = TrainJob(PROFILES.get("quick"), "shapes", "any", "erm", 0).fingerprint()["roots"]
    assert "benchmark.pretraining" in roots
    assert {"benchmark.pretraining", "benchmark.pretrain_corpus", "benchmark.models"} <= set(closure(roots))
    assert "benchmark.pretraining" not in closure(["benchmark.models"])


def test_published_frames_are_those_of_the_tables_named():
    """reference_frames reads the tables its caller names, not whichever tables were declared before it ran."""
    from benchmark.reference import reference_frames

    frames = reference_frames([ARTEFACTS.get("table4"), ARTEFACTS.get("table5")])
    assert list(frames) == ["table4"] and {"erm", "egat"} <= set(frames["table4"]["method"])


#: imports from inside a folder back to a module outside it that imports the folder (at most 3), with their reason
FOLDER_BACK_IMPORTS: dict[tuple[str, str], str] = {}


def folders() -> list[str]:
    """Every package folder but the harness `benchmark` itself (which holds the others): benchmark.data,
    benchmark.reference, methods, attacks, attacks.sca and any new one."""
    return sorted(name for name, path in module_files().items() if path.name == "__init__.py" and name != "benchmark")


def back_imports(graph: dict[str, set[str]], folder: str) -> set[tuple[str, str]]:
    """The imports (inside, outside) from a module of `folder` to a module outside it that reaches the folder
    again through modules outside it: each closes a circle between the folder, taken as one unit, and the rest."""
    inside = {m for m in graph if m == folder or m.startswith(folder + ".")}

    def returns(start: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            module = todo.pop()
            if graph[module] & inside:
                return True
            todo.extend(graph[module] - inside - seen)
            seen |= graph[module] - inside
        return False

    return {(a, b) for a in sorted(inside) for b in sorted(graph[a] - inside) if returns(b)}


def test_folder_circle_finder_finds_an_import_back_up():
    graph = {"pkg": {"pkg.a"}, "pkg.a": {"lib"}, "pkg.b": {"tool"}, "lib": set(), "tool": {"helper"},
             "helper": {"pkg"}}
    assert back_imports(graph, "pkg") == {("pkg.b", "tool")}
    assert back_imports({**graph, "helper": set()}, "pkg") == set()


def test_no_folder_is_in_an_import_circle_with_the_modules_outside_it():
    graph = full_import_graph()
    assert {"benchmark.data", "benchmark.reference", "methods", "attacks", "attacks.sca"} <= set(folders())
    assert len(FOLDER_BACK_IMPORTS) <= 3
    found = {edge: folder for folder in folders() for edge in back_imports(graph, folder)}
    assert set(found) <= set(FOLDER_BACK_IMPORTS), {e: f for e, f in found.items() if e not in FOLDER_BACK_IMPORTS}


#: the most lines a module of the package may have (as `wc -l` counts them)
MAX_LINES = 400


def test_no_module_is_over_max_lines():
    sizes = {module: path.read_bytes().count(b"\n") for module, path in module_files().items()}
    assert {module: lines for module, lines in sizes.items() if lines > MAX_LINES} == {}


def test_rendering_imports_no_torch_training_attacks_or_ddpm(tmp_path):
    """Importing the renderer, and rendering every table, Figs. 2, 3 and 5 and the claims from records, loads no torch
    (Fig. 4 draws the test images, which come from the dataset code)."""
    import shutil

    from tests.report_helpers import RECORDS

    shutil.copytree(RECORDS, tmp_path, dirs_exist_ok=True)
    code = ("import sys, benchmark.cli.render as r\n"
            "assert 'torch' not in sys.modules\n"
            f"code = r.main(['--results-dir', {str(tmp_path)!r}, '--only', 'table1,table2,table3,table4,table5,"
            "fig2,fig3,fig5,claims'])\n"
            "heavy = [m for m in ('torch', 'methods', 'attacks', 'benchmark.train', 'benchmark.ddpm_pictures') "
            "if m in sys.modules]\n"
            "print(code, heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "0 []"
    assert (tmp_path / "quick" / "tables" / "table1.md").is_file() and (tmp_path / "quick" / "claims.md").is_file()


def test_shipped_catalog_matches_the_declarations():
    """benchmark/catalog.json (what rendering reads) is what the registries declare: regenerate it with
    `python -m benchmark.cli.catalog` after changing a display name or adding a built-in."""
    assert Catalog.builtin().as_json() == Catalog.from_registries().as_json()
    shipped = json.loads((ROOT / "benchmark" / "catalog.json").read_text())
    assert list(shipped["methods"]) == METHODS.names() and list(shipped["attacks"]) == ATTACKS.names()


def test_artefacts_declare_their_grids_once():
    import benchmark.rendering  # noqa: F401  (imports every module that declares an artefact)
    from benchmark.config import PROFILES

    assert artefact_order() == ["table1", "table2", "table3", "table4", "table5", "table6", "fig2", "fig3", "fig4",
                                "fig5", "fig6", "claims"]
    quick = PROFILES.get("quick")
    fig3 = ARTEFACTS.get("fig3").selections(quick)
    assert fig3[0].methods == (*MAIN_METHODS, "at") and fig3[0].profile == quick
    assert fig3[1].profile.model == "cnn_small" and fig3[1].methods == ("egat",)
    fig2 = ARTEFACTS.get("fig2").selections(quick)[0]
    assert fig2.eps == (0, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1)
    assert fig2.attacks == ("fgsm", "mifgsm", "pgd", "sca")
    assert ARTEFACTS.get("claims").selections(quick) == []
    table_runs = [selection for name in ("table1", "table4", "table5", "fig3", "fig5")
                  for selection in ARTEFACTS.get(name).selections(quick)[:1]]
    assert {selection.attacks for selection in table_runs} == {("pgd", "aa")}  # one eval job per model


#: the documented `python -m benchmark.X` commands whose module is an alias of `benchmark.cli.X`
ALIASES = ("run", "sweep", "render", "reproduce", "verify", "cards", "catalog", "diffusion", "pretrain")


def cli_modules() -> list[str]:
    """Every command module of benchmark/cli/ (the folder's __init__ aside)."""
    return sorted(name for name in module_files() if name.startswith("benchmark.cli."))


def defines_main_guard(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'" for node in tree.body)


def is_pure_alias(tree: ast.Module) -> str | None:
    """The `benchmark.cli` module that `tree` is an alias of when it holds nothing but a docstring, `from
    benchmark.cli.X import main` and `if __name__ == "__main__": raise SystemExit(main())`; else None."""
    if len(tree.body) != 3:
        return None
    docstring, imported, guard = tree.body
    if not (isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
            and isinstance(docstring.value.value, str)):
        return None
    if not (isinstance(imported, ast.ImportFrom) and imported.level == 0 and (imported.module or "").startswith(
            "benchmark.cli.") and [(a.name, a.asname) for a in imported.names] == [("main", None)]):
        return None
    expected_guard = 'if __name__ == \'__main__\':\n    raise SystemExit(main())'
    return imported.module if defines_main_guard(tree) and ast.unparse(guard) == expected_guard else None


def test_the_alias_check_tells_a_pure_alias_from_a_module_with_more():
    alias = '"""Alias of `python -m benchmark.cli.run`."""\nfrom benchmark.cli.run import main\n\n' \
            'if __name__ == "__main__":\n    raise SystemExit(main())\n'
    assert is_pure_alias(ast.parse(alias)) == "benchmark.cli.run"
    assert is_pure_alias(ast.parse(alias.replace("import main", "import main, parser"))) is None
    assert is_pure_alias(ast.parse(alias.replace("raise SystemExit(main())", "main()"))) is None
    assert is_pure_alias(ast.parse(alias + "X = 1\n")) is None
    assert is_pure_alias(ast.parse(alias.replace("benchmark.cli.run", "benchmark.execute"))) is None


def test_every_command_module_defines_main():
    assert {f"benchmark.cli.{name}" for name in (*ALIASES, "preview")} <= set(
        cli_modules())
    for name in cli_modules():
        tree = ast.parse(module_files()[name].read_text())
        mains = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"]
        assert len(mains) == 1, f"{name} defines no main(argv)"
        assert [a.arg for a in mains[0].args.args] == ["argv"], name
        assert defines_main_guard(tree), f"{name}: `python -m {name}` runs nothing without the __main__ guard"


def test_a_command_module_runs_as_a_script():
    out = subprocess.run([sys.executable, "-m", "benchmark.cli.render", "--help"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith("usage: python -m benchmark.render"), out.stderr


def test_only_pure_aliases_have_a_main_guard_outside_the_cli_folder():
    """Outside benchmark/cli/, a `__main__` block is only that of a documented command's pure alias module, of the
    cli module of the same name."""
    guarded = {name: is_pure_alias(tree) for name, path in module_files().items()
               if not name.startswith("benchmark.cli") and defines_main_guard(tree := ast.parse(path.read_text()))}
    assert guarded == {f"benchmark.{name}": f"benchmark.cli.{name}" for name in ALIASES}


def test_no_library_module_imports_the_cli_folder():
    """Only the aliases import benchmark/cli/ (every import statement counts, function-level ones too); the cli
    modules import the library, never the other way round, so the folder is in no circle with the rest."""
    graph = full_import_graph()
    importers = {name for name, imported in graph.items() if not name.startswith("benchmark.cli")
                 and any(m == "benchmark.cli" or m.startswith("benchmark.cli.") for m in imported)}
    assert importers == {f"benchmark.{name}" for name in ALIASES}
    assert "benchmark.cli" in folders() and back_imports(graph, "benchmark.cli") == set()


def test_no_job_fingerprint_reaches_a_command_module():
    """Moving a command's code never makes records stale: no train or eval fingerprint root reaches benchmark/cli/
    or an alias."""
    from benchmark.config import PROFILES
    from benchmark.jobs import EvalJob, TrainJob

    train = TrainJob(PROFILES.get("quick"), "shapes", "any", "egat", 0)
    roots = {*train.fingerprint()["roots"], *EvalJob(train, ("pgd", "aa", "sca"), (0.02,)).fingerprint()["roots"]}
    reached = set(closure(sorted(roots)))
    commands = {name for name in reached if name.startswith("benchmark.cli")} | (
        reached & {f"benchmark.{name}" for name in ALIASES})
    assert "benchmark.train" in reached and commands == set()
