"""`q2key calibrate` streams its file: a reservoir sample over row batches, bounded memory, a progress
bar, and every mistake that needs no data (``--plot``, output directories) reported before any work."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from q2key import _calibrator, _cli_read
from test_cli import DIM, ROWS, assert_one_line_error, cli_peak_rss_growth_kib, files, reservoir_thresholds, run


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((ROWS, DIM)).astype(np.float32)


@pytest.fixture
def npy(tmp_path: Path, x: np.ndarray) -> Path:
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


@pytest.mark.parametrize("method", ["equiprobable", "fidelity"])
@pytest.mark.parametrize("batch_rows", [1, 37, 1000, 5000])
def test_calibrate_fits_the_reservoir_whatever_the_batches(
    tmp_path: Path, npy: Path, x: np.ndarray, method: str, batch_rows: int
) -> None:
    rc, out, err = run(
        "calibrate", npy, "--rows", 300, "--seed", 5, "--method", method, "--batch-rows", batch_rows,
        "-o", tmp_path / "th.json",
    )  # fmt: skip
    assert rc == 0, err
    expected = reservoir_thresholds(x, 300, 5, method=method)
    assert q2key.Thresholds.from_json((tmp_path / "th.json").read_text()) == expected
    assert "300 sample rows" in out


def test_calibrate_offers_the_rows_in_batches(
    tmp_path: Path, npy: Path, x: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real = _calibrator.Calibrator.update

    def spy(self: _calibrator.Calibrator, batch: Any) -> None:
        sizes.append(int(np.shape(batch)[0]))
        real(self, batch)

    monkeypatch.setattr(_calibrator.Calibrator, "update", spy)
    rc, _, err = run("calibrate", npy, "--batch-rows", 100, "-o", tmp_path / "th.json")
    assert rc == 0, err
    assert sizes == [100] * (ROWS // 100) + [ROWS % 100]
    # Fewer rows than the default sample: all of them, so the thresholds are calibrate()'s on the file.
    assert q2key.Thresholds.from_json((tmp_path / "th.json").read_text()) == q2key.calibrate(x)


def test_calibrate_shows_progress_on_a_tty(tmp_path: Path, npy: Path) -> None:
    rc, _, err = run("calibrate", npy, "--batch-rows", 100, "-o", tmp_path / "th.json", tty=True)
    assert rc == 0 and err.startswith("\rsample") and "1,001/1,001 rows" in err
    rc, _, err = run("calibrate", npy, "--batch-rows", 100, "-o", tmp_path / "th.json", "--quiet", tty=True)
    assert rc == 0 and err == ""


def _calibrate_peak_growth_kib(path: Path, out: Path, sample: int) -> int:
    """How much ``calibrate PATH`` (default --rows made ``sample``) grows a fresh process's peak RSS."""
    argv = ["calibrate", str(path), "-o", str(out), "-q"]
    return cli_peak_rss_growth_kib(argv, prelude=f"import q2key._cli_calibrate as c\nc.DEFAULT_SAMPLE_ROWS = {sample}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM and MADV_DONTNEED: Linux")
def test_calibrate_peak_memory_is_the_samples_not_the_files(tmp_path: Path) -> None:
    rows, dim, sample = 60_000, 384, 2_000  # a 92 MB file, 30 times the sample
    arr = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(rows, dim))
    rng = np.random.default_rng(0)
    for s in range(0, rows, 10_000):
        arr[s : s + 10_000] = rng.standard_normal((10_000, dim), dtype=np.float32)
    arr.flush()
    np.save(tmp_path / "sample.npy", arr[:sample])
    del arr
    # The default --rows, made small: the whole file calibrated with no option, against a file that
    # is only the sample (what calibrate() itself needs on it).
    big = _calibrate_peak_growth_kib(tmp_path / "big.npy", tmp_path / "big.json", sample)
    small = _calibrate_peak_growth_kib(tmp_path / "sample.npy", tmp_path / "small.json", sample)
    file_kib = rows * dim * 4 // 1024
    # Loading the file would add it in float32 and again in float64 (270 000 KiB); streaming adds
    # a batch or two (8 MiB of float64 each by default).
    assert big - small < file_kib // 5, (big, small)
    assert q2key.Thresholds.from_json((tmp_path / "big.json").read_text()).dim == dim


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes opening a .npy input fail the test: the options must be checked before."""

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the sample was opened before the options were checked")

    monkeypatch.setattr(_cli_read, "NpySource", fail)


def test_plot_format_is_checked_before_any_work(tmp_path: Path, npy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    _no_work(monkeypatch)
    rc, _, err = run("calibrate", npy, "-o", tmp_path / "th.json", "--plot", tmp_path / "r.nope")
    assert_one_line_error(rc, err, 1, "r.nope: unknown image format 'nope'", "png")
    assert files(tmp_path) == {"x.npy"}


def test_missing_matplotlib_is_reported_before_any_work(
    tmp_path: Path, npy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_work(monkeypatch)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    rc, _, err = run("calibrate", npy, "-o", tmp_path / "th.json", "--plot", tmp_path / "r.png")
    assert_one_line_error(rc, err, 1, "--plot needs matplotlib")
    assert files(tmp_path) == {"x.npy"}


@pytest.mark.parametrize("option", ["-o", "--plot"])
def test_output_directories_are_checked_before_any_work(
    tmp_path: Path, npy: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    pytest.importorskip("matplotlib")
    _no_work(monkeypatch)
    paths = {"-o": tmp_path / "th.json", "--plot": tmp_path / "r.png"}
    paths[option] = tmp_path / "nodir" / "out.png"
    rc, _, err = run("calibrate", npy, "-o", paths["-o"], "--plot", paths["--plot"])
    assert_one_line_error(rc, err, 1, "nodir", "does not exist")


def test_nan_in_the_sample_names_the_file_and_its_row(tmp_path: Path, x: np.ndarray) -> None:
    bad = x.copy()
    bad[523, 7] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    for extra in ([], ["--rows", 10]):  # the reservoir checks every row offered, kept or not
        rc, _, err = run("calibrate", tmp_path / "nan.npy", "--batch-rows", 100, *extra, "-o", tmp_path / "t.json")
        assert_one_line_error(rc, err, 1, "nan.npy: row 523")
        assert "sample:" not in err and "batch" not in err


def test_a_sample_too_large_for_memory_names_rows(tmp_path: Path, x: np.ndarray) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.ipc as ipc

    fsl = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)
    with ipc.new_stream(str(tmp_path / "x.arrows"), pa.schema([("emb", fsl.type)])) as w:  # no row count
        w.write_batch(pa.record_batch([fsl], names=["emb"]))
    rc, _, err = run("calibrate", tmp_path / "x.arrows", "--rows", 10**15, "-o", tmp_path / "t.json")
    assert_one_line_error(rc, err, 1, "--rows 1,000,000,000,000,000: a sample of", "use a smaller --rows")


def test_method_help_says_what_each_method_does_and_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("calibrate", "--help")[0] == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "fidelity: the rule with the best held-out neighbour recall" in text
    assert "(default: equiprobable)" in text
    assert "--rows N" in text and "default 50,000" in text


def test_calibrate_too_few_rows_for_fidelity_names_the_file(tmp_path: Path, x: np.ndarray) -> None:
    np.save(tmp_path / "small.npy", x[:20])
    rc, _, err = run("calibrate", tmp_path / "small.npy", "--method", "fidelity", "-o", tmp_path / "t.json")
    assert_one_line_error(rc, err, 1, "small.npy: method 'fidelity' needs at least 64")
    assert DIM == x.shape[1]
