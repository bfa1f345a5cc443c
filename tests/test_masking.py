"""Gradient-masking and convergence flags (benchmark/masking.py): they fire on models built to mask gradients or to
defeat one random start, and stay quiet on the session's ERM cnn, measured with the real functions on 200 (the
convergence check: 48) test images; then masking_flags on hand-built records, flag by flag."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from attacks.autoattack import MEMBERS, worst_case_stages
from benchmark.attack_runs import adversarial_accuracy, adversarial_robustness, percent
from benchmark.config import PROFILES
from benchmark.data import iterate, load_benchmark
from benchmark.evaluate import masking_probe, transfer_accuracy
from benchmark.flags import FLAGS, masking_flags
from benchmark.masking import RESTART_SEED_OFFSET, gradient_health, restart_white_box
from benchmark.store import eps_label

TABLE_EPS, LARGE_EPS = 0.02, 0.1  # the quick profile's table eps and the large eps of its checks
#: a reduced aa, small enough for the tests (perf/worst_case_cost.py sizes the profile's)
QUICK_AA = {"n_iter": 10, "n_targets": 1, "n_queries": 50}
ATTACK_FLAGS = ("transfer_beats_white_box", "square_beats_white_box", "large_eps_not_zero")


class SaturatedSoftmax(nn.Module):
    """The wrapped model's logits x 1e4: the same classifier, but float32 cross-entropy gradients vanish exactly
    on confidently classified points (the softmax rounds to one-hot)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) * 1e4


class Quantized(nn.Module):
    """The wrapped model on its input rounded to steps of 1/8 with torch.round: zero input gradients everywhere
    (shattered gradients, no straight-through estimator)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(torch.round(x * 8) / 8)


class Lottery(nn.Module):
    """The wrapped model with a flat loss (its input is detached: zero input gradient everywhere) that misreads a
    pseudo-random quarter of all inputs (those whose pixel sum, in steps of 1/255, is divisible by 4): only random
    starts break points, each start a new draw, so the one start of each of aa's white-box members leaves points
    that a second restart breaks."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        logits = self.model(x.detach() + 0 * x)
        unlucky = torch.round(x.detach() * 255).flatten(1).sum(1) % 4 == 0
        return torch.where(unlucky[:, None], logits.roll(1, dims=1), logits)


def restart(model: nn.Module, batches: list[dict[str, Tensor]], robust: Tensor, **aa: int) -> Tensor:
    """restart_white_box at the table eps, seeded as the evaluator seeds it for seed 0."""
    return restart_white_box(model, batches, robust, TABLE_EPS, n_iter=aa["n_iter"], n_targets=aa["n_targets"],
                             generator=torch.Generator().manual_seed(RESTART_SEED_OFFSET))


def measure(model: nn.Module, batches: list[dict[str, Tensor]], erm: nn.Module | None) -> dict[str, Any]:
    """The metrics an eval record would hold for the checks, measured at the table eps and the large eps (the
    convergence check on all the images)."""
    table = eps_label(TABLE_EPS)
    generator = torch.Generator().manual_seed(0)
    robust = dict.fromkeys(MEMBERS, 0)
    correct = []
    for batch in batches:
        x_adv, stages = worst_case_stages(model, batch["x"], batch["y"], TABLE_EPS, generator=generator, **QUICK_AA)
        for name in MEMBERS:
            robust[name] += stages[name].sum().item()
        with torch.no_grad():
            correct.append(model(x_adv).argmax(1) == batch["y"])
    total = sum(len(b["y"]) for b in batches)
    worst = torch.cat(correct)
    return {
        "aAcc": {"pgd": {table: adversarial_accuracy(model, batches, "pgd", TABLE_EPS, steps=10, seed=0)},
                 "aa": {table: percent(worst)}},
        "aa_stages": {table: {name: 100.0 * count / total for name, count in robust.items()}},
        "masking": {**gradient_health(model, batches),
                    "transfer_aAcc": None if erm is None else transfer_accuracy(erm, model, batches, TABLE_EPS,
                                                                                steps=10, seed=0),
                    "large_eps": LARGE_EPS,
                    "large_eps_aAcc": adversarial_accuracy(model, batches, "pgd", LARGE_EPS, steps=10, seed=0),
                    "aa_restart_base_aAcc": percent(worst),
                    "aa_restart_aAcc": percent(restart(model, batches, worst, **QUICK_AA))},
    }


