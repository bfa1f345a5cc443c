"""The catalog command: python -m benchmark.cli.catalog rewrites benchmark/catalog.json from the built-in
declarations (benchmark/display_catalog.py says why rendering reads that file) and prints its path on stderr."""

from __future__ import annotations

import argparse
import sys

from benchmark.display_catalog import write_shipped_catalog


def main(argv: list[str] | None = None) -> int:
    """Rewrite benchmark/catalog.json from the built-in declarations."""
    parser = argparse.ArgumentParser(prog="python -m benchmark.cli.catalog",
                                     description="Rewrite benchmark/catalog.json from the built-in declarations.")
    parser.parse_args(argv)
    print(write_shipped_catalog(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
