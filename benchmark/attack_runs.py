"""The attack runs of an evaluation (benchmark/evaluate.py), each computed once: one loop every attack accuracy runs
(`run_attack`), an attack's series over the eps grid in ascending order, chained where the attack declares it
(`AttackSeries`), a worst case's stages one after the other with its first stage shared with the attack run alone
(`AttackRuns`), and an independent run of one attack at one eps as the evaluation runs it (`adversarial_robustness`).
README "No computation twice"."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attacks.base import ATTACKS
from benchmark.models import Classifier
from benchmark.store import eps_label


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


def generator_for(batches: list[dict[str, Tensor]], seed: int) -> torch.Generator:
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
    generator = generator_for(batches, seed)
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
