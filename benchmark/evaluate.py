"""Evaluation of a trained model: clean and out-of-domain accuracy, attacks x eps, gradient-masking checks,
explanation faithfulness, localization, stability and a sanity check (README "How robustness and
explanations are measured").

`evaluate` runs the evaluation's parts in order (benchmark/metrics.py's PARTS), each followed by the declared
metrics computed from its shared inputs (`Evaluation`); the record's `metrics`:

- cAcc: accuracy on the training domain's test split (Table I).
- cAcc_cue_free: accuracy on the test split's cue-free twins (built-in benchmarks: the same objects with the
  spurious cue drawn independently of the class), the direct measure of reliance on the object.
- ood_cAcc: accuracy on every other domain, whole (Table II), or on its first `ood_images` (a profile's).
- aAcc[attack][eps]: accuracy on the test split under each attack at each eps (Table I uses PGD-10
  and `aa` at the profile's `table_eps`; Fig. 2 uses the whole grid). The attack's randomness (PGD's start)
  comes from a generator seeded by the job's seed, so evaluation is reproducible. The profile may run an
  attack with other parameters than its standard ones, and on the test split's first images only
  (`Profile.attack_settings`: the quick worst case, on the first 500).
- attack_budgets[attack]: what each attack of the grid ran with: `images` (how many test images it attacked) and
  `params` (its parameters, its declared defaults filled in, so a standard budget is stated too).
- aa_stages[eps]: robust accuracy after each stage of the attack that declares stages, the worst case
  (AutoAttack's per-attack accounting; attacks/base.py `register_attack(stages=)`).
- masking: the gradient-masking probe (benchmark/masking.py, benchmark/flags.py): zero / non-finite
  input-gradient shares; on the profile's `probe_images` first test images, PGD-10 at its `large_eps` and PGD-10
  transferred from the same dataset, domain and seed's ERM model beside white-box PGD-10 on those images; the
  convergence check of `aa` (a second restart of its white-box members on the points it left robust, on the first
  images both attacked); and the flags computed from the whole record (tables recompute them after merging records).
- Comp / Suff (black fill, the paper's), Comp_blur / Suff_blur, their calibration rows, localization
  against the object masks, stability under PGD at `table_eps` and the parameter-randomization check, on
  the first `faithfulness_images` test images (benchmark/explanation_metrics.py).
- heatmaps: Grad-CAM of the first HEATMAP_IMAGES test images, clean and under PGD at the profile's
  `table_eps`, with predictions, so Fig. 4 is a pure function of the records (plus the images).
- eval_parts_s: seconds per part of the evaluation (a measurement: the eval record keeps it beside
  eval_time_s, outside the metrics).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

from attacks.base import ATTACKS, eval_mode, resources_of
from attacks.pgd import pgd
from benchmark.config import Profile
from benchmark.data.base import Benchmark, Domain, iterate
from benchmark.explain import EXPLAINERS
from benchmark.explanation_metrics import explanation_metrics
from benchmark.flags import masking_flags
from benchmark.masking import RESTART_SEED_OFFSET, gradient_health, restart_white_box
from benchmark.metrics import METRICS, PARTS
from benchmark.models import Classifier
from benchmark.store import eps_label
from benchmark.train import accuracy, to_device

EVAL_EXPLAINER = "gradcam"
HEATMAP_IMAGES = 6


def robust_under(model: Classifier, batches: list[dict[str, Tensor]], craft: Callable[[Tensor, Tensor], Tensor]
                 ) -> Tensor:
    """Per image of the batches, in order, whether `model` still classifies `craft(x, y)` correctly (a bool mask):
    the loop of the attacks that need no bookkeeping (the transfer attack)."""
    robust = []
    for batch in batches:
        x_adv = craft(batch["x"], batch["y"])
        with torch.no_grad():
            robust.append(model(x_adv).argmax(1) == batch["y"])
    return torch.cat(robust)


def percent(robust: Tensor) -> float:
    """The share (%) of images a robust mask keeps: the accuracy it stands for."""
    return 100.0 * robust.sum().item() / len(robust)


def _generator(batches: list[dict[str, Tensor]], seed: int) -> torch.Generator:
    """The attack's generator, on the batches' device, seeded by the job's seed (evaluation is reproducible)."""
    return torch.Generator(device=batches[0]["x"].device).manual_seed(seed)


