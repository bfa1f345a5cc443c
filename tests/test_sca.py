"""SCA: exact edit-friendly inversion, attack invariants, the DDPM cache, and a real effect on a trained cnn."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from attacks import ATTACKS
from attacks.sca import cache as ddpm_cache
from attacks.sca.attack import sca
from attacks.sca.ddpm import DDPMConfig, Diffusion, train_ddpm
from attacks.sca.inversion import invert, regenerate
from attacks.sca.unet import UNet
from benchmark.cli import diffusion as diffusion_command
from benchmark.data import iterate, load_benchmark
from benchmark.models import build_model
from benchmark.registry import UserError

TINY = DDPMConfig(channels=(8, 16), steps=3, batch_size=8)


def _untrained(config: DDPMConfig = TINY, seed: int = 0) -> Diffusion:
    torch.manual_seed(seed)
    return Diffusion(config).eval()


@pytest.fixture(scope="module")
def shapes():
    return load_benchmark("shapes")


@pytest.fixture(scope="module")
def setup(shapes) -> tuple[nn.Module, Diffusion, Tensor, Tensor]:
    torch.manual_seed(0)
    model = build_model("cnn", shapes.num_classes, dropout=0.2)
    batch = next(iterate(shapes.domains[0].test, 6))
    return model, _untrained(), batch["x"], batch["y"]


def test_registered_with_the_common_interface() -> None:
    assert "sca" in ATTACKS and ATTACKS.get("sca") is sca


@pytest.mark.parametrize("start", [0, 7, 9])
def test_inversion_then_regeneration_reproduces_x_with_an_untrained_unet(shapes, start: int) -> None:
    diffusion = _untrained(DDPMConfig(), seed=start)
    x = torch.cat([next(iterate(shapes.domains[0].test, 4))["x"], torch.rand(2, 3, 32, 32)])
    x[0, :, :3] = 0.0
    x[1, :, :3] = 1.0
    x_start, zs = invert(diffusion, x, torch.Generator().manual_seed(1), start)
    assert x_start.shape == x.shape and zs.shape == (10 - start, *x.shape)
    with torch.no_grad():
        assert (regenerate(diffusion, x_start, zs) - x).abs().max() < 1e-4


def test_chain_schedule() -> None:
    diffusion = Diffusion(DDPMConfig(sample_steps=10))
    assert diffusion.timesteps.tolist() == [999, 899, 799, 699, 599, 500, 400, 300, 200, 100, 0]
    assert (diffusion.sigma > 0).all() and diffusion.alpha_bar[-1] > 0.999


def test_eps_zero_returns_x_exactly_even_without_a_ddpm(setup) -> None:
    model, diffusion, x, y = setup
    for kwargs in ({}, {"diffusion": diffusion}):
        out = sca(model, x, y, 0.0, **kwargs)
        assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("eps", [0.01, 0.04, 0.3])
def test_outputs_stay_in_budget_and_range(setup, eps: float) -> None:
    model, diffusion, x, y = setup
    out = sca(model, x, y, eps, generator=torch.Generator().manual_seed(0), diffusion=diffusion, steps=2)
    assert out.shape == x.shape and not out.requires_grad
    assert (out - x).abs().max() <= eps + 1e-6 and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)


def test_same_seed_same_output_and_modes_restored(setup) -> None:
    model, diffusion, x, y = setup
    model.train()
    model.fc.eval()
    diffusion.train()
    outs = [sca(model, x, y, 0.03, generator=torch.Generator().manual_seed(s), diffusion=diffusion, steps=2)
            for s in (5, 5, 6)]
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])
    assert model.training and not model.fc.training and diffusion.training
    assert all(p.grad is None for p in [*model.parameters(), *diffusion.parameters()])
    model.eval()
    diffusion.eval()


def test_bad_input_is_a_user_error(setup) -> None:
    model, diffusion, x, y = setup
    with pytest.raises(UserError, match="needs the DDPM"):
        sca(model, x, y, 0.02)
    with pytest.raises(UserError, match="skip"):
        sca(model, x, y, 0.02, diffusion=diffusion, skip=1.0)
    with pytest.raises(UserError, match="steps"):
        sca(model, x, y, 0.0, steps=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sca(model, x * 2 - 1, y, 0.02, diffusion=diffusion)


def test_unet_handles_large_images() -> None:
    net = UNet(ddpm_cache.LARGE_DDPM.channels, ddpm_cache.LARGE_DDPM.patch)
    with torch.no_grad():
        assert net(torch.randn(1, 3, 224, 224), torch.tensor([500])).shape == (1, 3, 224, 224)


def test_ddpm_is_trained_once_and_cached(shapes, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EGAT_BENCH_CACHE", str(tmp_path))
    first = ddpm_cache.load_or_train_ddpm(shapes, config=TINY, progress=False)
    path = ddpm_cache.ddpm_path(shapes, TINY)
    assert path.is_file() and path.with_suffix(".json").is_file() and path.parent == tmp_path / "ddpm"
    stamp = path.stat().st_mtime_ns
    second = ddpm_cache.load_or_train_ddpm(shapes, config=TINY, progress=False)
    assert path.stat().st_mtime_ns == stamp and not second.training
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert ddpm_cache.ddpm_path(shapes, DDPMConfig(channels=(8, 16), steps=4, batch_size=8)) != path


def test_ddpm_training_is_seeded_and_leaves_the_global_rng_alone(shapes) -> None:
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    first = train_ddpm(TINY, shapes.domains[0].train, progress=False)
    assert torch.equal(torch.rand(1), expected)
    second = train_ddpm(TINY, shapes.domains[0].train, progress=False)
    for a, b in zip(first.diffusion.state_dict().values(), second.diffusion.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert first.train_time_s > 0 and first.final_loss > 0 and not first.diffusion.training


def test_train_command_rejects_unknown_datasets(capsys) -> None:
    assert diffusion_command.main(["train", "--dataset", "imagenet"]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(erm_cnn_on_shapes, ddpm_on_shapes) -> tuple[nn.Module, Diffusion]:
    """Copies of the session's quick ERM cnn and briefly trained small DDPM (conftest), both trained on the
    first domain of `shapes`."""
    return erm_cnn_on_shapes(), ddpm_on_shapes()


def test_inversion_is_exact_with_a_trained_ddpm(shapes, trained) -> None:
    _, diffusion = trained
    x = next(iterate(shapes.domains[1].test, 16))["x"]
    for start in (0, 7):
        x_start, zs = invert(diffusion, x, torch.Generator().manual_seed(0), start)
        with torch.no_grad():
            assert (regenerate(diffusion, x_start, zs) - x).abs().max() < 1e-4


def test_sca_hurts_an_erm_cnn_more_than_uniform_noise(shapes, trained) -> None:
    model, diffusion = trained
    batch = next(iterate(shapes.domains[0].test, 128))
    x, y = batch["x"], batch["y"]
    eps = 0.04
    generator = torch.Generator().manual_seed(0)
    noisy = (x + torch.empty_like(x).uniform_(-eps, eps, generator=generator)).clamp(0, 1)
    x_adv = sca(model, x, y, eps, generator=generator, diffusion=diffusion)
    with torch.no_grad():
        clean, noise, attacked = ((model(v).argmax(1) == y).float().mean().item() * 100 for v in (x, noisy, x_adv))
    assert clean > 60, clean
    assert attacked < noise - 5, (clean, noise, attacked)
