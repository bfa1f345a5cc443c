"""Alias of `python -m benchmark.cli.verify`."""
from benchmark.cli.verify import main

if __name__ == "__main__":
    raise SystemExit(main())
