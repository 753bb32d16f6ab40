"""The `q2key` command line (also ``python -m q2key``).

::

    q2key encode INPUT --codes OUT.npy --keys OUT.npy [--transitions OUT.npy] [--thresholds th.json]
                       [--column NAME] [--batch-rows N] [--threads T] [--quiet]
    q2key calibrate SAMPLE [--method equiprobable|per_dim|fidelity|lloyd_max] [--rotation random|learned]
                           -o th.json [--plot report.png] [--rows N] [--seed S] [--column NAME]
                           [--batch-rows N] [--quiet]
    q2key index build VECTORS -o index.q2 [--ids ids.npy] [--thresholds th.json] [--weights A,B,C]
                            [--lists N|auto [--train-rows N] [--seed S]]
    q2key index search index.q2 QUERIES [-k 10] [-o results.npz] [--scoring auto|asymmetric|lee] [--rescore VECTORS]
                                        [--nprobe N]
    q2key index info index.q2 [--json]
    q2key demo | version

Inputs are ``.npy`` (memory-mapped, read in row batches), a ``.npz`` member (``--column NAME`` or
``FILE.npz:NAME``), or a Parquet / Arrow IPC file with a column of lists of numbers, fixed-size
or all of the same length (needs pyarrow). ``calibrate`` fits a uniform sample of ``--rows`` rows
kept as the file streams by. Outputs ending in ``.parquet`` or ``.arrow`` are Arrow tables (columns ``code``
fixed-size binary, ``key`` uint64, ``transitions`` uint32; name the same file in several options
to get several columns); anything else is ``.npy``. Every output is written atomically.

Errors are one line on stderr: exit code 2 for usage errors, 1 for everything else, 130 on Ctrl-C,
143 on SIGTERM (temporary outputs are removed in both cases).
``Q2KEY_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from ._cli_calibrate import DEFAULT_SAMPLE_ROWS
from ._cli_context import Context


class UsageError(Exception):
    """A command-line usage error (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _lists(text: str) -> int:
    """``--lists``: a positive integer, or ``auto`` (0: ≈ 4·√rows, decided once the rows are known)."""
    return 0 if text == "auto" else _positive(text)


def _share(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return v


#: ``index search --scoring`` choices: :meth:`q2key.Index.search`'s ``scoring=`` values.
SCORINGS = ("auto", "asymmetric", "lee")

#: Help of every positional argument that names a file of vectors.
VECTORS_HELP = ".npy, .npz[:MEMBER], .parquet or .arrow file of vectors"


def _thresholds_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--thresholds", metavar="JSON", help="thresholds from `q2key calibrate` (default: Gaussian)")


def _common(p: argparse.ArgumentParser, *, batches: bool = True, column: bool = True, quiet: bool = False) -> None:
    """The input, batching and thread options several commands share (in this order in --help)."""
    if column:
        p.add_argument(
            "--column", metavar="NAME", help="the .npz member or the Parquet/Arrow column (default: the only one)"
        )
    if batches:
        p.add_argument("--batch-rows", type=_positive, metavar="N", help="rows per batch (default: about 64 MiB)")
    p.add_argument("--threads", type=_positive, metavar="T", help="worker threads (default: all cores)")
    if quiet:
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="q2key", description="Q² codes, transition keys and Lee-distance search.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    enc = sub.add_parser("encode", help="encode vectors from a file into codes, keys and transition counts")
    enc.add_argument("input", metavar="INPUT", help=VECTORS_HELP)
    enc.add_argument("--codes", metavar="OUT", help="uint8 (N, ceil(dim/4)) codes (.npy, or .parquet/.arrow)")
    enc.add_argument("--keys", metavar="OUT", help="uint64 (N,) transition keys")
    enc.add_argument("--transitions", metavar="OUT", help="uint32 (N,) transition counts")
    _thresholds_option(enc)
    _common(enc, quiet=True)
    enc.set_defaults(func=_encode)

    cal = sub.add_parser("calibrate", help="fit thresholds to a sample of vectors, print the report")
    cal.add_argument("sample", metavar="SAMPLE", help=VECTORS_HELP)
    cal.add_argument(
        "--method",
        choices=("equiprobable", "per_dim", "fidelity", "lloyd_max"),
        default="equiprobable",
        help="equiprobable: one threshold for every dimension; per_dim: one set per dimension; "
        "fidelity: the rule with the best held-out neighbour recall of Lee search (best for Lee scoring); "
        "lloyd_max: per-dimension cuts and values with the least reconstruction error (best for asymmetric "
        "scoring). Every method also fits the reconstruction table asymmetric scoring uses "
        "(default: equiprobable)",
    )
    cal.add_argument(
        "--rotation",
        choices=("random", "learned"),
        help="also fit an orthogonal rotation applied to every row before quantising (stored in the JSON): "
        "random: Haar-random from --seed; learned: refined on the sample to lower the reconstruction error "
        "(with --method lloyd_max, the best for asymmetric scoring). Default: none",
    )
    cal.add_argument("-o", "--output", required=True, metavar="JSON", help="where to write the thresholds")
    cal.add_argument("--plot", metavar="IMAGE", help="also save a symbol-frequency plot (needs matplotlib)")
    cal.add_argument(
        "--rows",
        type=_positive,
        metavar="N",
        help="fit to a uniform random sample of N rows, streamed out of the file "
        f"(default {DEFAULT_SAMPLE_ROWS:,}; all rows when the file holds fewer)",
    )
    cal.add_argument("--seed", type=int, help="seed of the row sample, the fidelity split and the rotation (default 0)")
    cal.add_argument("--outer-share", type=_share, default=0.5, metavar="F", help="share in A ∪ D (default 0.5)")
    _common(cal, quiet=True)
    cal.set_defaults(func=_calibrate)

    idx = sub.add_parser("index", help="build, search and describe q2key.Index files")
    isub = idx.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    b = isub.add_parser("build", help="encode vectors into an index file")
    b.add_argument("vectors", metavar="VECTORS", help=VECTORS_HELP)
    b.add_argument("-o", "--output", required=True, metavar="INDEX", help="the index file to write")
    b.add_argument("--ids", metavar="NPY", help="1-D integer .npy of ids, one per vector (default 0..N-1)")
    _thresholds_option(b)
    b.add_argument("--weights", metavar="A,B,C", help="weighted Lee search: w_mag,w_sign,w_both")
    b.add_argument(
        "--lists",
        type=_lists,
        metavar="N|auto",
        help="build an inverted-file index (q2key.IVFIndex) of N lists (auto: ≈ 4·√rows): one pass samples "
        "the training rows, k-means fits the lists, a second pass sizes the lists, a third encodes and adds the rows",
    )
    b.add_argument(
        "--train-rows",
        type=_positive,
        metavar="N",
        help="with --lists: k-means on a uniform sample of N rows (default 64 per list, at most 262,144)",
    )
    b.add_argument("--seed", type=int, help="with --lists: seed of the training sample and of k-means (default 0)")
    _common(b, quiet=True)
    b.set_defaults(func=_index_build)

    s = isub.add_parser("search", help="the k nearest indexed vectors of each query")
    s.add_argument("index", metavar="INDEX")
    s.add_argument("queries", metavar="QUERIES", help="float vectors (or uint8 codes) in any input format")
    s.add_argument("-k", type=_positive, default=10, help="neighbours per query (default 10)")
    s.add_argument("-o", "--output", metavar="NPZ", help="write distances and ids to a .npz (default: TSV on stdout)")
    s.add_argument(
        "--scoring",
        choices=SCORINGS,
        default="auto",
        help="asymmetric: float queries against the stored codes' reconstruction, distance 1 − cosine; "
        "lee: queries encoded, Lee distance between codes (integers; weighted for an index built with "
        "--weights); auto: asymmetric for float queries, lee for uint8 codes and for an index with "
        "--weights (default: auto)",
    )
    s.add_argument("--rescore", metavar="VECTORS", help="re-rank by exact cosine with these vectors, indexed by id")
    s.add_argument("--oversample", type=_positive, default=4, help="candidates per result when rescoring (default 4)")
    s.add_argument(
        "--nprobe",
        type=_positive,
        metavar="N",
        help="inverted-file index: scan the N lists nearest each query (default 32; more: slower, better recall)",
    )
    _common(s, quiet=True)
    s.set_defaults(func=_index_search)

    i = isub.add_parser("info", help="dimension, rows, thresholds, weights and sizes of an index file")
    i.add_argument("index", metavar="INDEX")
    i.add_argument("--json", action="store_true", help="print a JSON object")
    i.set_defaults(func=_index_info)

    demo = sub.add_parser("demo", help="encode and search the bundled real embeddings, report speed and recall")
    demo.add_argument("-k", type=_positive, default=10, help="neighbours per query (default 10)")
    demo.add_argument("--threads", type=_positive, default=None, help="worker threads (default: all cores)")
    demo.set_defaults(func=_demo)
    sub.add_parser("version", help="print the version and the SIMD backend").set_defaults(func=_version)
    return parser


# Each command's module is imported only when that command runs (``q2key version`` stays quick).
Command = Callable[[argparse.Namespace, Context], int]


def _encode(args: argparse.Namespace, ctx: Context) -> int:
    from ._cli_encode import cmd_encode

    return cmd_encode(args, ctx)


def _calibrate(args: argparse.Namespace, ctx: Context) -> int:
    from ._cli_calibrate import cmd_calibrate

    return cmd_calibrate(args, ctx)


def _index_build(args: argparse.Namespace, ctx: Context) -> int:
    from ._cli_index import cmd_build

    return cmd_build(args, ctx)


def _index_search(args: argparse.Namespace, ctx: Context) -> int:
    from ._cli_index import cmd_search

    return cmd_search(args, ctx)


def _index_info(args: argparse.Namespace, ctx: Context) -> int:
    from ._cli_index import cmd_info

    return cmd_info(args, ctx)


def _demo(args: argparse.Namespace, ctx: Context) -> int:
    from .demo import run as run_demo

    run_demo(k=args.k, threads=args.threads, out=ctx.stdout)
    return 0


def _version(args: argparse.Namespace, ctx: Context) -> int:
    from . import __version__, simd_backend

    print(f"q2key {__version__} ({simd_backend()})", file=ctx.stdout)
    return 0


def one_line(err: BaseException) -> str:
    """The error as one line: ``path: reason`` for OS errors, the message for q2key's own, the type otherwise."""
    from ._cli_io import CliError
    from ._errors import DTypeError, Q2KeyError

    if isinstance(err, OSError) and err.strerror:
        text = f"{err.filename}: {err.strerror}" if err.filename is not None else err.strerror
    elif isinstance(err, (CliError, Q2KeyError, DTypeError, UsageError)):
        text = str(err)
    elif isinstance(err, MemoryError):
        text = "out of memory (try a smaller --batch-rows)"
    else:
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return " ".join(text.split())


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    tty: bool | None = None,
) -> int:
    """Runs the command line; returns the exit code (0 ok, 1 error, 2 usage error, 130 interrupted).

    ``tty`` forces the progress bar on (``True``) or off (``False``); by default it is drawn only
    when stderr is a terminal.
    """
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    debug = os.environ.get("Q2KEY_DEBUG", "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
    except UsageError as e:
        print(f"q2key: error: {one_line(e)}", file=err)
        return 2
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    restore = _terminate_as_exception()
    try:
        command: Command = args.func
        return command(args, Context(out, err, tty))
    except Terminated:
        if debug:
            raise
        print("q2key: terminated", file=err)
        return 143
    except KeyboardInterrupt:
        if debug:
            raise
        print("q2key: interrupted", file=err)
        return 130
    except BrokenPipeError:  # stdout closed early (`q2key index search … | head`): not an error worth a line
        if stdout is None:
            _silence_stdout()
        return 141
    except Exception as e:
        if debug:
            raise
        print(f"q2key: error: {one_line(e)}", file=err)
        return 1
    finally:
        restore()


class Terminated(BaseException):
    """SIGTERM, raised where the process is so that temporary outputs are removed on the way out."""


def _terminate_as_exception() -> Callable[[], None]:
    """Turns SIGTERM into :class:`Terminated` while a command runs (main thread only); returns the undo."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)

    def undo() -> None:
        signal.signal(signal.SIGTERM, previous)

    return undo


def _silence_stdout() -> None:
    """Points stdout at /dev/null so the interpreter's final flush does not complain about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover (no real stdout)
        pass


if __name__ == "__main__":
    sys.exit(main())
