"""The end-to-end tests' profile `e2e`, a plugin file: tests/conftest.py loads it into every test process, and the
tests' command-line subprocesses (and their grid workers) load it through `--plugins` (conftest.E2E_ARGS).

It is the quick profile from random weights (the tests never pretrain: tests/test_pretrain.py covers that path),
evaluated on fewer images: out-of-domain accuracy on the first 200 images of each other domain instead of 5000,
the explanation metrics on 16 test images instead of 200 and the masking probe on 32 instead of 256. Everything
else (data, splits, attacks, training) is the quick profile's, so a grid through the command line, a launcher or a
resumption runs the same code paths in seconds per job. Its numbers are no one's results; its eval keys say
`ood_images`, so no record of it can pass for a quick one.
"""

from dataclasses import replace

from benchmark.config import PROFILES

PROFILES.add("e2e", replace(PROFILES.get("quick"), name="e2e", pretrained=False, faithfulness_images=16,
                            probe_images=32, ood_images=200,
                            notes="e2e profile (the tests'): the quick profile from random weights, evaluated on "
                                  "fewer images. Not results."))
