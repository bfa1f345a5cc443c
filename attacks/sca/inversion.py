"""Edit-friendly DDPM inversion (Huberman-Spiegelglas et al., CVPR 2024) on the strided chain.

x_t = sqrt(a_t) x0 + sqrt(1 - a_t) n_t is drawn *independently* for every level of the chain (not a
Markov chain), then the noise map of each step is whatever makes the DDPM sampler land on the next
drawn x: z_t = (x_prev - mu_t(x_t)) / sigma_t. Running `Diffusion.generate` from x_T with these z_t
reproduces x0. Unlike the reference code, mu_t is evaluated on the chain's own regenerated x_t (the
"correction" carried forward), so the sampler repeats the very same operations and the
reconstruction error is one rounding of the last step (~1e-7), with any UNet, trained or not.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attacks.sca.ddpm import Diffusion, to_model_space, to_pixels


@torch.no_grad()
def invert(diffusion: Diffusion, x: Tensor, generator: torch.Generator | None = None,
           start: int = 0) -> tuple[Tensor, Tensor]:
    """x at chain level `start` (B, C, H, W) and noise maps z (N - start, B, C, H, W) that regenerate x in [0, 1].

    The independent noises n_t come from `generator` (the global RNG when None), so the same seed
    gives the same inversion. `start` > 0 skips the noisiest levels (edit-friendly inversion's skip).
    """
    x0 = to_model_space(x)
    device = x.device if generator is None else generator.device
    shape = (diffusion.steps - start,) + tuple(x0.shape)
    noise = torch.randn(shape, generator=generator, device=device).to(x.device)
    x_start = diffusion.noised(x0, start, noise[0])
    zs = torch.empty_like(noise)
    x_t = x_start
    for step in range(start, diffusion.steps):
        level = step + 1
        target = x0 if level == diffusion.steps else diffusion.noised(x0, level, noise[level - start])
        mean, sigma = diffusion.posterior(x_t, step)
        zs[step - start] = (target - mean) / sigma
        x_t = mean + sigma * zs[step - start]
    return x_start, zs


def regenerate(diffusion: Diffusion, x_start: Tensor, zs: Tensor) -> Tensor:
    """Pixels (not clamped) the sampler produces from x at level N - len(zs) with fixed noise maps; differentiable."""
    return to_pixels(diffusion.generate(x_start, zs, diffusion.steps - len(zs)))
