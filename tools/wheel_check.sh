#!/usr/bin/env bash
# A user without Rust can `pip install` the wheel, on any Linux with glibc ≥ 2.17 and with the
# oldest numpy q2key declares: checks the wheel's tags (abi3; manylinux2014 on Linux) and the
# newest glibc symbol version its native module needs (≤ 2.17), installs it into a fresh
# virtualenv whose PATH has no cargo or rustc, with numpy at the floor in pyproject.toml, and
# runs `q2key demo` and a smoke subset of the Python tests there (the full suite runs once, in
# tools/test.sh). Prints the wheel's file name, size and tags.
#   bash tools/wheel_check.sh            # the wheel in target/wheels/ (tools/test.sh builds it), else build one
#   bash tools/wheel_check.sh --build    # always build it first (maturin build --release --zig)
#   Q2KEY_WHEEL=path/to/q2key-….whl bash tools/wheel_check.sh
#   Q2KEY_SMOKE_NUMPY=numpy bash tools/wheel_check.sh   # newest numpy instead (a Python the floor has no wheel for)
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
        python3 -m pip install -q ziglang
        maturin build --release --zig --compatibility manylinux2014 --quiet -o target/wheels
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
if sys.platform.startswith("linux") and not all(("manylinux2014" in t or "manylinux_2_17" in t) for t in tags):
    sys.exit(f"wheel_check: expected manylinux2014 (manylinux_2_17) tags on Linux, got {tags}")
EOF

if [[ "$(uname -s)" == Linux ]]; then
    "$python_bin" - "$wheel" <<'EOF'
"""The newest GLIBC_x.y version the native module needs (its ELF .gnu.version_r) must be ≤ 2.17."""
import struct, sys, zipfile

def glibc_versions(elf: bytes) -> list[tuple[int, ...]]:
    assert elf[:4] == b"\x7fELF" and elf[4] == 2 and elf[5] == 1, "expected a little-endian ELF64 file"
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    names = sections[shstrndx][4]
    def cstr(offset: int) -> str:
        return elf[offset:elf.index(b"\0", offset)].decode()
    found = []
    for name, _type, _flags, _addr, offset, _size, link, info, _align, _entsize in sections:
        if cstr(names + name) != ".gnu.version_r":
            continue
        strtab = sections[link][4]
        need = offset
        for _ in range(info):  # Elf64_Verneed entries
            _ver, cnt, _file, aux, nxt = struct.unpack_from("<HHIII", elf, need)
            a = need + aux
            for _ in range(cnt):  # Elf64_Vernaux entries
                _hash, _flags, _other, vname, anext = struct.unpack_from("<IHHII", elf, a)
                v = cstr(strtab + vname)
                if v.startswith("GLIBC_") and v[6:].replace(".", "").isdigit():
                    found.append(tuple(int(p) for p in v[6:].split(".")))
                a += anext
            need += nxt
    return found

with zipfile.ZipFile(sys.argv[1]) as z:
    (so,) = [n for n in z.namelist() if n.endswith(".so")]
    versions = glibc_versions(z.read(so))
newest = max(versions)
print(f"glibc: newest symbol version GLIBC_{'.'.join(map(str, newest))} ({len(set(versions))} versions needed)")
if newest > (2, 17):
    sys.exit(f"wheel_check: {so} needs GLIBC_{'.'.join(map(str, newest))}, more than manylinux2014's 2.17")
EOF
fi

# The oldest numpy q2key declares (`numpy>=X` in pyproject.toml), unless told otherwise.
numpy_floor="$(sed -n 's/^dependencies = \["numpy>=\([0-9.]*\)"\].*/\1/p' pyproject.toml)"
[ -n "$numpy_floor" ] || { echo "wheel_check: no numpy floor found in pyproject.toml" >&2; exit 1; }
smoke_numpy="${Q2KEY_SMOKE_NUMPY:-numpy==$numpy_floor}"

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
    bash -euo pipefail -s "$python_bin" "$venv" "$wheel" "$repo" "$work" "$smoke_numpy" <<'EOF'
python_bin="$1" venv="$2" wheel="$3" repo="$4" work="$5" smoke_numpy="$6"
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
python -m pip install -q --only-binary=:all: "$wheel" "$smoke_numpy" "pytest>=7" "hypothesis>=6"
python -c 'import q2key, numpy, sys; print(f"q2key {q2key.__version__} from {q2key.__file__}, simd {q2key.simd_backend()}, Python {sys.version.split()[0]}, numpy {numpy.__version__}")'
mkdir -p "$work/run"
cd "$work/run"
q2key demo >demo.txt
tail -n 4 demo.txt
# The smoke subset: every public function and class once, with numpy as the only dependency.
tests=(test_encode.py test_codes.py test_distance.py test_search.py test_index.py test_index_file.py
       test_thresholds.py test_calibrate.py test_stats.py test_doctests.py)
python -m pytest "${tests[@]/#/$repo/tests/python/}" -q -m "not slow" -c "$repo/pyproject.toml" --rootdir "$repo"
EOF
echo "wheel_check: OK"
