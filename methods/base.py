"""The method contract, its declaration and the registry of methods.

A method is a class `Method(model, hparams, *, has_masks)` with `loss(batch, step) -> (loss, logs)`
(the one training loop lives in benchmark/train.py), declared once with `@register_method(...)`:
its display name, its default hyperparameters (the paper profile's values), the ranges a
hyperparameter sweep may draw them from, and how smaller profiles scale it. A variant (the same
class under other hyperparameters, e.g. `egat-noegl`) is one `register_variant(...)` call.

Profiles add one rule of their own: methods that train on PGD (their hyperparameters have
`pgd_steps`) take the profile's `training_pgd` settings. Resolution order: the declaration's
defaults, the profile's training-PGD rule, the declaration's scaling for that profile, the values a
hyperparameter sweep selected (benchmark/tuned.py), then the user's `--hparams` overrides. Adding a
method is one file with one decorated class.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from benchmark.registry import Range, Registry, UserError

if TYPE_CHECKING:
    from benchmark.config import Profile
    from benchmark.models import Classifier


class Method:
    """Base class of training objectives."""

    #: step at which the loop re-creates the optimizer (IRM's anneal switch), or None
    reset_optimizer_at: int | None = None

    def __init__(self, model: Classifier, hparams: dict, *, has_masks: bool = False) -> None:
        self.model = model
        self.hparams = hparams
        self.has_masks = has_masks
        self.extra = nn.ModuleDict()

    def parameters(self) -> Iterator[nn.Parameter]:
        """Everything the optimizer updates: the model and any extra modules."""
        yield from self.model.parameters()
        yield from self.extra.parameters()

    def train(self) -> None:
        """Put the model and extra modules in training mode."""
        self.model.train()
        self.extra.train()

    def loss(self, batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        """The training loss on one batch and the scalars worth logging."""
        raise NotImplementedError


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its class and everything declared beside it. Calling it builds the method."""

    name: str
    cls: type[Method]
    display: str
    #: default hyperparameters (the paper profile's values)
    hparams: Mapping[str, Any]
    #: hyperparameter -> the range a sweep may draw it from
    search: Mapping[str, Range] = field(default_factory=dict)
    #: profile name -> hyperparameters that profile sets instead (budgets scaled to the run)
    scaled: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: profile name -> search ranges that profile uses instead (ranges scaled to the run)
    scaled_search: Mapping[str, Mapping[str, Range]] = field(default_factory=dict)
    #: the method this one is a variant of (register_variant), None for a method of its own
    parent: str | None = None

    def search_space(self, profile: str) -> dict[str, Range]:
        """The ranges a sweep draws this method's hyperparameters from under `profile`."""
        return {**self.search, **self.scaled_search.get(profile, {})}

    @property
    def trains_on_pgd(self) -> bool:
        """Whether it crafts PGD examples while training (the profiles' training-PGD rule applies)."""
        return "pgd_steps" in self.hparams

    def __call__(self, model: Classifier, hparams: dict[str, Any], *, has_masks: bool = False) -> Method:
        return self.cls(model, hparams, has_masks=has_masks)


METHODS: Registry[MethodSpec] = Registry("method")


def _checked(spec: MethodSpec) -> MethodSpec:
    """The spec, or a UserError saying how it breaks the method contract."""
    if not (isinstance(spec.cls, type) and issubclass(spec.cls, Method)):
        raise UserError(f"method {spec.name!r} breaks the method contract: {spec.cls!r} is not a subclass of "
                        "methods.Method")
    if spec.cls.loss is Method.loss:
        raise UserError(f"method {spec.name!r} breaks the method contract: {spec.cls.__name__} does not define "
                        "loss(batch, step)")
    try:
        json.dumps(dict(spec.hparams))
    except TypeError as err:
        raise UserError(f"method {spec.name!r}: hyperparameters must be JSON values (they are hashed into job keys): "
                        f"{err}") from None
    for where, keys in (("search", spec.search), *((f"scaled[{p}]", s) for p, s in spec.scaled.items()),
                        *((f"scaled_search[{p}]", s) for p, s in spec.scaled_search.items())):
        unknown = sorted(set(keys) - set(spec.hparams))
        if unknown:
            raise UserError(f"method {spec.name!r}: {where} names {', '.join(unknown)}, which are not among its "
                            f"hyperparameters ({', '.join(spec.hparams) or 'none'})")
    for name, space in (("search", spec.search), *((f"scaled_search[{p}]", s) for p, s in spec.scaled_search.items())):
        for key, bounds in space.items():
            _check_range_type(spec.name, name, key, bounds, spec.hparams[key])
    return spec


