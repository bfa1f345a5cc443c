"""SCA: a semantic attack through our own small pixel-space DDPM and edit-friendly DDPM inversion.

`unet` (the epsilon network), `ddpm` (schedule, training, sampling), `inversion` (edit-friendly
inversion and regeneration), `attack` (the `sca` attack, registered in attacks.ATTACKS on import).
No diffusers: everything is plain PyTorch. The per-dataset DDPM cache and the commands live in
benchmark.diffusion.
"""

from attacks.sca import attack  # noqa: F401  (registers "sca")
