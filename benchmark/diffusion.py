"""The DDPM behind the SCA attack: trained once per dataset, cached, and the commands around it.

The DDPM of a dataset is trained on the union of its domains' training splits (never on val/test
images) and cached as a state_dict in `cache_dir()/ddpm/<dataset>-<key>.pt`, where the key hashes
the dataset's identity, the DDPM config and DDPM_VERSION (bump it when the DDPM code or the configs
below change what SCA produces: eval records that include SCA carry it too). The file is written
atomically, guarded by a lock file so that parallel jobs train it once, and loaded with
`weights_only=True`. A JSON sidecar keeps the training time and loss.

    python -m benchmark.diffusion train --dataset shapes [--device cpu] [--samples PATH]
    python -m benchmark.diffusion examples --dataset shapes [--out results/sca_examples.png]

`train` trains (or finds) the cached DDPM explicitly; the first SCA evaluation does it otherwise.
`examples` renders the README figure for a few test images of a quickly trained ERM cnn: original,
reconstruction (inversion -> regeneration), SCA's regenerated image before the pixel projection,
the adversarial image (projected) and the amplified difference.
"""

from __future__ import annotations

import argparse
import fcntl
import io
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset

from attacks.sca.ddpm import DDPMConfig, Diffusion, train_ddpm
from benchmark.data import Benchmark, cache_dir, load_benchmark
from benchmark.registry import UserError, report
from benchmark.store import atomic_write_bytes, content_key

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


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_or_train_ddpm(bench: Benchmark, *, device: torch.device | str = "cpu", progress: bool = True,
                       config: DDPMConfig | None = None) -> Diffusion:
    """The cached DDPM of `bench` in eval mode on `device`, trained first (with a progress bar) if missing."""
    config = config or ddpm_config(bench.image_size)
    multiple = config.patch * 2 ** (len(config.channels) - 1)
    if bench.image_size % multiple:
        raise UserError(f"SCA's DDPM needs image sides divisible by {multiple}; {bench.name} is "
                        f"{bench.image_size}x{bench.image_size} (choose another --image-size)")
    path = ddpm_path(bench, config)
    with _locked(path.with_suffix(".lock")):
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


def render_examples(dataset: str, out: Path, *, eps: float = 0.04, images: int = 4, seed: int = 0,
                    device: str = "cpu", data_root: str | None = None) -> Path:
    """Save the README figure of SCA on `images` test images of the first domain, attacked at `eps`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attacks import project_
    from attacks.sca.attack import sca_regenerated
    from attacks.sca.inversion import invert, regenerate
    from benchmark.config import PROFILES
    from benchmark.figures import save_png
    from benchmark.models import build_model
    from benchmark.train import seed_everything, train
    from methods import METHODS

    bench = load_benchmark(dataset, data_root=data_root)
    diffusion = load_or_train_ddpm(bench, device=device)
    domain = bench.domains[0]
    profile = PROFILES.get("quick")
    seed_everything(seed)
    model = build_model(profile.model, bench.num_classes, dropout=profile.dropout)
    result = train(METHODS.get("erm")(model, {}), domain.train, domain.val, steps=profile.steps,
                   batch_size=profile.batch_size, lr=profile.lr, eval_every=profile.eval_every, seed=seed,
                   device=device, desc="erm cnn")
    model.load_state_dict(result.best_state)
    model.eval()
    items = [domain.test[i] for i in range(images)]
    x = torch.stack([item["x"] for item in items]).to(device)
    y = torch.stack([item["y"] for item in items]).to(device)
    x_start, zs = invert(diffusion, x, torch.Generator(device=device).manual_seed(seed))
    with torch.no_grad():
        recon = regenerate(diffusion, x_start, zs)
    regenerated = sca_regenerated(model, x, y, eps, generator=torch.Generator(device=device).manual_seed(seed),
                                  diffusion=diffusion)
    x_adv = project_(regenerated.clone(), x, eps)
    with torch.no_grad():
        probs = {name: torch.softmax(model(v.clamp(0, 1)), 1).cpu()
                 for name, v in (("x", x), ("regenerated", regenerated), ("adv", x_adv))}
    difference = (0.5 + (x_adv - x) / (2 * eps)).clamp(0, 1)
    columns = [("original", x, "x"), ("reconstruction", recon, None), ("SCA regenerated", regenerated, "regenerated"),
               (f"projected, eps {eps:g}", x_adv, "adv"), ("(adv - x) / (2 eps) + 0.5", difference, None)]
    fig, axes = plt.subplots(images, len(columns), figsize=(2.2 * len(columns), 2.3 * images), squeeze=False)
    for row in range(images):
        for col, (title, batch, pred) in enumerate(columns):
            ax = axes[row, col]
            ax.imshow(batch[row].detach().clamp(0, 1).cpu().permute(1, 2, 0).numpy(), interpolation="nearest")
            label = title if row == 0 else ""
            if pred is not None:
                p = probs[pred][row]
                label += f"\n{bench.classes[int(p.argmax())]} ({p.max():.2f})"
            elif col == 1:
                label += f"\nmax err {(batch[row] - x[row]).abs().max():.1e}"
            ax.set_title(label, fontsize=8)
            ax.set_axis_off()
    fig.suptitle(f"SCA on {dataset} ({domain.name} test images), quick ERM cnn; predicted class (probability)",
                 fontsize=9)
    fig.tight_layout()
    return save_png(fig, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the SCA attack's DDPM, or render the README's SCA figure.")
    parser.add_argument("command", choices=("train", "examples"))
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", type=Path, default=None, help="train: also save 16 fresh samples as a PNG")
    parser.add_argument("--out", type=Path, default=Path("results/sca_examples.png"), help="examples: the PNG")
    parser.add_argument("--eps", type=float, default=0.04, help="examples: the attack budget")
    parser.add_argument("--images", type=int, default=4, help="examples: number of test images")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        if args.command == "train":
            bench = load_benchmark(args.dataset, data_root=args.data_root)
            start = time.perf_counter()
            diffusion = load_or_train_ddpm(bench, device=args.device)
            print(f"{ddpm_path(bench, diffusion.config)} ready after {time.perf_counter() - start:.0f} s")
            if args.samples is not None:
                from torchvision.utils import save_image

                samples = diffusion.sample(16, bench.image_size, torch.Generator(device=args.device).manual_seed(0))
                args.samples.parent.mkdir(parents=True, exist_ok=True)
                save_image(samples, args.samples, nrow=8)
                print(args.samples)
        else:
            print(render_examples(args.dataset, args.out, eps=args.eps, images=args.images, device=args.device,
                                  data_root=args.data_root))
    except UserError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
