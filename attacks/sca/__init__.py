"""SCA: a semantic attack through our own small pixel-space DDPM and edit-friendly DDPM inversion.

`unet` (the epsilon network), `ddpm` (schedule, training, sampling), `inversion` (edit-friendly
inversion and regeneration), `cache` (the per-dataset DDPM, trained once: SCA's declared resource),
`attack` (the `sca` attack). No diffusers: everything is plain PyTorch. The commands around the
DDPM (train it, render the README's examples) live in benchmark.diffusion.
"""

from attacks.sca import attack  # noqa: F401  (registers "sca")
