"""Profiles (quick, paper): the budgets and settings shared by every job of a run.

`quick` runs everything on a 2-core CPU with the built-in benchmarks; `paper` is the paper's
Sec. V-A setting (ResNet-50, ImageNet weights, 224x224, Adam 1e-4, batch 32, 5000 steps, PGD-10 at
eps 0.02, dropout, best-validation checkpoint). Where quick differs it says so in `notes`, which
every table prints. Each method's hyperparameters, and how a profile scales them, are declared
beside the method (methods/base.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from benchmark.registry import Range, Registry, UserError


@dataclass(frozen=True)
class AttackSetting:
    """A profile's parameters for one attack in place of its declared (standard) defaults, their cost, and the
    test images it attacks."""

    params: dict[str, Any]
    #: cost relative to PGD-10 per image it attacks with these parameters (the grid's estimate), on a model that does
    #: not train on PGD, measured as stated in `why`
    cost: float
    why: str
    #: the first test images the attack runs on (every eps); None: the whole test split
    images: int | None = None
    #: the same on a model that trains on PGD (robust points cost an attack more); None: `cost`
    robust_cost: float | None = None
    #: the part of `cost` (first) and of `robust_cost` (second) that is the evaluation's convergence check of this
    #: attack (benchmark/evaluate.py convergence_check), as the check's seconds over the attack's own: the check runs
    #: once per evaluation, at the table eps, while the attack runs at every eps of the grid
    check_ratio: tuple[float, float] = (0.0, 0.0)

    def cost_on(self, *, robust: bool, check: bool = True) -> float:
        """The per-image cost on a model trained on PGD (`robust`) or not, with its convergence check (`check`: at the
        table eps) or without it (at any other eps)."""
        cost = self.robust_cost if robust and self.robust_cost is not None else self.cost
        return cost if check else cost / (1 + self.check_ratio[robust])

    def __post_init__(self) -> None:
        if self.images is not None and (isinstance(self.images, bool) or not isinstance(self.images, int)
                                        or self.images < 1):
            raise UserError(f"an attack setting's images must be an integer >= 1 (the first test images it attacks) "
                            f"or None (the whole test split), got {self.images!r}")


@dataclass(frozen=True)
class Profile:
    """Budgets and settings shared by every job of a run."""

    name: str
    datasets: tuple[str, ...]
    model: str
    pretrained: bool
    image_size: int | None  # None: the dataset's native size
    steps: int
    batch_size: int
    lr: float
    eval_every: int
    dropout: float
    eval_batch_size: int
    eps_grid: tuple[float, ...]
    table_eps: float
    attack_steps: int
    faithfulness_images: int
    notes: str
    light_models: tuple[str, ...]  # lighter backbones EGAT is also trained on for Fig. 3
    #: what every method that trains on PGD takes instead of its declared training PGD (methods/base.py)
    training_pgd: dict[str, Any] = field(default_factory=dict)
    #: the seeds a grid runs unless --seeds says otherwise (tables show mean ± SE and n over them)
    seeds: tuple[int, ...] = (0, 1, 2)
    #: loop settings the hyperparameter sweep draws for every method (benchmark/hyperparameter_search.py)
    loop_search: dict[str, Range] = field(default_factory=dict)
    #: attacks this profile runs with other parameters than their standard ones (the paper profile: none)
    attack_settings: dict[str, AttackSetting] = field(default_factory=dict)
    #: the gradient-masking probe's budget: PGD-10 here must leave an honest evaluation near 0% (benchmark/masking.py)
    large_eps: float = 0.1
    #: test images the probe's three PGD-10 runs (large eps, transfer, and the white-box one the transfer is compared
    #: with) attack: the first ones of the test split; None: all of them (the paper profile)
    probe_images: int | None = None
    #: images of each other domain that out-of-domain accuracy reads: the first ones of the whole domain; None: all of
    #: them (the quick and paper profiles; the tests' end-to-end profile reads fewer)
    ood_images: int | None = None
    #: the verdict study's setting this profile is (SETTINGS), None for the profile itself; `reference` is the
    #: profile it varies, whose job a job of the setting is wherever the setting does not change it (benchmark/jobs.py)
    setting: str | None = None
    reference: Profile | None = None

    def attack_params(self, attack: str) -> dict[str, Any]:
        """The parameters this profile passes to `attack` beyond (model, x, y, eps, generator)."""
        setting = self.attack_settings.get(attack)
        return dict(setting.params) if setting else {}

    def attack_images(self, attack: str) -> int | None:
        """The first test images this profile runs `attack` on (None: the whole test split)."""
        setting = self.attack_settings.get(attack)
        return setting.images if setting else None

    def train_settings(self) -> dict[str, Any]:
        """The settings that change what training produces (part of every train job's key)."""
        return {k: getattr(self, k) for k in TRAIN_SETTINGS}


#: Profile fields that decide what training produces; LOOP_SETTINGS of them may differ per method (a sweep's)
TRAIN_SETTINGS = ("model", "pretrained", "image_size", "steps", "batch_size", "lr", "eval_every", "dropout")
LOOP_SETTINGS = ("lr", "dropout")


PROFILES: Registry[Profile] = Registry("profile")

#: The paper's benchmarks, in the roles a profile's datasets play (first: VLCS-like, second: TerraIncognita-like)
PAPER_ROLES = ("VLCS", "TerraIncognita")
#: the paper profile's datasets by the names the paper gives them
PAPER_DATASET_NAMES = {"vlcs": "VLCS", "terra_incognita": "TerraIncognita"}

#: The quick profile's AT/EGAT training PGD is the paper's (methods/egat.py TRAINING_PGD: 10 steps of eps/4, eps
#: 0.02); no sweep searches it. Results v3 trained on this shorter one, 3 steps of 2.5/3 eps (the paper's total step
#: length, chosen for cost): the verdict study's `short-attack` setting keeps it as a named variant (SETTINGS).
SHORT_TRAINING_PGD: dict[str, Any] = {"pgd_steps": 3, "pgd_alpha_ratio": 2.5 / 3}

#: Fig. 2's eps axis: the paper's 0-0.04 grid, extended until undefended models reach about 0% under PGD-10 (the quick
#: ERM reference model: <= 5% at 0.1, tests/test_attack_sanity.py), so a curve that stays up is visible as such;
#: its last value is the profiles' `large_eps`, the gradient-masking probe (benchmark/masking.py)
EXTENDED_EPS_GRID = (0.0, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1)

#: Quick worst case: AutoAttack's white-box members at their standard budgets (APGD-CE 100 iterations, APGD-T 100
#: iterations with min(9, classes - 1) targets, 1 restart: their declared defaults) and Square at 100 queries instead
#: of 5000, on the first 500 test images. Chosen by perf/aa_convergence.py on the two reference models, ERM and
#: Madry AT (first domain, seed 0, both datasets), against aa at the standard budgets on the same images: 50
#: iterations left ERM on digits 1.4 points above it and 3 targets left AT on shapes 1.4 points above it, so neither
#: is reduced; Square, which runs after them, broke no point they left at 100, 500 or 5000 queries. Then confirmed
#: on all ten Table I methods (README "Is the worst case converged?"). The paper profile runs the standard budgets on
#: the whole test split. The members alone (--attacks apgd-ce,apgd-t,square) run as in aa, on the same 500 images
#: (issue 29: aa's apgd-ce stage is then the run of apgd-ce alone, computed once; benchmark/evaluate.py).
QUICK_SQUARE_QUERIES = 100
#: per image relative to PGD-10 (perf/aa_convergence.py, `_QUICK_AA_WHY`): aa with its convergence check on a model
#: that does not train on PGD and on one that does; Square alone at 100 queries at its no-break bound (0.049 x PGD-10
#: per query, perf/worst_case_cost.py)
AA_COST, AA_ROBUST_COST, SQUARE_COST = 27.5, 125.4, 4.9
#: of those aa costs, the convergence check's seconds over aa's own (README "Is the worst case converged?", its last
#: column: the mean over the same 14 models that do not train on PGD and the 6 that do): the check runs once, at the
#: table eps, so an eps grid without it costs aa alone (benchmark/estimate.py attack_eps_cost)
AA_CHECK_RATIO = (0.332, 0.518)
#: The share of an independent run's points (the clean-correct ones) robust at every eps <= the key: what a chained
#: attack (attacks/base.py) still attacks at the eps after it, so the estimate's cost of that eps is the attack's
#: per-image cost times this share (benchmark/estimate.py chain_survival), on a model that does not (False) and one
#: that does (True) train on PGD. Measured by perf/chain_survival.py with PGD-10 (cheap; the chained attacks are at
#: least as strong, so these bound their survivors from above) on the 1000 test images of the two reference models
#: only, ERM and Madry AT (shapes and digits, first domain, seed 0), never on EGAT or another method the benchmark
#: compares: the mean of the two models of each kind, rounded to 3 places.
CHAIN_SURVIVAL = {
    False: {0.01: 0.674, 0.02: 0.177, 0.03: 0.037, 0.04: 0.005, 0.06: 0.0, 0.08: 0.0, 0.1: 0.0},
    True: {0.01: 0.973, 0.02: 0.933, 0.03: 0.758, 0.04: 0.433, 0.06: 0.098, 0.08: 0.009, 0.1: 0.001},
}
#: the first test images the quick `aa` attacks: at n = 500 a binomial SE is at most 2.24 points (at 50%)
QUICK_AA_IMAGES = 500
_QUICK_AA_WHY = ("perf/aa_convergence.py: mean over its models of the seconds of aa and its convergence check over "
                 "PGD-10's on the same 500 images, for the models that do not train on PGD and for those that do")
_SAME_IMAGES = "on aa's images, so that its stages and the members alone are measured on the same points"
QUICK_WORST_CASE = {
    "apgd-ce": AttackSetting({}, 10.0, f"its declared cost (attacks/apgd.py), {_SAME_IMAGES}", images=QUICK_AA_IMAGES),
    "apgd-t": AttackSetting({}, 25.0, f"its declared cost (attacks/apgd.py), {_SAME_IMAGES}", images=QUICK_AA_IMAGES),
    "square": AttackSetting({"n_queries": QUICK_SQUARE_QUERIES}, SQUARE_COST,
                            "Square's no-break bound, 0.049 x PGD-10 per query (perf/worst_case_cost.py), "
                            + _SAME_IMAGES, images=QUICK_AA_IMAGES),
    "aa": AttackSetting({"n_queries": QUICK_SQUARE_QUERIES}, AA_COST, _QUICK_AA_WHY, images=QUICK_AA_IMAGES,
                        robust_cost=AA_ROBUST_COST, check_ratio=AA_CHECK_RATIO),
}

PROFILES.add("quick", Profile(
    name="quick",
    datasets=("shapes", "digits"),
    model="cnn",
    pretrained=True,  # the cnn's synthetic pretraining (benchmark/pretraining.py), in the role of ImageNet weights
    image_size=None,
    steps=400,
    batch_size=32,
    lr=2e-3,
    eval_every=50,
    dropout=0.1,
    eval_batch_size=256,
    eps_grid=EXTENDED_EPS_GRID,
    table_eps=0.02,
    attack_steps=10,
    faithfulness_images=200,
    light_models=("cnn_small",),
    notes=("quick profile: built-in synthetic benchmarks (32x32), small cnn fine-tuned from its synthetic "
           "pretraining (benchmark/pretraining.py; the paper fine-tunes ImageNet weights), "
           "400 Adam steps (lr 2e-3, batch 32), training-time PGD as in the paper except where stated per method; "
           "evaluation attacks are the paper's (10 steps, alpha eps/4). Not the paper's numbers. "
           "Baselines scaled to the run: IG-NORM uses 2 path points (attack: 1), 2 PGD steps of 4/255 and "
           "the first 8 images of each batch for x' and the IG term (paper: 50 points, attack 5, 7 steps "
           "of 2/255, whole batch); IRM's penalty anneal lasts 40 steps (DomainBed: 500 of 5000, the same "
           "10%); DM-ADA's gradient-reversal schedule spans the 400 steps. AT and EGAT (every variant) train "
           "on the paper's PGD-10 of alpha eps/4 at eps 0.02; egat-sg and egat-ig use 4 "
           "SmoothGrad samples / IG points (paper profile: 8)."),
    attack_settings=QUICK_WORST_CASE,
    # the probe's flags are thresholds of 5 points: at n = 256 a binomial SE is at most 1.4 points at 5% (3.1 at 50%)
    probe_images=256,
    # around the quick defaults (lr 2e-3, dropout 0.1): a decade of learning rates, DomainBed's dropout span
    loop_search={"lr": Range(5e-4, 5e-3, log=True), "dropout": Range(0.0, 0.5)},
))

PROFILES.add("paper", Profile(
    name="paper",
    datasets=("vlcs", "terra_incognita"),
    model="resnet50",
    pretrained=True,
    image_size=224,
    steps=5000,
    batch_size=32,
    lr=1e-4,
    eval_every=100,
    dropout=0.5,
    eval_batch_size=64,
    eps_grid=EXTENDED_EPS_GRID,
    table_eps=0.02,
    attack_steps=10,
    faithfulness_images=500,
    light_models=("mobilenet_v2", "efficientnet_b0"),
    notes=("paper profile: ResNet-50 (ImageNet weights), 224x224, Adam 1e-4, batch 32, 5000 steps, "
           "best-validation checkpoint, PGD-10 eps 0.02 (paper Sec. V-A)."),
    # DomainBed's ResNet ranges: lr 10^U(-5, -3.5), dropout in [0, 0.5]
    loop_search={"lr": Range(1e-5, 10 ** -3.5, log=True), "dropout": Range(0.0, 0.5)},
))


@dataclass(frozen=True)
class StudySetting:
    """A named variant of a profile for the verdict study (Table VI, benchmark/study.py): the profile fields it
    changes, given the profile. Its jobs record the setting's name wherever it changes them (their keys differ from the
    profile's, and its records never enter the profile's own tables); a job it does not change (e.g. ERM's under a
    change of the training attack) is the profile's job, shared."""

    name: str
    #: one line, as Table VI's notes state the setting
    description: str
    changes: Callable[[Profile], dict[str, Any]]

    def apply(self, profile: Profile) -> Profile:
        """`profile` under this setting (itself when the setting changes nothing)."""
        changes = self.changes(profile)
        settable = {f.name for f in fields(Profile)} - {"name", "setting", "reference"}
        unknown = sorted(set(changes) - settable)
        if unknown:
            raise UserError(f"setting {self.name!r} changes {', '.join(unknown)}, which are not profile settings")
        return replace(profile, **changes, setting=self.name, reference=profile) if changes else profile


SETTINGS: Registry[StudySetting] = Registry("setting")
#: the verdict study's settings, declared before any of their numbers were seen (issue 30) and never changed after;
#: hyperparameters are the committed tuned values in each (no re-sweep)
SETTINGS.add("quick", StudySetting("quick", "the profile itself (the reference)", lambda profile: {}))
SETTINGS.add("short-attack", StudySetting(
    "short-attack", "AT and the EGAT family train on results v3's 3-step PGD of alpha 2.5/3 eps (the paper: 10 steps "
    "of eps/4)", lambda profile: {"training_pgd": SHORT_TRAINING_PGD}))
SETTINGS.add("budget", StudySetting(
    "budget", "4x the training steps, evaluation unchanged", lambda profile: {"steps": 4 * profile.steps}))
SETTINGS.add("resnet", StudySetting(
    "resnet", "a CIFAR-style ResNet-20 (He et al. 2016: 3 stages of 3 basic blocks, 16/32/64 channels) at 32x32 in "
    "place of the cnn, pretrained on the same synthetic corpus, Grad-CAM on its last stage",
    lambda profile: {"model": "resnet20"}))


def parse_hparam_overrides(text: str) -> dict[str, dict[str, str]]:
    """`egat.lambda_adv=0.3,at.pgd_steps=5` -> {"egat": {"lambda_adv": "0.3"}, "at": {"pgd_steps": "5"}}."""
    overrides: dict[str, dict[str, str]] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, sep, value = item.partition("=")
        method, dot, key = name.partition(".")
        if not (sep and dot and method and key):
            raise UserError(f"malformed hyperparameter {item!r}: expected METHOD.KEY=VALUE, e.g. egat.lambda_adv=0.3")
        overrides.setdefault(method, {})[key] = value
    return overrides