@pytest.fixture(scope="module")
def shapes_batches() -> list[dict[str, Tensor]]:
    """The first 200 test images of shapes' first domain, in two batches."""
    return list(iterate(load_benchmark("shapes").domains[0].test, 100))[:2]


def test_erm_raises_no_flag(erm_cnn_on_shapes, shapes_batches) -> None:
    metrics = measure(erm_cnn_on_shapes(), shapes_batches, None)
    flags = masking_flags(metrics, table_eps=TABLE_EPS, large_eps=LARGE_EPS)
    assert flags.pop("transfer_beats_white_box") is None  # ERM is the transfer source itself
    assert not any(flags.values()), (flags, metrics)
    assert all(value is not None for value in flags.values())


def test_probe_attacks_its_first_images_and_compares_the_transfer_with_white_box_pgd_on_them(
        erm_cnn_on_shapes, shapes_batches) -> None:
    """With `probe_images` 150 of 200, the probe's three PGD-10 runs attack the first 150 images, and the transfer
    is compared with white-box PGD-10 on those images (the table PGD's run on the batches holding them, as the grid
    runs it), not with the whole split's (here a made-up 99); with `probe_images` None it attacks all."""
    source, target = erm_cnn_on_shapes(), Quantized(erm_cnn_on_shapes())
    profile = replace(PROFILES.get("quick"), probe_images=150)
    metrics = {"aAcc": {"pgd": {eps_label(TABLE_EPS): 99.0}}}
    probe = masking_probe(target, shapes_batches, metrics, profile=profile, seed=0, transfer_source=source)
    first = [shapes_batches[0], {k: v[:50] for k, v in shapes_batches[1].items()}]
    assert probe["restart_images"] is probe["aa_restart_aAcc"] is probe["flags"]["aa_not_converged"] is None
    assert probe["probe_images"] == 150
    assert probe["white_box_aAcc"] == percent(adversarial_robustness(target, shapes_batches, "pgd", TABLE_EPS,
                                                                     steps=10, seed=0)[:150])
    assert probe["transfer_aAcc"] == transfer_accuracy(source, target, first, TABLE_EPS, steps=10, seed=0)
    assert probe["large_eps_aAcc"] == adversarial_accuracy(target, first, "pgd", LARGE_EPS, steps=10, seed=0)
    assert probe["flags"]["transfer_beats_white_box"] is True  # the rounding cnn masks its gradients
    whole = masking_probe(target, shapes_batches, metrics, profile=replace(profile, probe_images=None), seed=0,
                          transfer_source=source)
    assert whole["probe_images"] == 200 and whole["white_box_aAcc"] == adversarial_accuracy(
        target, shapes_batches, "pgd", TABLE_EPS, steps=10, seed=0)


def test_probe_restarts_aa_on_the_first_images_both_attacked(erm_cnn_on_shapes, shapes_batches) -> None:
    """The convergence check runs on the first min(probe_images, half of aa's images), so that it costs at most half of
    aa: 120 of the probe's 150 when aa attacked the first 240, 150 when aa attacked 400; with aa's stated n_iter and
    n_targets, seeded apart from the grid."""
    model = Lottery(erm_cnn_on_shapes())
    profile = replace(PROFILES.get("quick"), probe_images=150)
    stated = {"n_iter": 3, "n_targets": 1, "n_queries": 50}  # aa's parameters as its record states them
    metrics = {"aAcc": {"pgd": {eps_label(TABLE_EPS): 99.0}}, "attack_budgets": {"aa": {"params": stated}}}
    for aa_images, n in ((240, 120), (400, 150)):
        robust = torch.arange(aa_images) % 3 == 0  # a made-up robust mask of aa over its images
        probe = masking_probe(model, shapes_batches, metrics, profile=profile, seed=0, transfer_source=None,
                              worst_case_robust=robust)
        assert probe["restart_images"] == n and probe["aa_restart_base_aAcc"] == percent(robust[:n])
        first = [shapes_batches[0], {k: v[:n - 100] for k, v in shapes_batches[1].items()}]
        assert probe["aa_restart_aAcc"] == percent(restart(model, first, robust[:n], **stated))


