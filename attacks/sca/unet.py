"""A small epsilon-prediction UNet for the pixel-space DDPM behind SCA.

GroupNorm (no BatchNorm, so the network is a fixed function in eval and train mode alike, which the
exact inversion needs), SiLU, a sinusoidal time embedding added in every residual block, no
attention: sized so that a few thousand training steps at 32x32 fit in minutes on a CPU.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding (B, dim) of integer timesteps t (B,), as in the Transformer and DDPM."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, plus the projected time embedding, twice, with a residual path."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = _norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip: nn.Module = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """eps_theta(x_t, t): one ResBlock per resolution level on the way down and up, skips by concatenation.

    The image is first folded into `patch` x `patch` pixel blocks (pixel unshuffle, lossless) so the
    top level runs at 1/patch resolution: most of the speed on a CPU. `channels[i]` is the width at
    level i; levels are separated by stride-2 convolutions (down) and nearest upsampling +
    convolution (up), so image sides must be divisible by patch * 2 ** (len(channels) - 1).
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 64), patch: int = 2, in_channels: int = 3):
        super().__init__()
        self.channels = tuple(channels)
        self.patch = patch
        emb_dim = 4 * channels[0]
        self.time_mlp = nn.Sequential(nn.Linear(channels[0], emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.stem = nn.Conv2d(in_channels * patch**2, channels[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for i, c in enumerate(channels):
            self.down_blocks.append(ResBlock(channels[max(i - 1, 0)], c, emb_dim))
            if i < len(channels) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid = ResBlock(channels[-1], channels[-1], emb_dim)
        self.up_blocks = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(channels))):
            c_out = channels[max(i - 1, 0)]
            self.up_blocks.append(ResBlock(2 * channels[i], c_out, emb_dim))
            if i > 0:
                self.upsample.append(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.out_norm = _norm(channels[0])
        self.out = nn.Conv2d(channels[0], in_channels * patch**2, 3, padding=1)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.channels[0]))
        h = self.stem(F.pixel_unshuffle(x, self.patch))
        skips = []
        for i, block in enumerate(self.down_blocks):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, emb)
        for i, block in enumerate(self.up_blocks):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return F.pixel_shuffle(self.out(F.silu(self.out_norm(h))), self.patch)
