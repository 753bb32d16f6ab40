#!/usr/bin/env python3
"""Prints the latest `cargo bench --bench kernels` results as a Markdown table.

Reads criterion's JSON under ``<target>/criterion`` (default: ``$CARGO_TARGET_DIR``
or ``target`` next to this file's parent) and prints, per benchmark, the median
time per iteration, the elements per iteration, elements/s, and — given the
clock in GHz (``--ghz``, e.g. the ``probe/dep_add`` rate) — cycles per element.

    python3 benches/criterion_table.py [--target DIR] [--ghz 3.6]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def load(root: Path) -> list[dict]:
    rows = []
    for bench in sorted(root.glob("**/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        tp = meta.get("throughput") or {}
        elements = tp.get("Elements") or tp.get("Bytes")
        median_ns = est["median"]["point_estimate"]
        rows.append(
            {
                "id": meta["full_id"],
                "median_ns": median_ns,
                "lo_ns": est["median"]["confidence_interval"]["lower_bound"],
                "hi_ns": est["median"]["confidence_interval"]["upper_bound"],
                "elements": elements,
                "per_s": elements / median_ns * 1e9 if elements else None,
            }
        )
    return rows


def human(v: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.3g}"


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR", str(here / "target")))
    ap.add_argument("--ghz", type=float, default=None, help="core clock for cycles/element")
    ap.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = ap.parse_args()
    rows = load(Path(args.target) / "criterion")
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    ghz = args.ghz
    if ghz is None:
        probe = next((r for r in rows if r["id"] == "probe/dep_add"), None)
        ghz = probe["per_s"] / 1e9 if probe else None
    head = "| benchmark | median time / iter | elements / iter | elements/s | ns / element |"
    print(head + (f" cycles / element (at {ghz:.2f} GHz) |" if ghz else ""))
    print("|---|---:|---:|---:|---:|" + ("---:|" if ghz else ""))
    for r in rows:
        t = r["median_ns"]
        tstr = f"{t / 1e6:.3f} ms" if t >= 1e6 else f"{t / 1e3:.2f} µs"
        if r["elements"]:
            ns_el = t / r["elements"]
            line = f"| `{r['id']}` | {tstr} | {r['elements']:,} | {human(r['per_s'])} | {ns_el:.3f} |"
            if ghz:
                line += f" {ns_el * ghz:.2f} |"
        else:
            line = f"| `{r['id']}` | {tstr} | | | |" + (" |" if ghz else "")
        print(line)


if __name__ == "__main__":
    main()
