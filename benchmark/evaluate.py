"""Evaluation of a trained model: clean and out-of-domain accuracy, attacks x eps, Comp / Suff.

- cAcc: accuracy on the training domain's test split (Table I).
- cAcc_cue_free: accuracy on the test split's cue-free twins (built-in benchmarks: the same objects with the
  spurious cue drawn independently of the class), the direct measure of reliance on the object.
- ood_cAcc: accuracy on every other domain, whole (Table II).
- aAcc[attack][eps]: accuracy on the test split under each attack at each eps (Table I uses PGD-10
  at the profile's `table_eps`; Fig. 2 uses the whole grid). The attack's randomness (PGD's start)
  comes from a generator seeded by the job's seed, so evaluation is reproducible.
- Comp / Suff: ERASER-style AOPC of the Grad-CAM of the true class on the first
  `faithfulness_images` test images (benchmark/faithfulness.py).
- heatmaps: Grad-CAM of the first HEATMAP_IMAGES test images, clean and under PGD at the profile's
  `table_eps`, with predictions, so Fig. 4 is a pure function of the records (plus the images).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from attacks.base import ATTACKS, resources_of
from attacks.pgd import pgd
from benchmark.config import Profile
from benchmark.data.base import Benchmark, iterate
from benchmark.explain import EXPLAINERS
from benchmark.faithfulness import comprehensiveness_sufficiency
from benchmark.models import Classifier
from benchmark.store import eps_label
from benchmark.train import accuracy, to_device

EVAL_EXPLAINER = "gradcam"
HEATMAP_IMAGES = 6


def adversarial_accuracy(model: Classifier, batches: list[dict[str, Tensor]], attack: str, eps: float, *,
                         steps: int, seed: int, resources: dict[str, Any] | None = None) -> float:
    """Accuracy (%) under `attack` at `eps` on pre-loaded test batches (model in eval mode). The attack gets
    `steps` if it takes them, and each resource it declares from `resources` (by name, e.g. SCA's DDPM)."""
    spec = ATTACKS.get(attack)
    generator = torch.Generator(device=batches[0]["x"].device).manual_seed(seed)
    params: dict[str, Any] = {"steps": steps} if spec.takes_steps else {}
    params.update({r.name: (resources or {}).get(r.name) for r in spec.resources})
    correct = total = 0
    for batch in batches:
        x_adv = spec(model, batch["x"], batch["y"], eps, generator=generator, **params)
        with torch.no_grad():
            correct += (model(x_adv).argmax(1) == batch["y"]).sum().item()
        total += len(batch["y"])
    return 100.0 * correct / total


def explanation_faithfulness(model: Classifier, batches: list[dict[str, Tensor]], limit: int) -> tuple[float, float]:
    """Mean Comp and Suff (%) of Grad-CAM maps of the true class over the first `limit` images."""
    explain = EXPLAINERS.get(EVAL_EXPLAINER)
    comps, suffs = [], []
    seen = 0
    for batch in batches:
        x, y = batch["x"][: limit - seen], batch["y"][: limit - seen]
        if len(y) == 0:
            break
        maps = explain(model, x, y)
        comp, suff = comprehensiveness_sufficiency(model, x, y, maps)
        comps.append(comp)
        suffs.append(suff)
        seen += len(y)
    return torch.cat(comps).mean().item(), torch.cat(suffs).mean().item()


def heatmap_samples(model: Classifier, batch: dict[str, Tensor], eps: float, *, steps: int, seed: int) -> dict:
    """Grad-CAM maps of the true class on the first test images, clean and under PGD (for Fig. 4)."""
    x, y = batch["x"][:HEATMAP_IMAGES], batch["y"][:HEATMAP_IMAGES]
    generator = torch.Generator(device=x.device).manual_seed(seed)
    x_adv = pgd(model, x, y, eps, generator=generator, steps=steps)
    explain = EXPLAINERS.get(EVAL_EXPLAINER)
    with torch.no_grad():
        pred_clean, pred_adv = model(x).argmax(1), model(x_adv).argmax(1)

    def rounded(maps: Tensor) -> list:
        return maps.detach().cpu().round(decimals=4).tolist()

    return {"indices": list(range(len(y))), "split": "test", "eps": eps, "attack": "pgd", "label": y.tolist(),
            "clean": rounded(explain(model, x, y)), "adv": rounded(explain(model, x_adv, y)),
            "pred_clean": pred_clean.tolist(), "pred_adv": pred_adv.tolist()}


def evaluate(model: Classifier, bench: Benchmark, train_domain: str, *, attacks: tuple[str, ...],
             eps: tuple[float, ...], profile: Profile, seed: int, device: torch.device,
             progress: bool = True, resources: dict[str, Any] | None = None) -> dict:
    """All metrics of one trained model as the eval record's `metrics` dict. The resources the attacks declare
    (SCA's DDPM) are built by their providers (loaded, or trained once and cached) unless given by name."""
    resources = dict(resources or {})
    if any(e > 0 for e in eps):
        for resource in resources_of(attacks):
            if resource.name not in resources:
                resources[resource.name] = resource.provide(bench, device=device, progress=progress)
    model.eval()
    domain = bench.domain(train_domain)
    batch_size = profile.eval_batch_size
    metrics: dict = {
        "cAcc": accuracy(model, domain.test, batch_size=batch_size, device=device),
        **({} if domain.cue_free is None else {
            "cAcc_cue_free": accuracy(model, domain.cue_free, batch_size=batch_size, device=device)}),
        "ood_cAcc": {other.name: accuracy(model, other.full, batch_size=batch_size, device=device)
                     for other in bench.domains if other.name != train_domain},
    }
    test_batches = [to_device(b, device) for b in iterate(domain.test, batch_size)]
    grid = [(attack, e) for attack in attacks for e in eps]
    metrics["aAcc"] = {attack: {} for attack in attacks}
    for attack, e in tqdm(grid, desc="attacks", disable=not progress or not grid, leave=False):
        metrics["aAcc"][attack][eps_label(e)] = adversarial_accuracy(
            model, test_batches, attack, e, steps=profile.attack_steps, seed=seed, resources=resources)
    metrics["Comp"], metrics["Suff"] = explanation_faithfulness(model, test_batches, profile.faithfulness_images)
    metrics["heatmaps"] = heatmap_samples(model, test_batches[0], profile.table_eps, steps=profile.attack_steps,
                                          seed=seed)
    return metrics