def _check_range_type(method: str, where: str, key: str, bounds: Range, default: Any) -> None:
    """A UserError unless the range can produce values of the hyperparameter's type (bounds must be a Range)."""
    if not isinstance(bounds, Range):
        raise UserError(f"method {method!r}: {where}[{key!r}] must be a methods.Range, got {bounds!r}")
    if isinstance(default, bool) or not isinstance(default, int | float):
        raise UserError(f"method {method!r}: {where}[{key!r}] is a numeric range but {key} is "
                        f"{type(default).__name__} {default!r}; only int and float hyperparameters can be searched")
    if isinstance(default, int) and not bounds.integer:
        raise UserError(f"method {method!r}: {where}[{key!r}] draws floats but {key} is an int ({default!r}); "
                        "declare Range(..., integer=True)")
    if isinstance(default, float) and bounds.integer:
        raise UserError(f"method {method!r}: {where}[{key!r}] draws integers but {key} is a float ({default!r})")


def register_method(name: str, *, display: str, hparams: Mapping[str, Any] | None = None,
                    search: Mapping[str, Range] | None = None,
                    scaled: Mapping[str, Mapping[str, Any]] | None = None,
                    scaled_search: Mapping[str, Mapping[str, Range]] | None = None,
                    ) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: register the class as method `name` with its declaration (see MethodSpec)."""

    def add(cls: type[Method]) -> type[Method]:
        METHODS.add(name, _checked(MethodSpec(name, cls, display, dict(hparams or {}), dict(search or {}),
                                              dict(scaled or {}), dict(scaled_search or {}))))
        return cls

    return add


def register_variant(name: str, of: str, *, display: str, hparams: Mapping[str, Any],
                     scaled: Mapping[str, Mapping[str, Any]] | None = None) -> MethodSpec:
    """Register `of`'s class under `name` with some hyperparameters changed: one declaration per variant.

    The variant keeps the parent's search ranges except for the hyperparameters it fixes, and its
    scaling per profile extends the parent's."""
    parent = METHODS.get(of)
    merged = {p: {**parent.scaled.get(p, {}), **(scaled or {}).get(p, {})}
              for p in {*parent.scaled, *(scaled or {})}}
    scaled_search = {p: {k: r for k, r in space.items() if k not in hparams}
                     for p, space in parent.scaled_search.items()}
    spec = _checked(MethodSpec(name, parent.cls, display, {**parent.hparams, **hparams},
                               {k: r for k, r in parent.search.items() if k not in hparams}, merged, scaled_search,
                               parent=of))
    METHODS.add(name, spec)
    return spec


def _parse_value(text: str, default: Any, where: str) -> Any:
    """A CLI value parsed as JSON (bare words stay strings) and checked against the default's type."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    expected = type(default)
    if default is None or isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise UserError(f"{where}={text!r} must be a {expected.__name__} like its default {default!r}")


def method_hparams(method: str, profile: Profile, overrides: dict[str, str] | None = None, *,
                   tuned: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Hyperparameters of `method` under `profile` (see the module docstring), then `tuned` values (a sweep's
    selection, benchmark/tuned.py), user overrides (CLI strings) last."""
    spec = METHODS.get(method)
    hparams = copy.deepcopy(dict(spec.hparams))
    if spec.trains_on_pgd:
        hparams.update(profile.training_pgd)
    hparams.update(copy.deepcopy(dict(spec.scaled.get(profile.name, {}))))
    hparams.update({k: v for k, v in (tuned or {}).items() if k in hparams})
    for key, text in (overrides or {}).items():
        if key not in hparams:
            valid = ", ".join(hparams) or "none"
            raise UserError(f"unknown hyperparameter {key!r} for method {method}; valid choices: {valid}")
        hparams[key] = _parse_value(text, hparams[key], f"{method}.{key}")
    return hparams