def test_a_second_restart_breaks_what_one_start_left_only_where_the_loss_is_flat(erm_cnn_on_shapes,
                                                                                  shapes_batches) -> None:
    """On 48 images at the table eps: the flat-loss Lottery cnn keeps points that aa's white-box members (5
    iterations, 1 target, one start each) left robust only by luck, and a second restart breaks more than 5 points
    of them; on the session's ERM cnn it breaks none. Either way it only ever breaks points."""
    batch = {k: v[:48] for k, v in shapes_batches[0].items()}
    aa = {"n_iter": 5, "n_targets": 1}
    found = {}
    for name, model in (("lottery", Lottery(erm_cnn_on_shapes())), ("erm", erm_cnn_on_shapes())):
        _, stages = worst_case_stages(model, batch["x"], batch["y"], TABLE_EPS,
                                      generator=torch.Generator().manual_seed(0), n_queries=1, **aa)
        base = stages["apgd-t"]  # what aa's white-box members left robust
        after = restart(model, [batch], base, **aa)
        assert not (after & ~base).any()
        found[name] = {"aa_restart_base_aAcc": percent(base), "aa_restart_aAcc": percent(after)}
    assert found["lottery"]["aa_restart_aAcc"] < found["lottery"]["aa_restart_base_aAcc"] - 5, found
    assert found["erm"]["aa_restart_aAcc"] == found["erm"]["aa_restart_base_aAcc"], found
    assert flags_of({"masking": found["lottery"]})["aa_not_converged"] is True
    assert flags_of({"masking": found["erm"]})["aa_not_converged"] is False


@pytest.mark.parametrize("wrapper", [SaturatedSoftmax, Quantized])
def test_masking_models_raise_flags(erm_cnn_on_shapes, shapes_batches, wrapper: type[nn.Module]) -> None:
    """PGD-10 stays high on the wrapped cnn while the transfer attack from the plain cnn or aa's later members
    break it; the zero-gradient check and at least one attack-based check say so."""
    erm = erm_cnn_on_shapes()
    metrics = measure(wrapper(copy.deepcopy(erm)), shapes_batches, erm)
    flags = masking_flags(metrics, table_eps=TABLE_EPS, large_eps=LARGE_EPS)
    table = eps_label(TABLE_EPS)
    assert metrics["masking"]["zero_grad_share"] > 50, metrics
    broken = min(metrics["masking"]["transfer_aAcc"], metrics["aa_stages"][table]["square"])
    assert metrics["aAcc"]["pgd"][table] > broken + 10, metrics
    assert flags["zero_gradients"] and any(flags[name] for name in ATTACK_FLAGS), (flags, metrics)


