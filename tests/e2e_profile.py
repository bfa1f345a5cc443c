"""The end-to-end tests' profile `e2e`, a plugin file: tests/conftest.py loads it into every test process, and the
tests' command-line subprocesses (and their grid workers) load it through `--plugins` (conftest.E2E_ARGS).

It is the quick profile from random weights (the tests never pretrain: tests/test_pretrain.py covers that path),
evaluated on fewer images and with a lighter worst case: out-of-domain accuracy on the first 200 images of each
other domain instead of 5000, the explanation metrics on 16 test images instead of 200, the masking probe on 32
instead of 256 (in evaluation batches of 64, not 256: the table PGD that serves both runs on whole batches), and
the worst-case family at 10 iterations, 1 target and 20 queries (the quick profile's converged budgets cost minutes
on a model that stays robust, as a briefly trained one can: tests/test_worst_case.py checks those attacks).
Everything else (data, splits, the other attacks, training) is the quick profile's, so a grid
through the command line, a launcher or a resumption runs the same code paths in seconds per job. Its numbers are
no one's results; its eval keys say `ood_images`, so no record of it can pass for a quick one.
"""

from dataclasses import replace

from benchmark.config import PROFILES, AttackSetting

_LIGHT = "the tests' speed: a worst case reduced as far as it still runs every code path (1 target, few queries)"
_QUICK = PROFILES.get("quick")
_AA_IMAGES = _QUICK.attack_settings["aa"].images
LIGHT_WORST_CASE = {
    "apgd-ce": AttackSetting({"n_iter": 10}, 1.3, _LIGHT, images=_AA_IMAGES),
    "apgd-t": AttackSetting({"n_iter": 10, "n_targets": 1}, 1.3, _LIGHT, images=_AA_IMAGES),
    "square": AttackSetting({"n_queries": 20}, 1.0, _LIGHT, images=_AA_IMAGES),
    "aa": AttackSetting({"n_iter": 10, "n_targets": 1, "n_queries": 20}, 3.6, _LIGHT, images=_AA_IMAGES),
}

PROFILES.add("e2e", replace(_QUICK, name="e2e", pretrained=False, faithfulness_images=16, eval_batch_size=64,
                            probe_images=32, ood_images=200, attack_settings=LIGHT_WORST_CASE,
                            notes="e2e profile (the tests'): the quick profile from random weights, evaluated on "
                                  "fewer images. Not results."))
