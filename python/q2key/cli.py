"""The `q2key` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="q2key", description="Q² codes, transition keys and Lee-distance search.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="encode and search the bundled real embeddings, report speed and recall")
    demo.add_argument("-k", type=int, default=10, help="neighbours per query (default 10)")
    demo.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    sub.add_parser("version", help="print the version and the SIMD backend")
    args = parser.parse_args(argv)

    from . import __version__, simd_backend
    from ._native import Q2KeyError

    try:
        if args.command == "demo":
            from .demo import run

            run(k=args.k, threads=args.threads)
        else:
            print(f"q2key {__version__} ({simd_backend()})")
    except Q2KeyError as err:
        print(f"q2key: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
