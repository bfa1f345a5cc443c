"""Adversarial attacks (L-inf, pixel units): the registry, the contract (attacks/base.py) and the built-ins.

Every attack is called as `attack(model, x, y, eps, *, generator=None, **params) -> x_adv` with x in
[0, 1] (normalization lives inside the model), x_adv in [0, 1] and ||x_adv - x||_inf <= eps.
FGSM, MI-FGSM and PGD follow torchattacks 3.5.1 operation by operation (CE with mean reduction,
gradient by `torch.autograd.grad`, step -> projection -> clamp), so their outputs are identical.
SCA (attacks/sca) attacks through a DDPM of the images' dataset, a resource it declares.
APGD-CE and APGD-T (attacks/apgd.py) reproduce torchattacks' APGD and APGDT given the same start;
Square (attacks/square.py) draws one square per image; `aa` (attacks/autoattack.py) is their per-sample
worst case, AutoAttack's standard flow without FAB-T.
"""

from attacks.base import (
    ATTACKS,
    Attack,
    Resource,
    check_eps,
    check_images,
    check_steps,
    eval_mode,
    loss_gradient,
    project_,
    register_attack,
    resources_of,
)

__all__ = ["ATTACKS", "Attack", "Resource", "check_eps", "check_images", "check_steps", "eval_mode", "loss_gradient",
           "project_", "register_attack", "resources_of"]

# The built-in attacks register themselves on import, in the order of --list and of Fig. 2's panels.
from attacks import fgsm, mifgsm, pgd, sca, apgd, square, autoattack  # noqa: E402, F401, I001
