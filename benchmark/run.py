"""Alias of `python -m benchmark.cli.run`."""
from benchmark.cli.run import main

if __name__ == "__main__":
    raise SystemExit(main())
