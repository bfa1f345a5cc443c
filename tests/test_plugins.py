"""User plugins: a method, an attack, a metric and a table from files in a temp folder, run through the grid (worker
processes included) and the renderer without touching the package; and every way a plugin can be bad."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import run
from benchmark.registry import UserError
from methods import METHODS
from tests.conftest import E2E_ARGS

ROOT = Path(__file__).resolve().parents[1]

ATTACK_PLUGIN = '''
"""Random signed noise of size eps: a gradient-free baseline attack."""
import torch

from attacks import register_attack


@register_attack("signnoise", display="sign noise", cost=0.05)
def signnoise(model, x, y, eps, *, generator=None):
    signs = torch.randint(0, 2, x.shape, generator=generator, device=x.device).mul_(2).sub_(1)
    return (x + eps * signs).clamp(0, 1)
'''

TABLE_PLUGIN = '''
"""table9: clean and attacked accuracy of two methods, as CSV + Markdown."""
from benchmark.artefacts import ARTEFACTS, Artefact, Grid, label


def render(results, artefact, request):
    obs = results.table_obs
    obs = obs[obs["method"].isin(artefact.methods) & (obs["test_domain"] == obs["train_domain"])]
    obs = obs[obs["metric"].isin(["cAcc", "top2"]) | ((obs["metric"] == "aAcc") & (obs["eps"] == "0.02"))]
    if obs.empty:
        return []
    frame = obs.assign(column=obs["metric"] + " " + obs["attack"]).pivot_table(
        index="method", columns="column", values="value")
    frame.index = [label(results.catalog, m) for m in frame.index]
    out = request.out / "tables"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "table9.csv")
    (out / "table9.md").write_text(frame.to_string())
    return [out / "table9.csv", out / "table9.md"]


ARTEFACTS.add("table9", Artefact("table9", "table", ("erm", "erm-ls"), render,
                                 grids=(Grid(domains="0", first_dataset_only=True, attacks="pgd,signnoise"),)))
'''


def readme_plugin(registers: str = "register_method(") -> str:
    """A complete example plugin README shows (its first ```python block that calls `registers`)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    example = next(b for b in blocks if registers in b)
    assert len(example.strip().splitlines()) <= 20
    return example


@pytest.fixture
def plugins(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "plugins"
    folder.mkdir()
    files = {"method": folder / "my_method.py", "attack": folder / "signnoise.py", "metric": folder / "top2.py",
             "table": folder / "table9.py"}
    files["method"].write_text(readme_plugin())
    files["metric"].write_text(readme_plugin("register_metric("))
    files["attack"].write_text(ATTACK_PLUGIN)
    files["table"].write_text(TABLE_PLUGIN)
    return files


def test_plugin_method_attack_metric_and_table_run_through_grid_workers_and_renderer(tmp_path, plugins):
    package_files = {p: p.stat().st_mtime_ns for pkg in ("benchmark", "methods", "attacks") for p in
                     (ROOT / pkg).rglob("*.py")}
    results = tmp_path / "results"
    files = ",".join(str(p) for p in plugins.values())
    # the tests' e2e profile (tests/e2e_profile.py, itself a plugin file): the quick profile evaluated on fewer images
    argv = ["table9", "--plugins", f"{files},{E2E_ARGS[1]}", "--profile", "e2e", "--results-dir", str(results),
            "--steps", "3", "--seeds", "0", "--launcher", "processes", "--workers", "2"]
    out = subprocess.run([sys.executable, "-m", "benchmark.reproduce", *argv], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "--methods erm,erm-ls" in out.stdout and "--attacks pgd,signnoise" in out.stdout
    table = (results / "e2e" / "tables" / "table9.csv").read_text()
    assert "ERM + label smoothing" in table and "aAcc signnoise" in table and "aAcc pgd" in table
    assert "top2" in table  # the plugin metric, computed in the workers, in the plugin's table
    # the plugin's content is part of the keys of the jobs that use it, and of no other job
    method_digest = __import__("hashlib").sha256(plugins["method"].read_bytes()).hexdigest()
    trains = [json.loads(p.read_text()) for p in (results / "e2e" / "runs" / "train").glob("*.json")]
    by_method = {r["method"]: r["config"] for r in trains}
    assert by_method["erm-ls"]["plugins"] == {"method:erm-ls": method_digest}
    assert by_method["erm-ls"]["hparams"] == {"smoothing": 0.1}  # its default: it scales only the quick profile
    quick = subprocess.run([sys.executable, "-c", "from benchmark.plugins import load_plugins; from methods import "
                            "method_hparams; from benchmark.config import PROFILES; load_plugins("
                            f"{str(plugins['method'])!r}); print(method_hparams('erm-ls', PROFILES.get('quick')))"],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert quick.stdout.strip() == "{'smoothing': 0.05}", quick.stderr  # the quick profile's scaling of the plugin
    assert "plugins" not in by_method["erm"]
    evals = [json.loads(p.read_text()) for p in (results / "e2e" / "runs" / "eval").glob("*.json")]
    metric_digest = __import__("hashlib").sha256(plugins["metric"].read_bytes()).hexdigest()
    assert all(r["config"]["plugins"]["metric:top2"] == metric_digest for r in evals)  # every evaluation computes it
    assert all(set(r["config"]["plugins"]) == {"attack:signnoise", "metric:top2"} for r in evals) and len(evals) == 2
    assert all(r["metrics"]["cAcc"] <= r["metrics"]["top2"] <= 100 for r in evals)  # top-2 contains top-1
    # the renderer alone, with the plugins, draws the plugin's table; the package is untouched
    code = subprocess.run([sys.executable, "-m", "benchmark.render", "--plugins", f"{files},{E2E_ARGS[1]}", "--profile",
                           "e2e", "--results-dir", str(results), "--only", "table9,table1,table5", "--methods",
                           "erm,erm-ls"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert code.returncode == 0, code.stderr
    assert "ERM + label smoothing" in (results / "e2e" / "tables" / "table1.md").read_text()
    scorecard = (results / "e2e" / "tables" / "table5.md").read_text()
    assert "| top-2 cAcc | flags |" in scorecard  # Table V's columns end with the plugin metric's, before the flags
    listed = subprocess.run([sys.executable, "-m", "benchmark.run", "--list", "--plugins", str(plugins["metric"])],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    assert "top2 (top-2 cAcc; 0..100, higher is better; at top2, cost 0.1x PGD-10; in table5)" in listed.stdout
    assert {p: p.stat().st_mtime_ns for p in package_files} == package_files


BAD_PLUGINS = {
    "import_fails": ("import no_such_module_here\n", "ModuleNotFoundError: No module named 'no_such_module_here'"),
    "syntax": ("def broken(:\n", "SyntaxError"),
    "existing_name": ("from methods import Method, register_method\n\n"
                      "@register_method('erm', display='mine')\nclass Mine(Method):\n"
                      "    def loss(self, batch, step):\n        return 0, {}\n", "method 'erm' is registered twice"),
    "not_a_method": ("from methods import register_method\n\n@register_method('mine', display='mine')\n"
                     "class Mine:\n    pass\n", "breaks the method contract"),
    "attack_contract": ("from attacks import register_attack\n\n@register_attack('mine', display='m', cost=1)\n"
                        "def mine(model, images, labels):\n    return images\n", "breaks the attack contract"),
    "metric_contract": ("from benchmark.metrics import register_metric\n\n"
                        "register_metric('mine', display='m', range=(0, 1), higher_is_better=True)\n",
                        "metric 'mine' breaks the metric contract"),
    "attack_stages_contract": ("from attacks import register_attack\n\n"
                               "@register_attack('mine', display='m', cost=1, stages=('a', 'b'))\n"
                               "def mine(model, x, y, eps, *, generator=None):\n    return x\n",
                               "breaks the attack contract"),
    "registers_nothing": ("X = 1\n", "registers nothing"),
    "half_registered": ("from methods import Method, register_method\n\n@register_method('half', display='h')\n"
                        "class Half(Method):\n    def loss(self, batch, step):\n        return 0, {}\n\n"
                        "raise RuntimeError('late failure')\n", "RuntimeError: late failure"),
}


@pytest.mark.parametrize("name", list(BAD_PLUGINS))
def test_bad_plugin_is_one_error_line_naming_the_file_and_leaves_nothing(tmp_path, capsys, name):
    source, expected = BAD_PLUGINS[name]
    plugin = tmp_path / f"{name}.py"
    plugin.write_text(source)
    before = METHODS.names()
    code = run.main(["--plugins", str(plugin), "--results-dir", str(tmp_path / "results"), "--steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: plugin {plugin}") and expected in err[0], err[0]
    assert METHODS.names() == before  # nothing of the plugin stays registered
    assert not (tmp_path / "results").exists()


def test_missing_plugin_file_is_a_user_error(tmp_path):
    from benchmark.plugins import load_plugins

    with pytest.raises(UserError, match="no such Python file"):
        load_plugins(str(tmp_path / "nope.py"))
