#!/usr/bin/env bash
# Installs the test dependencies, builds the release wheel, installs it (not
# editable) into a virtualenv and runs every test: Rust and Python.
#   bash tools/test.sh            # venv in .venv (or $Q2KEY_VENV)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${Q2KEY_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# shellcheck disable=SC1091
source "$venv/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q "maturin>=1.9.3,<2" numpy "pytest>=7" "hypothesis>=6" matplotlib ml_dtypes pyarrow "dask[array]" distributed faiss-cpu
rm -rf target/wheels
maturin build --release --quiet -o target/wheels
python -m pip install -q --force-reinstall target/wheels/q2key-*.whl
cargo test --quiet
# From a neutral directory, so `import q2key` is the installed wheel.
repo="$(pwd)"
cd "$(mktemp -d)"
python -m pytest "$repo/tests/python" -q -c "$repo/pyproject.toml" --rootdir "$repo"
