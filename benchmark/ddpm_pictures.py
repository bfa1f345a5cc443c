"""Pictures of the DDPM behind the SCA attack (the cache itself is attacks/sca/cache.py), for its command:

    python -m benchmark.diffusion train --dataset shapes [--device cpu] [--samples PATH]
    python -m benchmark.diffusion examples --dataset shapes [--out results/sca_examples.png]

`train` trains (or finds) the cached DDPM explicitly (the first SCA evaluation does it otherwise) and can save
fresh samples of it (`save_samples`). `examples` renders the README figure for a few test images of a quickly
trained ERM cnn (`render_examples`): original, reconstruction (inversion -> regeneration), SCA's regenerated
image before the pixel projection, the adversarial image (projected) and the amplified difference.
"""

from __future__ import annotations

from pathlib import Path

import torch

from attacks.sca.cache import load_or_train_ddpm
from attacks.sca.ddpm import Diffusion
from benchmark.data import load_benchmark


def render_examples(dataset: str, out: Path, *, eps: float = 0.04, images: int = 4, seed: int = 0,
                    device: str = "cpu", data_root: str | None = None) -> Path:
    """Save the README figure of SCA on `images` test images of the first domain, attacked at `eps`."""
    from attacks import project_
    from attacks.sca.attack import sca_regenerated
    from attacks.sca.inversion import invert, regenerate
    from benchmark.config import PROFILES
    from benchmark.models import build_model
    from benchmark.plotting import plt, save_png
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


def save_samples(diffusion: Diffusion, image_size: int, out: Path, *, device: str = "cpu") -> Path:
    """Save 16 fresh samples of `diffusion` (generator seed 0) as a PNG grid of 8 per row; returns `out`."""
    from torchvision.utils import save_image

    samples = diffusion.sample(16, image_size, torch.Generator(device=device).manual_seed(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(samples, out, nrow=8)
    return out
