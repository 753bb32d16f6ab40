"""docs/guide.md runs: every ```python block, in order, in one namespace; ```python no-run blocks compile."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"
FENCE = re.compile(r"^```(\S*)[ \t]*(.*?)\s*$")


@dataclass(frozen=True)
class Block:
    language: str
    flags: frozenset[str]
    line: int  # 1-based line of the first line of code
    code: str

    @property
    def runs(self) -> bool:
        return self.language == "python" and "no-run" not in self.flags


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text (``` fences at the start of a line, not nested)."""
    out: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        assert end < len(lines), f"{GUIDE.name}:{i + 1}: code block never closed"
        out.append(Block(m.group(1), frozenset(m.group(2).split()), start + 1, "\n".join(lines[start:end]) + "\n"))
        i = end + 1
    return out


def compiled(block: Block) -> object:
    # Pad with blank lines so tracebacks and syntax errors point at the guide's own line numbers.
    return compile("\n" * (block.line - 1) + block.code, str(GUIDE), "exec")


def test_block_parser() -> None:
    text = "x\n```python\na = 1\n```\n```python no-run\nb = 2\n```\n```bash\nls\n```\n"
    got = blocks(text)
    assert [(b.language, b.runs, b.line, b.code) for b in got] == [
        ("python", True, 3, "a = 1\n"),
        ("python", False, 6, "b = 2\n"),
        ("bash", False, 9, "ls\n"),
    ]


def test_guide_has_runnable_and_recipe_blocks() -> None:
    found = [b for b in blocks(GUIDE.read_text(encoding="utf-8")) if b.language == "python"]
    assert sum(b.runs for b in found) >= 10
    assert sum(not b.runs for b in found) >= 4  # sentence-transformers, Dask, Ray, Spark
    for b in found:
        assert b.flags <= {"no-run"}, f"{GUIDE.name}:{b.line - 1}: unknown flag(s) {sorted(b.flags)}"


def test_no_run_blocks_compile() -> None:
    for b in blocks(GUIDE.read_text(encoding="utf-8")):
        if b.language == "python" and not b.runs:
            compiled(b)  # a SyntaxError names the guide's line


@pytest.mark.slow
def test_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")  # section 9 draws figures
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # the guide writes thresholds.json, corpus.q2 and PNGs into the current directory
    namespace: dict[str, object] = {"__name__": "guide"}
    for b in blocks(GUIDE.read_text(encoding="utf-8")):
        if b.runs:
            exec(compiled(b), namespace)
    import matplotlib.pyplot as plt

    plt.close("all")
