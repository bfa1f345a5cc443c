"""The command-line entry points, one module per command (`python -m benchmark.cli.<command>`).

Each module holds only its argument parser, its `main(argv) -> int` and the printing of what the command
shows; what a command computes lives in the library modules outside this folder, and none of them imports
it. The documented `python -m benchmark.<command>` paths are aliases of these modules.
"""
