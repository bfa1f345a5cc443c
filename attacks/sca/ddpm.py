"""A pixel-space DDPM (Ho et al. 2020) on a short strided schedule: the generator behind SCA.

Images in [0, 1] are mapped to [-1, 1]. The noise schedule is DDPM's (T = 1000, betas linear from
1e-4 to 0.02), but the chain is run on `sample_steps` strided timesteps t_0 = 999 > ... > t_{N-1},
ending at t_N = 0 where the image lives, with the DDPM posterior of the strided chain and eta = 1:

    x0_hat = clamp((x_t - sqrt(1 - a_t) eps) / sqrt(a_t), -1, 1),  eps' = (x_t - sqrt(a_t) x0_hat) / sqrt(1 - a_t)
    var = (1 - a_p) / (1 - a_t) * (1 - a_t / a_p)
    x_p = sqrt(a_p) x0_hat + sqrt(1 - a_p - var) eps' + sqrt(var) z

(a = alpha-bar, p = the next strided timestep), exactly the step that edit-friendly inversion
inverts. x0_hat is clipped to the image range as in DDPM's sampler (Ho et al.'s clip_denoised):
at t = 999, 1 / sqrt(a_t) = 157 turns a small error of a CPU-sized model into saturated samples.
Ending at t = 0 (a_0 = 1 - beta_0) instead of a = 1 keeps sqrt(var) > 0 at the last step, so the
last noise map can absorb the model's error and the inversion is exact. A short chain keeps SCA
affordable: every attack iteration backpropagates through the chain's UNet calls. The UNet is
trained only at the N timesteps the chain uses (no other timestep is ever evaluated).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from attacks.sca.unet import UNet
from benchmark.data.base import endless
from benchmark.registry import UserError


@dataclass(frozen=True)
class DDPMConfig:
    """Everything that determines a trained DDPM (part of its cache key)."""

    channels: tuple[int, ...] = (32, 64, 64)
    patch: int = 2
    train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sample_steps: int = 10
    steps: int = 800
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def to_model_space(x: Tensor) -> Tensor:
    """Pixels in [0, 1] -> the DDPM's [-1, 1]."""
    return x * 2 - 1


def to_pixels(x: Tensor) -> Tensor:
    """The DDPM's [-1, 1] -> pixels (not clamped: an exact reconstruction needs no clamp)."""
    return (x + 1) / 2


class Diffusion(nn.Module):
    """The epsilon-prediction UNet plus the strided schedule it runs on."""

    def __init__(self, config: DDPMConfig = DDPMConfig()):
        super().__init__()
        self.config = config
        self.unet = UNet(config.channels, config.patch)
        betas = torch.linspace(config.beta_start, config.beta_end, config.train_timesteps, dtype=torch.float64)
        alpha_bar = torch.cumprod(1 - betas, dim=0)
        timesteps = torch.linspace(config.train_timesteps - 1, 0, config.sample_steps + 1).round().long()
        a_t, a_p = alpha_bar[timesteps[:-1]], alpha_bar[timesteps[1:]]
        var = (1 - a_p) / (1 - a_t) * (1 - a_t / a_p)
        # Coefficients in float64, stored as float32; the last entry of `timesteps` (0) is the image's level.
        self.register_buffer("timesteps", timesteps, persistent=False)
        self.register_buffer("alpha_bar", alpha_bar[timesteps].float(), persistent=False)
        self.register_buffer("sqrt_a_t", a_t.sqrt().float(), persistent=False)
        self.register_buffer("sqrt_1m_a_t", (1 - a_t).sqrt().float(), persistent=False)
        self.register_buffer("sqrt_a_p", a_p.sqrt().float(), persistent=False)
        self.register_buffer("eps_coef", (1 - a_p - var).sqrt().float(), persistent=False)
        self.register_buffer("sigma", var.sqrt().float(), persistent=False)

    @property
    def steps(self) -> int:
        """Number of steps of the sampling chain (N)."""
        return self.config.sample_steps

    def noised(self, x0: Tensor, level: int, noise: Tensor) -> Tensor:
        """x at the chain's level `level` (0 = t_0 = T - 1, N = the image): sqrt(a) x0 + sqrt(1 - a) noise."""
        a = self.alpha_bar[level]
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def posterior(self, x_t: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of x at level step + 1 given x_t at level `step` (eta = 1)."""
        t = self.timesteps[step].expand(len(x_t))
        eps = self.unet(x_t, t)
        x0_hat = ((x_t - self.sqrt_1m_a_t[step] * eps) / self.sqrt_a_t[step]).clamp(-1, 1)
        eps = (x_t - self.sqrt_a_t[step] * x0_hat) / self.sqrt_1m_a_t[step]
        return self.sqrt_a_p[step] * x0_hat + self.eps_coef[step] * eps, self.sigma[step]

    def generate(self, x_start: Tensor, noises: Tensor, start: int = 0) -> Tensor:
        """Run the chain from x at level `start` to the image with per-step noise maps (N - start, B, C, H, W)."""
        x = x_start
        for step in range(start, self.steps):
            mean, sigma = self.posterior(x, step)
            x = mean + sigma * noises[step - start]
        return x

    @torch.no_grad()
    def sample(self, n: int, image_size: int, generator: torch.Generator | None = None) -> Tensor:
        """n fresh samples as pixels in [0, 1] (for looking at what the model learned)."""
        device = self.sigma.device
        shape = (self.steps + 1, n, 3, image_size, image_size)
        noise = torch.randn(shape, generator=generator, device=device if generator is None else generator.device)
        noise = noise.to(device)
        return to_pixels(self.generate(noise[0], noise[1:])).clamp(0, 1)

    def loss(self, x0: Tensor, generator: torch.Generator) -> Tensor:
        """Epsilon-prediction MSE at uniformly drawn chain timesteps (images in [-1, 1])."""
        gen_device = generator.device
        level = torch.randint(0, self.steps, (len(x0),), generator=generator, device=gen_device).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=gen_device).to(x0.device)
        a = self.alpha_bar[level].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        return F.mse_loss(self.unet(x_t, self.timesteps[level]), noise)


@dataclass(frozen=True)
class TrainedDDPM:
    """A trained DDPM with its training time and final loss (averaged over the last 50 steps)."""

    diffusion: Diffusion
    train_time_s: float
    final_loss: float


def train_ddpm(config: DDPMConfig, dataset: Dataset, *, device: torch.device | str = "cpu", progress: bool = True,
               desc: str = "ddpm") -> TrainedDDPM:
    """Train a DDPM on the images of `dataset` (dict items with "x" in [0, 1]) with Adam, from a fixed seed."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global CPU RNG left as it was
        torch.random.default_generator.manual_seed(config.seed)
        diffusion = Diffusion(config)
    diffusion.to(device).train()
    generator = torch.Generator().manual_seed(config.seed)
    batches = endless(dataset, config.batch_size, generator)
    optimizer = torch.optim.Adam(diffusion.parameters(), lr=config.lr)
    # Cosine decay to 0 over the run: a short run still ends with a settled model.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / config.steps)))
    recent: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(config.steps), desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for step in bar:
        x0 = to_model_space(next(batches)["x"].to(device))
        loss = diffusion.loss(x0, generator)
        if not math.isfinite(loss.item()):
            raise UserError(f"DDPM loss is {loss.item()} at step {step}; lower the DDPM learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(diffusion.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        recent = (recent + [loss.item()])[-50:]
        bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
    diffusion.eval()
    return TrainedDDPM(diffusion, time.perf_counter() - start, sum(recent) / max(len(recent), 1))
