#!/usr/bin/env bash
# Installs the test dependencies, builds the release wheel (portable: manylinux2014, linked
# with zig), installs it (not editable) into a virtualenv and runs every test once: Rust
# (tests, benches as smoke tests, doctests) and Python (against the installed wheel).
#   bash tools/test.sh            # venv in .venv (or $Q2KEY_VENV)
#   bash tools/test.sh -m "not slow" -x   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${Q2KEY_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# shellcheck disable=SC1091
source "$venv/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q "maturin>=1.9.4,<2" ziglang numpy "pytest>=7" "hypothesis>=6" matplotlib ml_dtypes pyarrow "dask[array,dataframe]" distributed faiss-cpu
rm -rf target/wheels
# zig links against glibc 2.17 symbols, so the wheel runs on any Linux with glibc ≥ 2.17, not
# only on distributions as new as this machine (`pip install .` needs no zig).
maturin build --release --zig --compatibility manylinux2014 --quiet -o target/wheels
python -m pip install -q --force-reinstall --no-deps target/wheels/q2key-*.whl
# --all-targets: the criterion benches run once each as tests, in this same debug build.
cargo test --quiet --all-targets
cargo test --quiet --doc
# From a neutral directory, so `import q2key` is the installed wheel.
repo="$(pwd)"
cd "$(mktemp -d)"
python -m pytest "$repo/tests/python" -q -c "$repo/pyproject.toml" --rootdir "$repo" --durations=15 "$@"
