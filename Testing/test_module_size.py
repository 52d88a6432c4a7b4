"""Small modules with one job: no source file of the three Libs or of ``sirt`` is over 600 lines (tests
aside). A file that grows past it is split by job (see docs/layout.md). The Slicer module files
(``SIRTDosimetry.py``…) are not counted here: ``test_ui_static.py`` reads their parameter nodes and
enums from the module file itself."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("SIRTDosimetry/SIRTDosimetryLib", "SIRTDosiomics/SIRTDosiomicsLib", "SIRTResponse/SIRTResponseLib", "sirt")
MAX_LINES = 600


def test_no_source_file_is_over_600_lines():
    sources = [p for folder in PACKAGES for p in (ROOT / folder).rglob("*.py")]
    assert len(sources) > 50
    long = {str(p.relative_to(ROOT)): n for p in sources if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
