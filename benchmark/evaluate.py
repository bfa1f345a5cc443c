"""Evaluation of a trained model: clean and out-of-domain accuracy, attacks x eps, gradient-masking checks,
explanation faithfulness, localization, stability and a sanity check (README "How robustness and
explanations are measured").

`evaluate` runs the evaluation's parts in order (benchmark/metrics.py's PARTS), each followed by the declared
metrics computed from its shared inputs (`Evaluation`; its attack runs, each computed once: benchmark/attack_runs.py);
the record's `metrics`:

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

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

from attacks.base import eval_mode, resources_of
from attacks.pgd import pgd
from benchmark.attack_runs import (
    AttackRun,
    AttackRuns,
    AttackSeries,
    adversarial_accuracy,
    attack_parameters,
    first_images,
    generator_for,
    percent,
    robust_under,
    run_attack,
)
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


def transfer_accuracy(source: Classifier, target: Classifier, batches: list[dict[str, Tensor]], eps: float, *,
                      steps: int, seed: int) -> float:
    """Accuracy (%) of `target` on PGD-`steps` examples crafted on `source` (the dataset's ERM model), seeded as
    `adversarial_accuracy` seeds: a transfer attack needs no gradient of `target` (benchmark/flags.py)."""
    generator = generator_for(batches, seed)
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
    #: the table PGD run here when the grid does not run it (Evaluation.table_pgd), once
    _table_pgd: AttackRun | None = None

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
        adversarial examples. The grid's run when it has it (its batches coincide); else run here once, on the
        batches all three need (without reuse: on those this call needs, each time; the same numbers, batch for
        batch)."""
        grid, table = self.series("pgd"), eps_label(self.profile.table_eps)
        batches = self._whole_batches(images)
        same_batches = len(grid.batches) >= len(batches) and all(
            len(grid.batches[i]["y"]) == len(batch["y"]) for i, batch in enumerate(batches))
        if self.reuse and "pgd" in self.attacks and same_batches and table in {eps_label(e) for e in self.eps}:
            run = grid.run(self.runs.index(self.profile.table_eps))
        elif self.reuse:
            if self._table_pgd is None:
                needed = None if self.profile.probe_images is None else max(self.profile.probe_images,
                                                                            self.examples_kept)
                self._table_pgd = run_attack(self.model, self._whole_batches(needed), "pgd", self.profile.table_eps,
                                             params=grid.params, seed=self.seed, keep=self.examples_kept)
            run = self._table_pgd
        else:
            run = run_attack(self.model, batches, "pgd", self.profile.table_eps, params=grid.params, seed=self.seed,
                             keep=self.examples_kept)
        return AttackRun(run.robust[:sum(len(b["y"]) for b in batches)], run.attacked, run.examples)

    def _whole_batches(self, images: int | None) -> list[dict[str, Tensor]]:
        """The test batches holding the first `images` test images, whole (the grid's run on them, batch for batch)."""
        return self.test_batches[:len(first_images(self.test_batches, images))]


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
                              generator=generator_for(restart_batches, seed + RESTART_SEED_OFFSET))
    return {"restart_images": len(base), "aa_restart_base_aAcc": percent(base), "aa_restart_aAcc": percent(after)}


def _first(dataset: Dataset, limit: int | None) -> Dataset:
    """The dataset's first `limit` items (all of them when None)."""
    return dataset if limit is None else Subset(dataset, list(range(min(limit, len(dataset)))))
