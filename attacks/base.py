"""The attack contract: what every attack shares, declared once, and the registry of attacks.

An attack is a function `body(model, x, y, eps, *, generator, **params) -> x_adv` registered with
`@register_attack(name, display=..., cost=...)`. The decorator does what every attack needs, so the
body holds only its algorithm:

- `eps` is checked (finite, >= 0) and the attack's own parameters by its `validate` hook, also at eps 0;
- `x` is detached; eps = 0 returns a copy of x (no gradient is taken);
- x must lie in [0, 1] (models normalize internally: a normalized x is a bug upstream);
- the body runs with the model in eval mode, every submodule's own train/eval flag restored after.

The declaration also says what the attack costs relative to PGD-10 (the grid's estimate), which
resources it needs beside the model (SCA: its dataset's DDPM), for a worst case over members the
stages it reports (the evaluator records the robust accuracy after each: `aa_stages`) and, where they are
registered attacks, each one's parameters (`member_params`: the evaluator then runs the stages one after the
other over all the images, AutoAttack's order, and shares a member's run with that attack run alone), and whether
its eps grid may be chained (`chained`: the evaluator attacks at each eps only the points still robust at the
smaller one, benchmark/evaluate.py). The evaluator
builds each declared resource once per dataset and passes it by the resource's name; the eval job's
config carries each resource's version. Adding an attack is one file with one decorated function.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.registry import Registry, UserError


@dataclass(frozen=True)
class Resource:
    """What an attack needs beside the model, built once per dataset by the evaluator."""

    #: the keyword the attack receives it as
    name: str
    #: where its version enters the eval job's config (so a changed resource gives new job keys)
    config_key: str
    #: bump when a change to the resource changes what the attack produces
    version: int
    #: provide(bench, *, device, progress) -> the resource for that dataset (e.g. a trained DDPM)
    provide: Callable[..., Any]
    #: building_seconds(bench, *, device) -> seconds `provide` would spend building it here, 0 when it is built already
    #: (the plan's estimate); None: providing it costs nothing worth estimating
    building_seconds: Callable[..., float] | None = None


@dataclass(frozen=True)
class Attack:
    """A registered attack: the wrapped function and its declaration. Call it like the function."""

    name: str
    run: Callable[..., Tensor]
    display: str
    #: cost of one (attack, eps > 0) evaluation relative to PGD-10 (the grid's time estimate)
    cost: float
    #: whether it takes `steps` (the evaluator passes the profile's attack_steps)
    takes_steps: bool
    #: the module of its algorithm (eval records fingerprint its code: benchmark/fingerprint.py)
    module: str
    resources: tuple[Resource, ...] = ()
    #: the stages it reports (a worst case over members: their names, in the order they run); such an attack takes
    #: a keyword `stages`, a dict it fills per stage with the (B,) mask of the points still robust after it
    stages: tuple[str, ...] = ()
    #: its own parameters (beyond the contract, its resources and `stages`) with their declared defaults, the standard
    #: version: an eval record states each attack's parameters with these filled in (benchmark/evaluate.py)
    defaults: tuple[tuple[str, Any], ...] = ()
    #: whether the evaluator may chain its eps grid: at each eps attack only the points still robust at the smaller
    #: one (the accuracy at any budget up to eps; benchmark/evaluate.py), for an attack whose runs are too costly to
    #: repeat on points a smaller budget already broke
    chained: bool = False
    #: for stages that are registered attacks, run on the points each earlier one left robust: their parameters from
    #: the attack's own (all of them, defaults filled in) as {stage: params}; None: the attack runs its stages itself
    member_params: Callable[..., dict[str, dict[str, Any]]] | None = None

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, eps: float, *,
                 generator: torch.Generator | None = None, **params: Any) -> Tensor:
        return self.run(model, x, y, eps, generator=generator, **params)


ATTACKS: Registry[Attack] = Registry("attack")


def check_eps(eps: float) -> float:
    """The budget as a float; a negative or non-finite budget is a UserError (it comes from --eps)."""
    value = float(eps)
    if not math.isfinite(value) or value < 0:
        raise UserError(f"attack budget eps must be a finite number >= 0, got {eps!r}")
    return value


def check_steps(steps: int, alpha: float | None, eps: float) -> tuple[int, float]:
    """Validated (steps, alpha) for iterative attacks; alpha defaults to eps / 4 (the paper's setting)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserError(f"attack steps must be an integer >= 1, got {steps!r}")
    step = eps / 4 if alpha is None else float(alpha)
    if not math.isfinite(step) or step < 0:
        raise UserError(f"attack step size alpha must be a finite number >= 0, got {alpha!r}")
    return steps, step


def check_images(x: Tensor) -> None:
    """Attacks work in pixel space: images outside [0, 1] (e.g. normalized ones) are a bug upstream."""
    low, high = torch.aminmax(x.detach())
    if low < 0 or high > 1:
        raise ValueError(
            f"attack inputs must lie in [0, 1] (got [{low.item():.3g}, {high.item():.3g}]); "
            "models normalize internally, pass raw images"
        )


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode and restore every submodule's own train/eval flag afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def loss_gradient(model: nn.Module, x_adv: Tensor, y: Tensor) -> Tensor:
    """Gradient of the mean cross-entropy w.r.t. the leaf `x_adv` (no parameter gradients are kept)."""
    x_adv.requires_grad_(True)
    loss = F.cross_entropy(model(x_adv), y)
    return torch.autograd.grad(loss, x_adv)[0]


def project_(x_adv: Tensor, x: Tensor, eps: float) -> Tensor:
    """In place: x_adv <- clamp(x + clamp(x_adv - x, -eps, eps), 0, 1), torchattacks' order of ops."""
    return x_adv.sub_(x).clamp_(-eps, eps).add_(x).clamp_(0, 1)


def validate_iterative(eps: float, params: dict[str, Any]) -> None:
    """The `validate` hook of attacks with `steps` and `alpha` (alpha None: eps / 4)."""
    check_steps(params["steps"], params.get("alpha"), eps)


CONTRACT = ("model", "x", "y", "eps", "generator")


def register_attack(name: str, *, display: str, cost: float, resources: tuple[Resource, ...] = (),
                    validate: Callable[[float, dict[str, Any]], None] | None = None, stages: tuple[str, ...] = (),
                    chained: bool = False, member_params: Callable[..., dict[str, dict[str, Any]]] | None = None
                    ) -> Callable[[Callable[..., Tensor]], Attack]:
    """Register `body` under `name` behind the shared contract (module docstring); returns the Attack.

    `validate(eps, params)` checks the attack's own parameters (defaults filled in) before anything
    runs, also at eps = 0. `stages`: the stages the attack reports (Attack.stages); `chained` and `member_params`:
    Attack's fields of those names (`member_params` needs `stages`). A body whose signature does
    not start with (model, x, y, eps) and take a keyword `generator`, each resource by name and, with stages, a
    keyword `stages` breaks the contract: UserError."""

    def wrap(body: Callable[..., Tensor]) -> Attack:
        signature = inspect.signature(body)
        names = list(signature.parameters)
        extra = [*(r.name for r in resources), *(["stages"] if stages else [])]
        if names[:4] != list(CONTRACT[:4]) or any(n not in names for n in [*CONTRACT, *extra]):
            raise UserError(f"attack {name!r} breaks the attack contract: its function must take "
                            f"({', '.join(CONTRACT[:4])}, *, generator, ...){' and ' if extra else ''}"
                            f"{', '.join(extra)}; it takes ({', '.join(names)})")
        if member_params is not None and not stages:
            raise UserError(f"attack {name!r} declares member_params without stages: name its stages")
        if not math.isfinite(cost) or cost <= 0:
            raise UserError(f"attack {name!r} declares cost {cost!r}; it must be a positive number (PGD-10 = 1)")

        def run(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, generator: torch.Generator | None = None,
                **params: Any) -> Tensor:
            eps = check_eps(eps)
            bound = signature.bind(model, x, y, eps, generator=generator, **params)
            bound.apply_defaults()
            if validate is not None:
                validate(eps, bound.arguments)
            x = x.detach()
            if eps == 0:
                return x.clone()
            check_images(x)
            with eval_mode(model):
                return body(model, x, y, eps, generator=generator, **params)

        run.__doc__, run.__name__ = body.__doc__, body.__name__
        defaults = tuple((n, p.default) for n, p in signature.parameters.items()
                         if n not in (*CONTRACT, *extra) and p.default is not inspect.Parameter.empty)
        attack = Attack(name, run, display, float(cost), "steps" in names, body.__module__, tuple(resources),
                        tuple(stages), defaults, bool(chained), member_params)
        ATTACKS.add(name, attack)
        return attack

    return wrap


def resources_of(attacks: tuple[str, ...] | list[str]) -> list[Resource]:
    """The resources these attacks need, each once, in attack order."""
    found: dict[str, Resource] = {}
    for name in attacks:
        for resource in ATTACKS.get(name).resources:
            found.setdefault(resource.name, resource)
    return list(found.values())
