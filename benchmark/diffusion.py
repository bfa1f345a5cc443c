"""Alias of `python -m benchmark.cli.diffusion`."""
from benchmark.cli.diffusion import main

if __name__ == "__main__":
    raise SystemExit(main())
