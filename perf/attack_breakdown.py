"""Where a grid's evaluation time went: per eval record of a store, its seconds per part and per attack, and per
attack and eps the seconds and the points it attacked (`eval_parts_s`, `attack_s`, `metrics.attack_points`), so that
a reader sees that each attack spends its own budget on its surviving points only (README "No computation twice").

Usage: python perf/attack_breakdown.py --results-dir DIR [--profile quick]
Prints one block per eval record (method, dataset, domain, seed: eval seconds, the parts, then one line per attack:
its total seconds and, per eps, seconds / points attacked, a `*` where the eps is chained), then the seconds per
attack summed over the records and the training seconds, the numbers README quotes for `--attacks all`.
"""

from __future__ import annotations

import argparse
from collections import Counter

from benchmark.store import Store


def breakdown(records: list[dict]) -> list[str]:
    """The lines the script prints for these eval records."""
    lines, totals = [], Counter()
    for record in sorted(records, key=lambda r: (r["method"], r["dataset"], r["train_domain"], r["seed"])):
        metrics = record["metrics"]
        parts = ", ".join(f"{part} {seconds:.0f}" for part, seconds in record.get("eval_parts_s", {}).items())
        lines.append(f"{record['method']} {record['dataset']}/{record['train_domain']} seed {record['seed']}: "
                     f"eval {record['eval_time_s']:.0f} s ({parts}), training {record['train_time_s']:.0f} s")
        for attack, by_eps in record.get("attack_s", {}).items():
            chained = set(metrics.get("attack_budgets", {}).get(attack, {}).get("chained", []))
            points = metrics.get("attack_points", {}).get(attack, {})
            cells = " ".join(f"{eps}{'*' if eps in chained else ''}:{seconds:.1f}s/{points.get(eps, '?')}"
                             for eps, seconds in by_eps.items())
            total = sum(by_eps.values())
            totals[attack] += total
            lines.append(f"  {attack:8s} {total:7.1f} s  {cells}")
        totals["(other parts)"] += record["eval_time_s"] - record.get("eval_parts_s", {}).get("attacks", 0.0)
    lines.append("seconds per attack over the records (a shared run counts under the attack that ran it first):")
    lines += [f"  {attack:14s} {seconds:8.1f}" for attack, seconds in totals.most_common()]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args()
    store = Store(args.results_dir, args.profile)
    print("\n".join(breakdown(store.records("eval"))))
    trainings = store.records("train")
    print(f"training: {len(trainings)} jobs, {sum(r['total_time_s'] for r in trainings):.0f} s")


if __name__ == "__main__":
    main()
