"""EGAT's named variants (paper Tables III and IV, and our bracket of Eq. 5): the EGAT class under other
hyperparameters.

Registered after `at` so that tables list them after the reference methods. The paper gives no
SmoothGrad sample or IG point counts: 8 keeps the differentiable maps' memory in bounds (the quick
profile takes 4).
"""

from __future__ import annotations

from methods.base import register_variant

# Eq. 5's L_cls read as Madry's outer loss, CE on x_adv (methods/egat.py notes); beside the literal `egat`
register_variant("egat-advce", "egat", display="EGAT (CE on x_adv)", hparams={"classification_input": "adversarial"})
register_variant("egat-noegl", "egat", display="w/o EGL", hparams={"lambda_egl": 0.0})
register_variant("egat-noat", "egat", display="w/o AT", hparams={"lambda_adv": 0.0})
register_variant("egat-sg", "egat", display="EGAT w SmoothGrad",
                 hparams={"explainer": "smoothgrad", "explainer_samples": 8, "explainer_sigma": 0.15},
                 scaled={"quick": {"explainer_samples": 4}})
register_variant("egat-ig", "egat", display="EGAT w IntegratedGradients",
                 hparams={"explainer": "ig", "explainer_steps": 8}, scaled={"quick": {"explainer_steps": 4}})
register_variant("egat-finercam", "egat", display="EGAT w Finer-CAM",
                 hparams={"explainer": "finercam", "explainer_num_compare": 3})
register_variant("egat-noise0.01", "egat", display="EGAT w N(0,0.01^2)",
                 hparams={"guide": "gray+noise", "guide_sigma": 0.01})
register_variant("egat-noise0.5", "egat", display="EGAT w N(0,0.5^2)",
                 hparams={"guide": "gray+noise", "guide_sigma": 0.5})
register_variant("egat-golden", "egat", display="EGAT w golden guide", hparams={"guide": "golden"})
