#!/usr/bin/env bash
# One entry point: creates .venv and installs the project on first use, then runs a target.
#   ./reproduce.sh test                 ruff + the whole test suite (one pytest worker per core)
#   ./reproduce.sh table1|...|table6|fig2|...|fig6|claims|all [flags]
#                                       run the grid a table/figure needs, then render it under results/
#                                       (a plugin's artefact too: ./reproduce.sh NAME --plugins FILE)
#   ./reproduce.sh run [run flags]      the grid: python -m benchmark.run [flags] (e.g. --methods erm,egat)
#   ./reproduce.sh samples              PNG grids of the built-in benchmarks in results/
#   ./reproduce.sh cards [--workers N]  the built-in benchmarks' cards in results/cards/ (data + reference models)
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "creating $VENV with $PYTHON" >&2
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
    fi
    # Reinstall whenever the dependency declaration changes.
    local stamp="$VENV/.egat-bench-installed" want
    want=$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "installing egat-bench and its dependencies into $VENV (first run: several minutes)" >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test,ray,slurm]"
        echo "$want" > "$stamp"
    fi
}

target=${1:-}
[ $# -gt 0 ] && shift
case "$target" in
    test)
        ensure_venv
        "$VENV/bin/ruff" check .
        # one test process per core (-n auto; pass -n 0 to run them in this process)
        "$VENV/bin/python" -m pytest -q -n auto "$@"
        ;;
    run)
        ensure_venv
        "$VENV/bin/python" -m benchmark.run "$@"
        ;;
    cards)
        ensure_venv
        for dataset in shapes digits; do
            "$VENV/bin/python" -m benchmark.cards --dataset "$dataset" --out results/cards "$@"
        done
        ;;
    samples)
        ensure_venv
        for dataset in shapes digits; do
            "$VENV/bin/python" -m benchmark.cli.preview --dataset "$dataset" --out "results/samples_$dataset.png"
        done
        ;;
    ""|-h|--help)
        echo "usage: ./reproduce.sh table1..table6|fig2..fig6|claims|all|test|run|samples|cards [flags]" >&2
        exit 2
        ;;
    *)  # an artefact: benchmark.reproduce names the valid ones when it is unknown
        ensure_venv
        "$VENV/bin/python" -m benchmark.reproduce "$target" "$@"
        ;;
esac
