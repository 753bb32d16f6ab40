#!/usr/bin/env bash
# A user without Rust can `pip install` the wheel: install the release wheel into a fresh
# virtualenv whose PATH has no cargo or rustc, and run the Python tests against it from a
# neutral directory. Prints the wheel's file name, size and tags.
#   bash tools/wheel_check.sh            # the wheel in target/wheels/ (tools/test.sh builds it), else build one
#   bash tools/wheel_check.sh --build    # always build it first (maturin build --release)
#   Q2KEY_WHEEL=path/to/q2key-….whl bash tools/wheel_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

build=0
case "${1:-}" in
    --build) build=1 ;;
    "") ;;
    *) echo "usage: $0 [--build]" >&2; exit 2 ;;
esac

wheel="${Q2KEY_WHEEL:-}"
if [ -z "$wheel" ]; then
    shopt -s nullglob
    found=(target/wheels/q2key-*.whl)
    shopt -u nullglob
    if [ "$build" = 1 ] || [ "${#found[@]}" -eq 0 ]; then
        command -v maturin >/dev/null || { echo "wheel_check: no wheel in target/wheels and no maturin to build one" >&2; exit 1; }
        rm -rf target/wheels
        maturin build --release --quiet -o target/wheels
        found=(target/wheels/q2key-*.whl)
    fi
    [ "${#found[@]}" -eq 1 ] || { echo "wheel_check: expected one wheel in target/wheels, found ${#found[@]}" >&2; exit 1; }
    wheel="${found[0]}"
fi
wheel="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
[ -f "$wheel" ] || { echo "wheel_check: no such wheel: $wheel" >&2; exit 1; }

# The interpreter by absolute path: the stripped PATH below must not be needed to find it.
python_bin="$(python3 -c 'import sys; print(sys.executable)')"

echo "== Wheel"
"$python_bin" - "$wheel" <<'EOF'
import os, sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as z:
    wheel_meta = next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL"))
    fields = [line.split(": ", 1) for line in z.read(wheel_meta).decode().splitlines() if ": " in line]
    native = [i for i in z.infolist() if i.filename.endswith((".so", ".pyd"))]
tags = [v for k, v in fields if k == "Tag"]
size = os.path.getsize(path)
print(f"file:  {os.path.basename(path)}")
print(f"size:  {size:,} bytes ({size / 2**20:.1f} MiB); native module {sum(i.file_size for i in native):,} bytes unpacked")
print(f"tags:  {', '.join(tags)}")
if not tags or not all("-abi3-" in t for t in tags):
    sys.exit(f"wheel_check: expected abi3 tags, got {tags}")
if sys.platform.startswith("linux") and not all("manylinux" in t for t in tags):
    sys.exit(f"wheel_check: expected manylinux tags on Linux, got {tags}")
EOF

# PATH without any directory that holds cargo, rustc or rustup; no Rust environment either.
stripped=""
IFS=':' read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
    [ -n "$d" ] || continue
    if [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ -e "$d/rustup" ]; then
        continue
    fi
    stripped="${stripped:+$stripped:}$d"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"

echo "== Fresh virtualenv without cargo/rustc on PATH"
env -u CARGO_HOME -u RUSTUP_HOME -u RUSTUP_TOOLCHAIN -u CARGO -u VIRTUAL_ENV PATH="$stripped" \
    bash -euo pipefail -s "$python_bin" "$venv" "$wheel" "$repo" "$work" <<'EOF'
python_bin="$1" venv="$2" wheel="$3" repo="$4" work="$5"
hash -r
if command -v cargo >/dev/null 2>&1 || command -v rustc >/dev/null 2>&1; then
    echo "wheel_check: cargo or rustc is still on PATH: $(command -v cargo rustc | tr '\n' ' ')" >&2
    exit 1
fi
echo "cargo: not found on PATH (as for a user without Rust)"
"$python_bin" -m venv "$venv"
export PATH="$venv/bin:$PATH"
# Binary wheels only: nothing may be compiled, least of all q2key.
python -m pip install -q --upgrade --only-binary=:all: pip
python -m pip install -q --only-binary=:all: "$wheel" numpy "pytest>=7" "hypothesis>=6" matplotlib ml_dtypes pyarrow "dask[array]" distributed faiss-cpu
python -c 'import q2key, sys; print(f"q2key {q2key.__version__} from {q2key.__file__}, simd {q2key.simd_backend()}, Python {sys.version.split()[0]}")'
mkdir -p "$work/run"
cd "$work/run"
MPLBACKEND=Agg python -m pytest "$repo/tests/python" -q -c "$repo/pyproject.toml" --rootdir "$repo"
EOF
echo "wheel_check: OK"
