"""The DDPM behind the SCA attack, trained once per dataset and cached: SCA's declared resource.

The DDPM of a dataset is trained on the union of its domains' training splits (never on val/test
images) and cached as a state_dict in `cache_dir()/ddpm/<dataset>-<key>.pt`, where the key hashes
the dataset's identity, the DDPM config and DDPM_VERSION (bump it when the DDPM code or the configs
below change what SCA produces: eval records that include SCA carry it too). The file is written
atomically, guarded by a lock file so that parallel jobs train it once, and loaded with
`weights_only=True`. A JSON sidecar keeps the training time and loss.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset

from attacks.base import Resource
from attacks.sca.ddpm import DDPMConfig, Diffusion, train_ddpm
from benchmark.data.base import Benchmark, cache_dir
from benchmark.registry import UserError
from benchmark.store import atomic_write_bytes, content_key, locked

DDPM_VERSION = 1

#: The quick profile's DDPM (32x32 built-in benchmarks): 0.6M parameters, 800 Adam steps at batch 64:
#: 130 s on one CPU thread, 250 s with torch's two default threads on a shared 2-core machine.
SMALL_DDPM = DDPMConfig()
#: Larger images (the paper profile's 224x224, meant for a GPU): 4x4 pixel blocks, wider and longer.
LARGE_DDPM = DDPMConfig(channels=(64, 128, 128, 256), patch=4, steps=20000, batch_size=32, lr=2e-4)


def ddpm_config(image_size: int) -> DDPMConfig:
    """The DDPM config used for images of this side length."""
    return SMALL_DDPM if image_size <= 64 else LARGE_DDPM


def ddpm_path(bench: Benchmark, config: DDPMConfig) -> Path:
    """Where the DDPM of `bench` with `config` is cached (the name carries its content key)."""
    identity = {"dataset": bench.name, "description": bench.description, "image_size": bench.image_size,
                "domains": bench.domain_names(), "train_images": [len(d.train) for d in bench.domains],
                "ddpm": config.as_dict(), "version": DDPM_VERSION}
    return cache_dir() / "ddpm" / f"{bench.name}-{content_key(identity)}.pt"


def load_or_train_ddpm(bench: Benchmark, *, device: torch.device | str = "cpu", progress: bool = True,
                       config: DDPMConfig | None = None) -> Diffusion:
    """The cached DDPM of `bench` in eval mode on `device`, trained first (with a progress bar) if missing."""
    config = config or ddpm_config(bench.image_size)
    multiple = config.patch * 2 ** (len(config.channels) - 1)
    if bench.image_size % multiple:
        raise UserError(f"SCA's DDPM needs image sides divisible by {multiple}; {bench.name} is "
                        f"{bench.image_size}x{bench.image_size} (choose another --image-size)")
    path = ddpm_path(bench, config)
    with locked(path.with_suffix(".lock")):
        if not path.is_file():
            print(f"training the DDPM of {bench.name} for SCA (once; cached as {path})", file=sys.stderr)
            train_set = ConcatDataset([domain.train for domain in bench.domains])
            result = train_ddpm(config, train_set, device=device, progress=progress, desc=f"ddpm {bench.name}")
            buffer = io.BytesIO()
            torch.save(result.diffusion.state_dict(), buffer)
            atomic_write_bytes(path, buffer.getvalue())
            info = {"dataset": bench.name, "config": config.as_dict(), "train_images": len(train_set),
                    "train_time_s": round(result.train_time_s, 1), "final_loss": result.final_loss,
                    "device": str(device), "threads": torch.get_num_threads(), "version": DDPM_VERSION}
            atomic_write_bytes(path.with_suffix(".json"), (json.dumps(info, indent=1) + "\n").encode())
            print(f"trained in {result.train_time_s:.0f} s (loss {result.final_loss:.4f})", file=sys.stderr)
    diffusion = Diffusion(config)
    diffusion.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return diffusion.to(device).eval()


#: DDPM training steps timed when the plan estimates a DDPM not cached yet, after one warm-up step
DDPM_PROBE_STEPS = 8


def ddpm_training_seconds(bench: Benchmark, *, device: torch.device | str = "cpu",
                          config: DDPMConfig | None = None) -> float:
    """Seconds load_or_train_ddpm would spend training the DDPM of `bench` here (the plan's estimate), 0 when it is
    cached: a run of one step (warm-up, data loading) and one of 1 + DDPM_PROBE_STEPS, their difference per step
    scaled to the config's steps, plus the first run. Under the caller's numerics (the jobs': benchmark/numerics.py)."""
    config = config or ddpm_config(bench.image_size)
    if ddpm_path(bench, config).is_file():
        return 0.0
    train_set = ConcatDataset([domain.train for domain in bench.domains])
    first, probe = (train_ddpm(replace(config, steps=steps), train_set, device=device, progress=False).train_time_s
                    for steps in (1, 1 + DDPM_PROBE_STEPS))
    return first + (probe - first) / DDPM_PROBE_STEPS * (config.steps - 1)


#: SCA's resource: the evaluator passes the dataset's DDPM as `diffusion=`; eval configs carry its version
DDPM = Resource(name="diffusion", config_key="sca_ddpm_version", version=DDPM_VERSION, provide=load_or_train_ddpm,
                building_seconds=ddpm_training_seconds)
