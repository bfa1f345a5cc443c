"""Alias of `python -m benchmark.cli.sweep`."""
from benchmark.cli.sweep import main

if __name__ == "__main__":
    raise SystemExit(main())