def test_gradient_health_counts_zero_and_nonfinite_images() -> None:
    """A linear model whose gradient is zero on images whose first pixel is 0 (ReLU-gated) and NaN on one with a
    NaN pixel."""

    class Gated(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            gate = torch.relu(x[:, :1, :1, :1].flatten(1))
            return torch.cat([gate * x.flatten(1).sum(1, keepdim=True), torch.zeros_like(gate)], 1)

    x = torch.rand(4, 3, 2, 2)
    x[:2, 0, 0, 0] = 0.0
    x[3, 1, 1, 1] = float("nan")
    health = gradient_health(Gated(), [{"x": x, "y": torch.tensor([1, 1, 1, 1])}])
    assert health == {"zero_grad_share": 50.0, "nonfinite_grad_share": 25.0}


def healthy() -> dict[str, Any]:
    """A record on which no check fires: aa a little below PGD, Square adds nothing, accuracy falls with eps."""
    return {
        "aAcc": {"pgd": {"0": 90.0, "0.01": 60.0, "0.02": 40.0}, "aa": {"0": 90.0, "0.02": 37.0},
                 "square": {"0.02": 45.0}, "apgd-ce": {"0.02": 38.0}},
        "aa_stages": {"0.02": {"apgd-ce": 38.0, "apgd-t": 37.1, "square": 37.0}},
        "chain_check": {"aa": {"eps": "0.02", "independent_aAcc": 37.0, "chain_aAcc": 36.6}},
        "masking": {"zero_grad_share": 0.0, "nonfinite_grad_share": 0.0, "transfer_aAcc": 70.0,
                    "large_eps": 0.1, "large_eps_aAcc": 1.0, "restart_images": 256, "aa_restart_base_aAcc": 37.0,
                    "aa_restart_aAcc": 36.5},
    }


def flags_of(metrics: dict[str, Any]) -> dict[str, bool | None]:
    return masking_flags(metrics, table_eps=0.02, large_eps=0.1)


def test_healthy_record_raises_nothing() -> None:
    flags = flags_of(healthy())
    assert list(flags) == [flag.name for flag in FLAGS]
    assert flags == dict.fromkeys(flags, False)


def _set(metrics: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = metrics
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return metrics


@pytest.mark.parametrize(("flag", "path", "fires", "quiet", "also"), [
    ("square_beats_white_box", ("aa_stages", "0.02", "square"), 36.8, 36.95, ()),
    ("square_beats_white_box", ("aAcc", "square", "0.02"), 37.7, 37.9, ()),  # standalone, below apgd-ce's 38
    ("aa_far_below_pgd", ("aAcc", "aa", "0.02"), 34.9, 35.1, ()),
    ("non_monotone_eps", ("aAcc", "pgd", "0.01"), 91.1, 90.9, ()),  # above eps 0's 90
    # aa's independent run at the table eps keeps more than 1 point that a smaller eps broke (its chain: 36.6)
    ("non_monotone_eps", ("chain_check", "aa", "independent_aAcc"), 37.7, 37.5, ()),
    # pgd's large eps above 0.02's 40 (so also far from zero)
    ("non_monotone_eps", ("masking", "large_eps_aAcc"), 41.1, 40.9, ("large_eps_not_zero",)),
    ("large_eps_not_zero", ("masking", "large_eps_aAcc"), 5.1, 4.9, ()),
    ("zero_gradients", ("masking", "zero_grad_share"), 5.1, 4.9, ()),
    ("zero_gradients", ("masking", "nonfinite_grad_share"), 5.1, 4.9, ()),
    ("transfer_beats_white_box", ("masking", "transfer_aAcc"), 38.9, 39.1, ()),
    ("aa_not_converged", ("masking", "aa_restart_aAcc"), 35.9, 36.1, ()),  # a restart gains more than 1 of 37
])
def test_each_flag_fires_past_its_threshold_only(flag: str, path: tuple[str, ...], fires: float, quiet: float,
                                                  also: tuple[str, ...]) -> None:
    loud = flags_of(_set(healthy(), path, fires))
    assert {name for name, value in loud.items() if value} == {flag, *also}
    calm = flags_of(_set(healthy(), path, quiet))
    assert calm[flag] is False and {name for name, value in calm.items() if value} == set(also)


def test_flags_are_none_without_their_data() -> None:
    assert flags_of({}) == dict.fromkeys(flags_of({}), None)
    bare = {"aAcc": {"pgd": {"0.02": 40.0}}}
    assert flags_of(bare) == dict.fromkeys(flags_of(bare), None)  # one eps: no monotonicity to check
    erm = _set(healthy(), ("masking", "transfer_aAcc"), None)
    assert flags_of(erm)["transfer_beats_white_box"] is None
    no_aa = _set(healthy(), ("masking", "aa_restart_aAcc"), None)  # aa did not run at the table eps
    assert flags_of(no_aa)["aa_not_converged"] is None
    other_large = _set(healthy(), ("masking", "large_eps"), 0.3)  # measured at another large eps
    assert flags_of(other_large)["large_eps_not_zero"] is None


def test_markers_and_names_are_distinct() -> None:
    assert len({f.name for f in FLAGS}) == len({f.marker for f in FLAGS}) == len(FLAGS)
    assert all(f.meaning and "\n" not in f.meaning for f in FLAGS)


def test_aa_gap_counts_at_the_table_eps_only() -> None:
    """On the steep part of an undefended curve (eps 0.01 here) a stronger attack gains more than 5 points without any
    masking; Table I puts AA beside PGD-10 at the table eps, and that is where the gap is checked."""
    metrics = healthy()
    metrics["aAcc"]["aa"]["0.01"] = 50.0  # 10 below PGD-10's 60 at eps 0.01
    assert flags_of(metrics)["aa_far_below_pgd"] is False
