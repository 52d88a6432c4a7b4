"""Small modules with one job: no source file of the Libs, ``sirt`` or the Slicer modules is over 600 lines
(tests aside). A file that grows past it is split by job (see docs/layout.md)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 600


def test_no_source_file_is_over_600_lines():
    sources = [
        p for folder in ("SIRTDosimetry", "SIRTDosiomics", "SIRTResponse", "sirt") for p in (ROOT / folder).rglob("*.py")
        if "Testing" not in p.relative_to(ROOT).parts
    ]
    assert len(sources) > 50
    long = {str(p.relative_to(ROOT)): n for p in sources if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
