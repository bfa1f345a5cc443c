"""Alias of `python -m benchmark.cli.pretrain`."""
from benchmark.cli.pretrain import main

if __name__ == "__main__":
    raise SystemExit(main())