def attack_parameters(attack: str, *, steps: int, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters `attack` runs with: its declared defaults (the standard version), the profile's `steps` if it
    takes steps, then `params` (a profile's attack settings). Resources (SCA's DDPM) are not parameters."""
    spec = ATTACKS.get(attack)
    return {**dict(spec.defaults), **({"steps": steps} if spec.takes_steps else {}), **(params or {})}


@dataclass
class AttackRun:
    """One run of an attack at one eps over its images."""

    #: per image, in order: still classified correctly after the run (False for a point it did not attack: in a
    #: chain, one a smaller eps broke)
    robust: Tensor
    #: how many images it ran on
    attacked: int
    #: the adversarial examples of the first batches it kept, in batch order (the table PGD's: Evaluation.table_pgd)
    examples: list[Tensor] = field(default_factory=list)
    #: per stage of a staged attack, the mask of the points still robust after it (cumulative)
    stages: dict[str, Tensor] = field(default_factory=dict)


def run_attack(model: Classifier, batches: list[dict[str, Tensor]], attack: str, eps: float, *, params: dict[str, Any],
               seed: int, resources: dict[str, Any] | None = None, attacked: Tensor | None = None, keep: int = 0
               ) -> AttackRun:
    """`attack` at `eps` with `params` on the images `attacked` marks (None: all), batch by batch from one generator
    seeded by `seed` (each batch's marked images together), with the resources it declares (by name, e.g. SCA's DDPM);
    keeps the adversarial examples of the batches holding the first `keep` images (an unattacked image's is itself).
    The one loop every attack accuracy of an evaluation runs."""
    spec = ATTACKS.get(attack)
    generator = _generator(batches, seed)
    params = {**params, **{r.name: (resources or {}).get(r.name) for r in spec.resources}}
    robust, examples, seen = [], [], 0
    for batch in batches:
        x, y = batch["x"], batch["y"]
        if attacked is None:
            x_adv = spec(model, x, y, eps, generator=generator, **params)
        else:
            x_adv, rows = x.clone(), attacked[seen:seen + len(y)].nonzero().flatten()
            if len(rows):
                x_adv[rows] = spec(model, x[rows], y[rows], eps, generator=generator, **params)
        with torch.no_grad():
            still = model(x_adv).argmax(1) == y
        robust.append(still if attacked is None else still & attacked[seen:seen + len(y)])
        if seen < keep:
            examples.append(x_adv)
        seen += len(y)
    return AttackRun(torch.cat(robust), seen if attacked is None else int(attacked.sum()), examples)


def adversarial_accuracy(model: Classifier, batches: list[dict[str, Tensor]], attack: str, eps: float, *,
                         steps: int, seed: int, resources: dict[str, Any] | None = None,
                         params: dict[str, Any] | None = None, stages: dict[str, float] | None = None) -> float:
    """Accuracy (%) under `attack` at `eps` on pre-loaded test batches (adversarial_robustness's mask, counted)."""
    return percent(adversarial_robustness(model, batches, attack, eps, steps=steps, seed=seed, resources=resources,
                                          params=params, stages=stages))


def adversarial_robustness(model: Classifier, batches: list[dict[str, Tensor]], attack: str, eps: float, *,
                           steps: int, seed: int, resources: dict[str, Any] | None = None,
                           params: dict[str, Any] | None = None, stages: dict[str, float] | None = None) -> Tensor:
    """Per image of the pre-loaded test batches, whether `attack` at `eps` leaves it correctly classified (model in
    eval mode): one independent run, as the evaluation runs it (AttackRuns), with `attack_parameters(attack, steps=,
    params=)` (`params`: a profile's attack settings) and the resources it declares from `resources`. Given `stages`,
    an attack that declares stages (the worst case `aa`) fills it with the robust accuracy (%) after each of its
    stages (cumulative, AutoAttack's accounting)."""
    runs = AttackRuns(model, seed=seed, steps=steps, resources=resources or {}, eps=(eps,), table_eps=eps)
    run = runs.series(attack, attack_parameters(attack, steps=steps, params=params), batches).run(0)
    if stages is not None:
        stages.update({stage: percent(mask) for stage, mask in run.stages.items()})
    return run.robust


class AttackSeries:
    """One attack with fixed parameters on fixed images over the evaluation's eps grid, its runs computed in
    ascending eps, each once.

    An attack declared `chained` (attacks/base.py) runs at each eps only on the points its chain left robust at the
    previous eps of the grid; its chain at an eps is then the points robust at every eps up to it (the accuracy
    "at any budget up to eps": never above an independent run's, monotone by construction). The grid's first eps and
    the profile's table eps are independent runs on every image (Tables I-V keep their meaning, and the chain can be
    checked against the independent run there). Other attacks run independently at every eps. An attack whose
    stages are registered attacks (`member_params`, the worst case `aa`) runs them one after the other over all its
    images, each on the points every earlier one left robust, each from a generator seeded by the job's seed; its
    first stage is the first member's own series (shared with that attack run alone when the parameters and images
    are the same), so at a chained eps it reads the member's run on the member's own survivors, a superset of aa's."""

    def __init__(self, runs: AttackRuns, attack: str, params: dict[str, Any], batches: list[dict[str, Tensor]]):
        self.runs, self.attack, self.params, self.batches = runs, attack, params, batches
        self.spec = ATTACKS.get(attack)
        self.computed: list[AttackRun] = []
        self.chain: list[Tensor] = []

    def independent(self, k: int) -> bool:
        """Whether the grid's k-th eps runs on every image: not a chained attack, eps 0, the grid's first eps > 0 or
        the table eps."""
        eps = self.runs.eps
        return (not self.spec.chained or eps[k] == 0 or all(e == 0 for e in eps[:k])
                or eps_label(eps[k]) == eps_label(self.runs.table_eps))

    def run(self, k: int) -> AttackRun:
        """The run at the grid's k-th eps (computing the smaller ones first where the chain needs them)."""
        while len(self.computed) <= k:
            i = len(self.computed)
            attacked = None if self.independent(i) else self.chain[i - 1]
            run = self._staged(i, attacked) if self.spec.member_params else self._single(i, attacked)
            self.computed.append(run)
            self.chain.append(run.robust if i == 0 else self.chain[i - 1] & run.robust)
        return self.computed[k]

    def _single(self, k: int, attacked: Tensor | None) -> AttackRun:
        keep = self.runs.keep if self.attack == "pgd" and eps_label(self.runs.eps[k]) == eps_label(
            self.runs.table_eps) and attacked is None else 0
        return run_attack(self.runs.model, self.batches, self.attack, self.runs.eps[k], params=self.params,
                          seed=self.runs.seed, resources=self.runs.resources, attacked=attacked, keep=keep)

    def _staged(self, k: int, attacked: Tensor | None) -> AttackRun:
        members = self.spec.member_params(**self.params)
        robust, stages = attacked, {}
        for i, member in enumerate(self.spec.stages):
            params = attack_parameters(member, steps=self.runs.steps, params=members[member])
            if i == 0:
                first = self.runs.series(member, params, self.batches, owner=self).run(k).robust
                robust = first if attacked is None else attacked & first
            else:
                robust = run_attack(self.runs.model, self.batches, member, self.runs.eps[k], params=params,
                                    seed=self.runs.seed, resources=self.runs.resources, attacked=robust).robust
            stages[member] = robust
        return AttackRun(robust, len(robust) if attacked is None else int(attacked.sum()), stages=stages)


@dataclass
class AttackRuns:
    """An evaluation's attack series, each (attack, parameters, images) computed once over the eps grid (sorted): the
    runs an attack alone and a worst case's stage have in common are shared, unless `reuse` is off (the same
    numbers, recomputed: the tests' proof that sharing changes nothing). `keep`: how many first images' adversarial
    examples the table PGD keeps for the explanation metrics and Fig. 4's heatmaps."""

    model: Classifier
    seed: int
    steps: int
    resources: dict[str, Any]
    eps: tuple[float, ...]
    table_eps: float
    keep: int = 0
    reuse: bool = True
    _series: dict[tuple, AttackSeries] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.eps = tuple(sorted(self.eps))

    def series(self, attack: str, params: dict[str, Any], batches: list[dict[str, Tensor]], *,
               owner: AttackSeries | None = None) -> AttackSeries:
        """The series of `attack` with `params` on `batches` (one of the test split's prefixes), made on first use;
        `owner`: the series that asks for it as its stage (without reuse, each owner gets its own)."""
        images = sum(len(b["y"]) for b in batches)
        key = (attack, json.dumps(params, sort_keys=True, default=str), images,
               None if self.reuse or owner is None else id(owner))
        if key not in self._series:
            self._series[key] = AttackSeries(self, attack, params, batches)
        return self._series[key]

    def index(self, eps: float) -> int:
        """The position of `eps` in the sorted grid."""
        return [eps_label(e) for e in self.eps].index(eps_label(eps))


def transfer_accuracy(source: Classifier, target: Classifier, batches: list[dict[str, Tensor]], eps: float, *,
                      steps: int, seed: int) -> float:
    """Accuracy (%) of `target` on PGD-`steps` examples crafted on `source` (the dataset's ERM model), seeded as
    `adversarial_accuracy` seeds: a transfer attack needs no gradient of `target` (benchmark/flags.py)."""
    generator = _generator(batches, seed)
    with eval_mode(target):
        return percent(robust_under(target, batches, lambda x, y: pgd(source, x, y, eps, generator=generator,
                                                                      steps=steps)))


def heatmap_samples(model: Classifier, batch: dict[str, Tensor], adversarial: Tensor, eps: float) -> dict:
    """Grad-CAM maps of the true class on the first test images, clean and under PGD at `eps` (`adversarial`: the
    batch's adversarial examples, the table PGD's), for Fig. 4."""
    x, y, x_adv = batch["x"][:HEATMAP_IMAGES], batch["y"][:HEATMAP_IMAGES], adversarial[:HEATMAP_IMAGES]
    explain = EXPLAINERS.get(EVAL_EXPLAINER)
    with torch.no_grad():
        pred_clean, pred_adv = model(x).argmax(1), model(x_adv).argmax(1)

    def rounded(maps: Tensor) -> list:
        return maps.detach().cpu().round(decimals=4).tolist()

    return {"indices": list(range(len(y))), "split": "test", "eps": eps, "attack": "pgd", "label": y.tolist(),
            "clean": rounded(explain(model, x, y)), "adv": rounded(explain(model, x_adv, y)),
            "pred_clean": pred_clean.tolist(), "pred_adv": pred_adv.tolist()}


@dataclass
class Evaluation:
    """The shared inputs every metric is computed from (benchmark/metrics.py), and the record being built."""

    model: Classifier
    domain: Domain
    bench: Benchmark
    profile: Profile
    seed: int
    device: torch.device
    attacks: tuple[str, ...]
    eps: tuple[float, ...]
    progress: bool
    resources: dict[str, Any]
    transfer_source: Classifier | None
    #: whether computations shared by parts of the evaluation run once (off: each recomputes them, same numbers)
    reuse: bool = True
    #: the eval record's `metrics` so far (each part and metric adds to it)
    metrics: dict = field(default_factory=dict)
    #: per attack of the grid, its per-image robust mask at the table eps over the images it attacked, in order
    robust: dict[str, Tensor] = field(default_factory=dict)
    #: seconds each (attack, eps) of the grid took (a shared run counts under the attack that ran it first)
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)

    def accuracy(self, split: Dataset) -> float:
        """Clean accuracy (%) of the model on a split."""
        return accuracy(self.model, split, batch_size=self.profile.eval_batch_size, device=self.device)

    @cached_property
    def test_batches(self) -> list[dict[str, Tensor]]:
        """The training domain's test split in evaluation batches, on the device (loaded once)."""
        return [to_device(b, self.device) for b in iterate(self.domain.test, self.profile.eval_batch_size)]

    @cached_property
    def runs(self) -> AttackRuns:
        """The evaluation's attack runs over its eps grid."""
        return AttackRuns(self.model, seed=self.seed, steps=self.profile.attack_steps, resources=self.resources,
                          eps=self.eps, table_eps=self.profile.table_eps, keep=self.examples_kept, reuse=self.reuse)

    @property
    def examples_kept(self) -> int:
        """How many first test images' table-PGD examples the explanation metrics and Fig. 4 read."""
        return max(self.profile.faithfulness_images, HEATMAP_IMAGES)

    def attack_batches(self, attack: str) -> list[dict[str, Tensor]]:
        """The test batches `attack` runs on: the first `images` of its profile setting, else the whole split."""
        return first_images(self.test_batches, self.profile.attack_images(attack))

    def series(self, attack: str) -> AttackSeries:
        """The grid's series of `attack`, with the profile's parameters, on its images."""
        params = attack_parameters(attack, steps=self.profile.attack_steps, params=self.profile.attack_params(attack))
        return self.runs.series(attack, params, self.attack_batches(attack))

    def table_pgd(self, images: int | None) -> AttackRun:
        """The table PGD (PGD-10 at the table eps with the profile's parameters and the job's seed, the grid's own
        run) on the test batches holding the first `images` (None: all) test images, with the adversarial examples of
        the first `examples_kept`: the masking probe's white-box run, the stability metric's and Fig. 4's
        adversarial examples. The grid's run when it has it (its batches coincide), else run here."""
        wanted = first_images(self.test_batches, images)
        batches = self.test_batches[:len(wanted)]  # whole batches: the grid's run on them, batch for batch
        grid, table = self.series("pgd"), eps_label(self.profile.table_eps)
        same_batches = len(grid.batches) >= len(batches) and all(
            len(grid.batches[i]["y"]) == len(batch["y"]) for i, batch in enumerate(batches))
        if self.reuse and "pgd" in self.attacks and same_batches and table in {eps_label(e) for e in self.eps}:
            run = grid.run(self.runs.index(self.profile.table_eps))
            return AttackRun(run.robust[:sum(len(b["y"]) for b in batches)], run.attacked, run.examples)
        return run_attack(self.model, batches, "pgd", self.profile.table_eps, params=grid.params, seed=self.seed,
                          keep=self.examples_kept)


def clean_and_ood(ev: Evaluation) -> None:
    """Accuracy on every other domain, whole or its first `ood_images` (cAcc and the cue-free twins' are declared
    metrics)."""
    ev.metrics["ood_cAcc"] = {other.name: ev.accuracy(_first(other.full, ev.profile.ood_images))
                              for other in ev.bench.domains if other.name != ev.domain.name}


def attack_grid(ev: Evaluation) -> None:
    """Accuracy under each attack at each eps (`aAcc`) on the attack's images (the first `images` of its profile
    setting, else the whole test split), the eps computed in ascending order (AttackSeries: the chained attacks at an
    eps that is neither the grid's first nor the table eps read their chain, the accuracy at any budget up to it); the
    stages of the attacks that declare stages; what each attack ran with (`attack_budgets`: the images it attacked,
    its parameters, the eps whose accuracy is chained); the points it attacked at each eps (`attack_points`); for a
    chained attack at the table eps, its chain beside the independent run (`chain_check`: the independent run leaves
    robust no point a smaller eps broke unless the attack fails to optimize, benchmark/flags.py); and its robust mask
    at the table eps (`ev.robust`, which the masking probe's convergence check reads)."""
    order = sorted(ev.eps)
    ev.metrics["aAcc"] = {attack: {} for attack in ev.attacks}
    ev.metrics["attack_budgets"], ev.metrics["attack_points"] = {}, {}
    table = eps_label(ev.profile.table_eps)
    for attack in ev.attacks:
        series = ev.series(attack)
        ev.metrics["attack_budgets"][attack] = {
            "images": sum(len(b["y"]) for b in series.batches), "params": series.params,
            "chained": [eps_label(e) for e in order if not series.independent(ev.runs.index(e))]}
        ev.metrics["attack_points"][attack] = {}
    grid = [(attack, e) for attack in ev.attacks for e in order]
    for attack, e in tqdm(grid, desc="attacks", disable=not ev.progress or not grid, leave=False):
        series, k, label = ev.series(attack), ev.runs.index(e), eps_label(e)
        start = time.perf_counter()
        run = series.run(k)
        ev.seconds.setdefault(attack, {})[label] = round(time.perf_counter() - start, 3)
        chained = not series.independent(k)
        ev.metrics["aAcc"][attack][label] = percent(series.chain[k] if chained else run.robust)
        ev.metrics["attack_points"][attack][label] = run.attacked
        if label == table:
            ev.robust[attack] = run.robust
            if series.spec.chained and k > 0:
                ev.metrics.setdefault("chain_check", {})[attack] = {
                    "eps": label, "independent_aAcc": percent(run.robust), "chain_aAcc": percent(series.chain[k])}
        if run.stages and e > 0:
            ev.metrics.setdefault("aa_stages", {})[label] = {stage: percent(mask) for stage, mask in run.stages.items()}
    ev.metrics["aAcc"] = {attack: {eps_label(e): ev.metrics["aAcc"][attack][eps_label(e)] for e in ev.eps}
                          for attack in ev.attacks}


def masking(ev: Evaluation) -> None:
    """The gradient-masking probe, whenever an attack ran at an eps > 0 (its white-box PGD is the table PGD's)."""
    if ev.attacks and any(e > 0 for e in ev.eps):
        ev.metrics["masking"] = masking_probe(ev.model, ev.test_batches, ev.metrics, profile=ev.profile, seed=ev.seed,
                                              transfer_source=ev.transfer_source,
                                              worst_case_robust=ev.robust.get(METRICS.get("AA").attack),
                                              table_pgd=ev.table_pgd(ev.profile.probe_images).robust)


def explanations(ev: Evaluation) -> None:
    """The explanation pass: faithfulness, calibration, localization, stability (under the table PGD's examples) and
    randomization over the same maps."""
    ev.metrics.update(explanation_metrics(ev.model, ev.test_batches, limit=ev.profile.faithfulness_images,
                                          eps=ev.profile.table_eps, adversarial=ev.table_pgd(ev.examples_kept).examples,
                                          seed=ev.seed, explainer=EVAL_EXPLAINER))


def heatmaps(ev: Evaluation) -> None:
    """Fig. 4's maps, under the table PGD's examples."""
    ev.metrics["heatmaps"] = heatmap_samples(ev.model, ev.test_batches[0], ev.table_pgd(HEATMAP_IMAGES).examples[0],
                                             ev.profile.table_eps)


#: each part of the evaluation (benchmark/metrics.py's PARTS, in that order) and what it computes itself
PART_RUNNERS: dict[str, Callable[[Evaluation], None]] = {
    "clean_and_ood": clean_and_ood, "attacks": attack_grid, "masking_probe": masking, "explanations": explanations,
    "heatmaps": heatmaps,
}


def evaluate(model: Classifier, bench: Benchmark, train_domain: str, *, attacks: tuple[str, ...],
             eps: tuple[float, ...], profile: Profile, seed: int, device: torch.device,
             progress: bool = True, resources: dict[str, Any] | None = None,
             transfer_source: Classifier | None = None, reuse: bool = True) -> dict:
    """All metrics of one trained model as the eval record's `metrics` dict: the parts of the evaluation in order
    (PARTS), each followed by the declared metrics it is the shared input of (benchmark/metrics.py), written at their
    paths. The resources the attacks declare (SCA's DDPM) are built by their providers (loaded, or trained once and
    cached) unless given by name. `transfer_source` (the same dataset, domain and seed's ERM model; None for ERM
    itself) crafts the masking probe's transfer attack; the probe runs whenever an attack runs at an eps > 0.
    `reuse` off recomputes what parts share (the same metrics: tests). Beside the metrics, `eval_parts_s` and
    `attack_s` (seconds per attack and eps) are measurements the eval record keeps outside them."""
    resources = dict(resources or {})
    if any(e > 0 for e in eps):
        for resource in resources_of(attacks):
            if resource.name not in resources:
                resources[resource.name] = resource.provide(bench, device=device, progress=progress)
    model.eval()
    ev = Evaluation(model, bench.domain(train_domain), bench, profile, seed, device, attacks, eps, progress, resources,
                    transfer_source, reuse)
    clock = PartClock()
    for part in PARTS:
        PART_RUNNERS[part](ev)
        for name in METRICS:
            metric = METRICS.get(name)
            if metric.part == part and metric.compute is not None:
                _put(ev.metrics, metric.path, metric.compute(ev))
        clock.lap(part)
    ev.metrics["eval_parts_s"] = clock.parts
    ev.metrics["attack_s"] = ev.seconds
    return ev.metrics


def _put(metrics: dict, path: tuple[str, ...], value: Any) -> None:
    """Write `value` at `path` of the record's metrics (nothing for None: the metric does not apply)."""
    if value is None:
        return
    for name in path[:-1]:
        metrics = metrics.setdefault(name, {})
    metrics[path[-1]] = value


class PartClock:
    """Seconds spent in each part of an evaluation (a measurement of this machine, not a result), so a reader
    sees where evaluation time goes."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, part: str) -> None:
        now = time.perf_counter()
        self.parts[part] = round(now - self._last, 3)
        self._last = now


def masking_probe(model: Classifier, batches: list[dict[str, Tensor]], metrics: dict, *, profile: Profile,
                  seed: int, transfer_source: Classifier | None, worst_case_robust: Tensor | None = None,
                  table_pgd: Tensor | None = None) -> dict[str, Any]:
    """The gradient-masking measurements and flags (benchmark/masking.py) of a model whose attacks have run:
    input-gradient health on the whole test split; PGD-10 at the profile's `large_eps` (the attack grid's
    whole-split number when the grid has that eps); and on the first `profile.probe_images` test images (all when
    None), PGD-10 at `table_eps` transferred from `transfer_source` beside white-box PGD-10 on the same images: the
    table PGD's (`table_pgd`: its robust mask over at least those images, Evaluation.table_pgd; None: run here on the
    test batches holding them, as the grid runs it). Given `worst_case_robust` (the worst case `aa`'s robust mask at
    `table_eps` over the first images it attacked), the convergence check on the first min(probe_images, half of aa's
    images): aa's white-box members run again on the points aa left robust, from a new random start, with aa's
    stated `n_iter` and `n_targets` (benchmark/masking.py restart_white_box: its cost); `restart_images`,
    `aa_restart_base_aAcc` (aa's accuracy on those images) and `aa_restart_aAcc` (after the restart) are None
    where aa did not run at `table_eps`. Then the flags over the record so far."""
    probe_batches = first_images(batches, profile.probe_images)
    probe_images = sum(len(b["y"]) for b in probe_batches)
    done = metrics["aAcc"].get("pgd", {}) if profile.attack_images("pgd") is None else {}  # the whole split's

    def pgd_accuracy(eps: float) -> float:
        if eps_label(eps) in done:
            return done[eps_label(eps)]
        return adversarial_accuracy(model, probe_batches, "pgd", eps, steps=profile.attack_steps, seed=seed)

    transfer = white_box = None
    if transfer_source is not None:
        transfer = transfer_accuracy(transfer_source.eval(), model, probe_batches, profile.table_eps,
                                     steps=profile.attack_steps, seed=seed)
        if table_pgd is None:
            table_pgd = run_attack(model, batches[:len(probe_batches)], "pgd", profile.table_eps, seed=seed,
                                   params=attack_parameters("pgd", steps=profile.attack_steps,
                                                            params=profile.attack_params("pgd"))).robust
        white_box = percent(table_pgd[:probe_images])
    restart: dict[str, Any] = {"restart_images": None, "aa_restart_base_aAcc": None, "aa_restart_aAcc": None}
    if worst_case_robust is not None:
        params = metrics["attack_budgets"][METRICS.get("AA").attack]["params"]
        restart = convergence_check(model, probe_batches, worst_case_robust, profile.table_eps,
                                    n_iter=params["n_iter"], n_targets=params["n_targets"], seed=seed)
    probe = {**gradient_health(model, batches), "probe_images": probe_images, "transfer_aAcc": transfer,
             "white_box_aAcc": white_box, "large_eps": profile.large_eps,
             "large_eps_aAcc": pgd_accuracy(profile.large_eps), **restart}
    probe["flags"] = masking_flags({**metrics, "masking": probe}, table_eps=profile.table_eps,
                                   large_eps=profile.large_eps)
    return probe


def convergence_check(model: Classifier, batches: list[dict[str, Tensor]], worst_case_robust: Tensor, eps: float, *,
                      n_iter: int, n_targets: int, seed: int) -> dict[str, Any]:
    """The worst case's convergence check on the first of `batches` (the probe's images), at most half of the images
    aa attacked (`worst_case_robust`: its robust mask over them, in order), so that it costs at most half of aa:
    restart_white_box from a generator seeded apart from the grid's. Returns the record's `restart_images`,
    `aa_restart_base_aAcc` (aa's accuracy on those images) and `aa_restart_aAcc` (after the restart)."""
    restart_batches = first_images(batches, len(worst_case_robust) // 2)
    base = worst_case_robust[:sum(len(b["y"]) for b in restart_batches)]
    after = restart_white_box(model, restart_batches, base, eps, n_iter=n_iter, n_targets=n_targets,
                              generator=_generator(restart_batches, seed + RESTART_SEED_OFFSET))
    return {"restart_images": len(base), "aa_restart_base_aAcc": percent(base), "aa_restart_aAcc": percent(after)}


def _first(dataset: Dataset, limit: int | None) -> Dataset:
    """The dataset's first `limit` items (all of them when None)."""
    return dataset if limit is None else Subset(dataset, list(range(min(limit, len(dataset)))))


def first_images(batches: list[dict[str, Tensor]], limit: int | None) -> list[dict[str, Tensor]]:
    """The batches cut to their first `limit` images in order (all of them when None)."""
    if limit is None:
        return batches
    cut, seen = [], 0
    for batch in batches:
        if seen >= limit:
            break
        take = min(len(batch["y"]), limit - seen)
        cut.append(batch if take == len(batch["y"]) else {k: v[:take] for k, v in batch.items()})
        seen += take
    return cut
