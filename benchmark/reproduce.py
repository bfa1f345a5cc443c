"""Alias of `python -m benchmark.cli.reproduce`."""
from benchmark.cli.reproduce import main

if __name__ == "__main__":
    raise SystemExit(main())
