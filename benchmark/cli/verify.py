"""The verify command: python -m benchmark.verify (an alias of this module) [--profile quick]
[--results-dir results] [--sample N | --jobs KEY,...] [--seed 0] [--rtol R] [--data-root DIR] [--device cpu]
[--plugins FILE,...]

Re-runs the chosen eval records' jobs from scratch (benchmark/verification.py) and prints, per record, whether
its numbers are identical (or within --rtol), the differing ones, and a note where the record was made on
another CPU. Exits 0 when all are identical, 1 when one differs, 2 on bad input (one line).
"""

from __future__ import annotations

import argparse
import sys

from benchmark.config import PROFILES
from benchmark.plugins import load_plugins
from benchmark.registry import UserError, report
from benchmark.store import Store
from benchmark.verification import choose, other_cpu, verify


def main(argv: list[str] | None = None) -> int:
    """Verify the chosen records; 0 when all are identical, 1 when one differs, 2 on bad input."""
    p = argparse.ArgumentParser(prog="python -m benchmark.verify",
                                description="Re-run recorded jobs from scratch and compare every metric.")
    p.add_argument("--profile", default="quick")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--sample", type=int, default=1, help="how many eval records to re-run (random, seeded)")
    p.add_argument("--jobs", default=None, help="comma list of eval record keys to re-run instead")
    p.add_argument("--seed", type=int, default=0, help="seed of the --sample draw")
    p.add_argument("--rtol", type=float, default=0.0,
                   help="accept numbers within this relative difference (default 0: bit-identical)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--plugins", default="")
    args = p.parse_args(argv)
    try:
        load_plugins(args.plugins)
        PROFILES.get(args.profile)
        store = Store(args.results_dir, args.profile)
        records, invalid = store.scan("eval")
        keys = [k.strip() for k in args.jobs.split(",") if k.strip()] if args.jobs else None
        if not keys:
            for err in invalid:
                print(f"warning: {err}; left out", file=sys.stderr)
        if not records and not (keys and invalid):
            raise UserError(f"no eval records under {store.root / 'runs' / 'eval'}; nothing to verify")
        if not 0 <= args.rtol < 1:
            raise UserError(f"--rtol must be in [0, 1), got {args.rtol:g}")
        chosen = choose(records, sample=args.sample, jobs=keys, seed=args.seed, invalid=invalid)
        found = verify(chosen, store, data_root=args.data_root, device=args.device, rtol=args.rtol)
    except UserError as err:
        return report(err)
    same = "identical" if args.rtol == 0 else f"within rtol {args.rtol:g}"
    for record, diffs in zip(chosen, found, strict=True):
        where = f"{record['key']} {record['method']} {record['dataset']}/{record['train_domain']} seed {record['seed']}"
        print(f"{where}: " + (same if not diffs else f"{len(diffs)} differ"))
        if why := other_cpu(record):
            print(f"  note: {why}")
        for line in diffs:
            print(f"  {line}")
    identical = sum(not d for d in found)
    print(f"{identical} of {len(found)} {same}")
    sys.stdout.flush()
    return 0 if identical == len(found) else 1


if __name__ == "__main__":
    raise SystemExit(main())
