"""Alias of `python -m benchmark.cli.render`."""
from benchmark.cli.render import main

if __name__ == "__main__":
    raise SystemExit(main())
