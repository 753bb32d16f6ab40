"""``q2key encode`` and ``q2key calibrate``."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from ._cli_io import (
    CliError,
    Outputs,
    Source,
    WriterThread,
    column_writers,
    default_batch_rows,
    located,
    open_source,
)
from ._encode import encode
from ._native import NonFiniteError, Q2KeyError
from ._progress import Progress
from ._thresholds import Thresholds


@dataclass
class Context:
    """Where a command writes, and whether the progress bar is forced on/off (``None``: on a TTY)."""

    stdout: TextIO
    stderr: TextIO
    tty: bool | None = None

    def progress(self, total: int | None, label: str, quiet: bool) -> Progress:
        return Progress(total, label=label, stream=self.stderr, enabled=False if quiet else self.tty)


def load_thresholds(path: str | None, dim: int | None = None) -> Thresholds | None:
    """``Thresholds.from_json`` of a file (checked against ``dim``), or ``None``."""
    if path is None:
        return None
    with open(path, "rb") as f:
        text = f.read()
    try:
        th = Thresholds.from_json(text)
    except Q2KeyError as e:
        raise CliError(f"{path}: {str(e).removeprefix('text: ')}") from None  # the file is the text
    if dim is not None:
        try:
            th.resolve(dim, "--thresholds")
        except Q2KeyError as e:
            raise CliError(f"{path}: {e}") from None
    return th


def encode_source(
    src: Source,
    outputs: dict[str, str | None],
    *,
    threshold: Thresholds | None,
    batch_rows: int | None,
    threads: int | None,
    progress: Progress,
    encoder: Any = None,
) -> int:
    """Encodes ``src`` batch by batch into the files of ``outputs`` (``codes``/``keys``/``transitions`` → path).

    Returns the number of rows. Every output is written atomically: on any error none is left behind.
    """
    encoder = encode if encoder is None else encoder
    width = (src.dim + 3) // 4
    rows = batch_rows or default_batch_rows(src.dim, src.dtype.itemsize)
    for path in outputs.values():
        if path is not None and os.path.exists(path) and os.path.samefile(path, src.path):
            raise CliError(f"{path}: is the input file; choose another output name")
    done = 0
    with Outputs() as out, progress:
        writers = column_writers(out, outputs, width)
        background = WriterThread(writers)
        try:
            for batch in src.batches(rows):
                try:
                    enc = encoder(batch, threshold=threshold, threads=threads)
                except (NonFiniteError, Q2KeyError) as e:
                    raise located(e, src.path, done) from None
                background.put({"codes": enc.codes, "keys": enc.keys, "transitions": enc.transitions})
                done += int(batch.shape[0])
                progress.update(int(batch.shape[0]))
            background.close()
            for w in writers:
                w.finish()
        except BaseException:
            background.abort()
            for w in writers:
                w.abort()
            raise
    return done


def cmd_encode(args: argparse.Namespace, ctx: Context) -> int:
    outputs = {"codes": args.codes, "keys": args.keys, "transitions": args.transitions}
    if not any(outputs.values()):
        raise CliError("nothing to write: give at least one of --codes, --keys, --transitions")
    with open_source(args.input, args.column) as src:
        th = load_thresholds(args.thresholds, src.dim)
        rows = encode_source(
            src,
            outputs,
            threshold=th,
            batch_rows=args.batch_rows,
            threads=args.threads,
            progress=ctx.progress(src.rows, "encode", args.quiet),
        )
    if not args.quiet:
        written = ", ".join(p for p in dict.fromkeys(v for v in outputs.values() if v))
        print(f"encoded {rows:,} vectors of dimension {src.dim} → {written}", file=ctx.stderr)
    return 0


def cmd_calibrate(args: argparse.Namespace, ctx: Context) -> int:
    from ._calibrate import calibrate

    with open_source(args.sample, args.column, what="sample") as src:
        sample = src.sample(args.rows, args.seed)
        dim = src.dim
    th = calibrate(
        sample,
        method=args.method,
        outer_share=args.outer_share,
        seed=0 if args.seed is None else args.seed,
        threads=args.threads,
    )
    figure = _plot(th) if args.plot else None
    with Outputs() as out:
        out.new(args.output).file.write(th.to_json().encode())
        if figure is not None:
            fmt = os.path.splitext(args.plot)[1].lstrip(".").lower() or "png"
            try:
                figure.savefig(out.new(args.plot).file, format=fmt)
            finally:
                _close(figure)
    print(str(th.report), file=ctx.stdout)
    plot = f" and {args.plot}" if args.plot else ""
    print(f"wrote {args.output}{plot} ({th.kind} thresholds, dimension {dim})", file=ctx.stdout)
    return 0


def _plot(th: Thresholds) -> Any:
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only: never open a window
    try:
        from . import plot  # type: ignore[attr-defined,unused-ignore]

        return plot.symbol_frequencies(th)
    except ImportError as e:
        if "matplotlib" in str(e):
            raise CliError("--plot needs matplotlib: pip install matplotlib") from None
        raise CliError(f"--plot is not available in this q2key ({e})") from None


def _close(figure: Any) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(figure)
