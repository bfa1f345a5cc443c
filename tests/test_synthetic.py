"""The built-in benchmarks: determinism, exact masks, disjoint glyphs, and a spurious background cue
that works in-domain and fails on other domains."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from benchmark.data import iterate, load_benchmark
from benchmark.data.synthetic import (
    DIGIT_DOMAINS,
    ENV_AGREEMENT,
    SHAPE_DOMAINS,
    STRESS_DOMAINS,
    digit_glyph_split,
    domain_arrays,
    generate_digits,
    generate_shapes,
)
from benchmark.dataset_card import cue_class, guide_mask_correlation

GENERATORS = [(generate_shapes, d) for d in range(4)] + [(generate_digits, d) for d in range(4)]
#: every domain of the two benchmarks, whose arrays (as generated, 5000 images each) the tests read from the run's
#: cache, which loading the benchmarks fills anyway: generating a part of them again costs seconds per domain
DOMAINS = [("shapes", d) for d in range(len(SHAPE_DOMAINS))] + [("digits", d) for d in range(len(DIGIT_DOMAINS))]


@pytest.mark.parametrize(("generate", "domain"), GENERATORS)
def test_same_seed_gives_identical_arrays(generate, domain):
    a, b = generate(domain, seed=3, n=64), generate(domain, seed=3, n=64)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    other = generate(domain, seed=4, n=64)
    assert not np.array_equal(a["images"], other["images"])


@pytest.mark.parametrize(("generate", "domain"), GENERATORS)
def test_masks_cover_exactly_the_object(generate, domain):
    """The image differs from the background it was painted on exactly where the mask is."""
    arrays = generate(domain, n=200)
    painted = (arrays["images"] != arrays["backgrounds"]).any(axis=1)
    np.testing.assert_array_equal(painted, arrays["masks"][:, 0])
    assert arrays["masks"].reshape(200, -1).any(axis=1).all(), "every image has an object"


def test_digit_domains_share_no_glyph():
    parts = digit_glyph_split()
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            assert not set(parts[i]) & set(parts[j])
    for domain in range(len(DIGIT_DOMAINS)):
        used = set(generate_digits(domain, n=300)["glyph_ids"])
        assert used <= set(parts[domain])


def _background_colour(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour of the background pixels only (object masked out), per image."""
    items = [dataset[i] for i in range(len(dataset))]
    x = np.stack([it["x"].numpy() for it in items])
    keep = 1 - np.stack([it["mask"].numpy() for it in items])
    features = (x * keep).sum(axis=(2, 3)) / keep.sum(axis=(2, 3))
    return features, np.array([int(it["y"]) for it in items])


@pytest.mark.parametrize("name", ["shapes", "digits"])
def test_background_alone_predicts_class_in_domain_but_not_across(name):
    bench = load_benchmark(name)
    chance = 1 / bench.num_classes
    train_x, train_y = _background_colour(bench.domains[0].train)
    classifier = LogisticRegression(max_iter=2000).fit(train_x, train_y)
    in_domain = classifier.score(*_background_colour(bench.domains[0].test))
    assert in_domain > chance + 0.4, f"the spurious cue should work in-domain ({in_domain:.2f})"
    for other in bench.domains[1:]:
        across = classifier.score(*_background_colour(other.test))
        assert across < chance + 0.1, f"the cue must not transfer to {other.name} ({across:.2f})"


def test_benchmarks_have_named_domains_and_exact_splits():
    for name, domains in (("shapes", SHAPE_DOMAINS), ("digits", DIGIT_DOMAINS)):
        bench = load_benchmark(name)
        assert tuple(bench.domain_names()) == domains
        for domain in bench.domains:
            n = len(domain.full)
            assert (len(domain.train), len(domain.val), len(domain.test)) == (0.6 * n, 0.2 * n, 0.2 * n)
            split = set(domain.train.indices) | set(domain.val.indices) | set(domain.test.indices)
            assert split == set(range(n))


@pytest.mark.parametrize(("name", "domain"), DOMAINS)
def test_cue_lives_on_background_pixels_only_and_twins_share_the_object(name, domain):
    """Assumption 3 exactly: the cue-free twin differs from the image only off the object (zero leakage)."""
    arrays = domain_arrays(name, domain)
    differs = (arrays["images"] != arrays["cue_free"]).any(axis=1)
    assert not (differs & arrays["masks"][:, 0]).any()
    assert differs.any(axis=(1, 2)).mean() > 0.7  # most twins do carry another tint


@pytest.mark.parametrize("name, n_classes", [("shapes", 5), ("digits", 10)])
def test_environments_agree_with_the_class_at_their_declared_rates(name, n_classes):
    """IRM's and DM-ADA's environments come from the data: the two environments' cue agreement differs as declared."""
    arrays = domain_arrays(name, 0)
    agree = cue_class(arrays["cue"], 0, n_classes) == arrays["labels"]
    rates = [agree[arrays["envs"] == e].mean() for e in (0, 1)]
    for measured, declared in zip(rates, ENV_AGREEMENT, strict=True):
        # the agreeing share plus the random draws that hit the class by chance
        expected = declared + (1 - declared) / n_classes
        assert abs(measured - expected) < 0.03, (measured, expected)
    assert rates[0] > rates[1] + 0.05


def test_environments_of_a_batch_are_the_datas():
    import torch

    from methods.environments import environments

    bench = load_benchmark("shapes")
    batch = next(iter(iterate(bench.domains[0].train, 64)))
    envs = environments(batch, shift_strength=0.3)
    assert [e.env_id for e in envs] == [0, 1]
    assert sum(len(e.y) for e in envs) == 64
    for env in envs:
        assert torch.equal(env.x, batch["x"][batch["env"] == env.env_id])  # the images themselves, not copies


@pytest.mark.parametrize(("name", "domain"), DOMAINS)
def test_the_grey_guide_points_at_the_object_except_in_the_stress_domain(name, domain):
    style = (SHAPE_DOMAINS if name == "shapes" else DIGIT_DOMAINS)[domain]
    arrays = domain_arrays(name, domain)
    corr = float(guide_mask_correlation(arrays["images"].astype(float) / 255, arrays["masks"][:, 0]).mean())
    if style in STRESS_DOMAINS:
        assert -0.1 <= corr <= 0.1, corr
    else:
        assert corr >= 0.2, corr
