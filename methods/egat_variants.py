"""EGAT's named variants (paper Tables III and IV): the EGAT class under other names.

Each name's hyperparameters (benchmark/config.py) differ from `egat`'s: egat-noegl (lambda_egl = 0),
egat-noat (lambda_adv = 0, no PGD), egat-sg / egat-ig / egat-finercam (explainer), egat-noise0.01 /
egat-noise0.5 (guide gray+noise) and egat-golden (object-mask guide). They are registered after `at`
so tables list them after the reference methods.
"""

from __future__ import annotations

from methods import METHODS
from methods.egat import EGAT

VARIANTS = ("egat-noegl", "egat-noat", "egat-sg", "egat-ig", "egat-finercam", "egat-noise0.01", "egat-noise0.5",
            "egat-golden")

for _name in VARIANTS:
    METHODS.add(_name, EGAT)
