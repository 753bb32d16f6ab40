"""``q2key encode``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._cli_commit import Outputs
from ._cli_context import Context, load_thresholds
from ._cli_errors import located
from ._cli_io import CliError, default_batch_rows
from ._cli_read import open_source
from ._cli_source import Source
from ._cli_write import WriterThread, column_writers
from ._encode import encode
from ._errors import NonFiniteError, Q2KeyError
from ._progress import Progress
from ._thresholds import Thresholds


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
