"""What reproducing declared artefacts (the paper's tables and figures, or a plugin's) runs: their grids.

The command is `python -m benchmark.reproduce TARGET [run flags]` (benchmark/cli/reproduce.py; `./reproduce.sh
TARGET [flags]` calls it). Each artefact's grids come from its declaration
(benchmark/artefacts.py) as selections, run one after the other (benchmark/execute.py); flags such as
--profile, --results-dir, --data-root, --seeds, --launcher, --workers, --device and --plugins go to every
grid; the selection (methods, datasets, domains, attacks, eps, model) is the artefact's. Every table shares
the same evaluation settings (PGD-10 and AA at the profile's table eps), so later targets reuse earlier
trainings and evaluations.
"""

from __future__ import annotations

from benchmark.artefacts import ARTEFACTS
from benchmark.config import Profile
from benchmark.grid import build_jobs, make_plan
from benchmark.selection import Selection


def grids_of(targets: list[str], profile: Profile) -> list[Selection]:
    """The selections these artefacts need under `profile`, each once, in order."""
    found: list[Selection] = []
    for selection in (s for name in targets for s in ARTEFACTS.get(name).selections(profile)):
        if selection not in found:
            found.append(selection)
    return found


def has_pending(selection: Selection, results_dir: str) -> bool:
    """Whether a grid has jobs not done: after a later grid retrained one of its models (a checkpoint missing, as
    in a committed store) into other weights, its evaluations of the old weights are redone."""
    return bool(make_plan(build_jobs(selection), results_dir).pending)


def run_flags(selection: Selection, profile: Profile) -> str:
    """The `benchmark.run` flags that select the same grid (printed before it runs, to run it alone)."""
    flags = [f"--methods {','.join(selection.methods)}", f"--datasets {','.join(selection.datasets)}",
             f"--domains {selection.domains}", f"--attacks {','.join(selection.attacks) or 'none'}",
             f"--eps {','.join(f'{e:g}' for e in selection.eps)}"]
    if selection.profile.setting is not None:
        flags.append(f"--setting {selection.profile.setting}")
    elif selection.profile.model != profile.model:
        flags.append(f"--model {selection.profile.model}")
    return " ".join(flags)
