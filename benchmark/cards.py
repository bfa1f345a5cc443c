"""Alias of `python -m benchmark.cli.cards`."""
from benchmark.cli.cards import main

if __name__ == "__main__":
    raise SystemExit(main())
