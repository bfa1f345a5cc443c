"""Alias of `python -m benchmark.cli.catalog`."""
from benchmark.cli.catalog import main

if __name__ == "__main__":
    raise SystemExit(main())
