"""Writes the seeds of the index_ops and thresholds targets (the load seeds come from
`cargo test --test index_format -- --ignored write_fuzz_seeds`): python seeds/make_seeds.py"""

import struct
from pathlib import Path

here = Path(__file__).parent
ops = bytes([0, 2, 5, 1, 7, 9, 2, 7, 0, 3, 0, 0, 0, 1, 1, 4, 0, 0, 2, 3, 3, 3, 0, 0])
(here / "index_ops").mkdir(exist_ok=True)
for seed in sorted((here / "load").iterdir()):
    data = seed.read_bytes()
    (here / "index_ops" / seed.name).write_bytes(struct.pack(">H", len(data)) + data + ops)
(here / "index_ops" / "fresh.bin").write_bytes(b"\x00\x00" + bytes([17]) + ops)

(here / "thresholds").mkdir(exist_ok=True)
f = lambda *v: struct.pack(f"<{len(v)}d", *v)  # noqa: E731
for name, data in {
    "gaussian": bytes([0, 4]) + f(1.0, 0.5, 2.0),
    "global": bytes([1, 7]) + f(0.1, 1.0, 1.0),
    "per_dim": bytes([2, 2]) + f(-0.5, -0.4, 0.0, 0.1, 0.5, 0.6),
    "bad_cuts": bytes([2, 1]) + f(0.5, 0.0, 1.0),
}.items():
    (here / "thresholds" / f"{name}.bin").write_bytes(data)
