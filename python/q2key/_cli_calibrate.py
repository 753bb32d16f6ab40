"""``q2key calibrate``: a reservoir sample streamed out of the file, thresholds fitted to it."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._calibrator import Calibrator
from ._cli_commit import Outputs, check_output_path
from ._cli_context import Context
from ._cli_errors import located
from ._cli_io import CliError
from ._cli_read import open_source
from ._cli_source import Source
from ._errors import Q2KeyError
from ._thresholds import Thresholds

#: Rows ``calibrate`` samples when ``--rows`` is not given: quantiles of 50 000 rows are within
#: about 0.3 % of the whole file's, and the reservoir (float64) stays at 400 bytes per dimension.
DEFAULT_SAMPLE_ROWS = 50_000
#: Bytes of float64 per batch when ``--batch-rows`` is not given (the reservoir converts each batch
#: to float64 to check it, so a batch costs this much on top of its mapped input).
SAMPLE_BATCH_BYTES = 8 << 20


def cmd_calibrate(args: argparse.Namespace, ctx: Context) -> int:
    # Every mistake that needs no data is reported before the file is read.
    plot_format = check_plot(args.plot) if args.plot else None
    for path in (args.output, args.plot):
        if path is not None:
            check_output_path(path)
    with open_source(args.sample, args.column, what="sample") as src:
        dim = src.dim
        sample = reservoir_sample(src, args, ctx)
    try:
        th = sample.thresholds(
            method=args.method, rotation=args.rotation, outer_share=args.outer_share, threads=args.threads
        )
    except Q2KeyError as e:
        raise CliError(f"{args.sample}: {str(e).removeprefix('sample: ')}") from None
    with Outputs() as out:
        out.new(args.output).file.write(th.to_json().encode())
        if args.plot:
            figure = _plot(th)
            try:
                figure.savefig(out.new(args.plot).file, format=plot_format)
            finally:
                _close(figure)
    print(str(th.report), file=ctx.stdout)
    plot = f" and {args.plot}" if args.plot else ""
    if args.rotation is None:
        what = f"{th.kind} thresholds and their reconstruction table"
    else:
        what = f"{th.kind} thresholds, their reconstruction table and a {args.rotation} rotation"
    print(f"wrote {args.output}{plot} ({what}, dimension {dim})", file=ctx.stdout)
    return 0


def reservoir_sample(src: Source, args: argparse.Namespace, ctx: Context) -> Calibrator:
    """A :class:`q2key.Calibrator` fed every row of ``src`` in batches: a uniform sample of ``--rows`` rows
    (all of them, in file order, when the file holds no more), drawn with ``--seed`` (default 0)."""
    want = args.rows or DEFAULT_SAMPLE_ROWS
    capacity = max(1, min(want, src.rows)) if src.rows is not None else want
    seed = 0 if args.seed is None else args.seed
    try:
        sample = Calibrator(src.dim, reservoir=capacity, seed=seed)
    except MemoryError:  # the reservoir is allocated whole, up front
        raise CliError(
            f"--rows {want:,}: a sample of {capacity:,} rows of dimension {src.dim} does not fit in memory; "
            "use a smaller --rows"
        ) from None
    batch_rows = args.batch_rows or max(1, SAMPLE_BATCH_BYTES // (src.dim * 8))
    done = 0
    with ctx.progress(src.rows, "sample", args.quiet) as bar:
        for batch in src.batches(batch_rows):
            try:
                sample.update(batch)
            except Q2KeyError as e:
                raise located(e, src.path, done) from None
            done += int(batch.shape[0])
            bar.update(int(batch.shape[0]))
    return sample


def check_plot(path: str) -> str:
    """The image format of ``--plot PATH`` (from its extension, PNG without one), checked to be one
    matplotlib writes; a one-line error if matplotlib or ``q2key.plot`` is missing."""
    _plot_module()
    from matplotlib.backend_bases import FigureCanvasBase

    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    known = FigureCanvasBase.get_supported_filetypes()
    if fmt not in known:
        raise CliError(f"--plot {path}: unknown image format {fmt!r} (matplotlib writes: {', '.join(sorted(known))})")
    return fmt


def _plot_module() -> Any:
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only: never open a window
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]  # noqa: F401

        from . import plot  # type: ignore[attr-defined,unused-ignore]
    except ImportError as e:
        if "matplotlib" in str(e):
            raise CliError("--plot needs matplotlib: pip install matplotlib") from None
        raise CliError(f"--plot is not available in this q2key ({e})") from None
    return plot


def _plot(th: Thresholds) -> Any:
    return _plot_module().symbol_frequencies(th)


def _close(figure: Any) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(figure)
