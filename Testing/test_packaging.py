"""The packaging stays consistent: Slicer's on-demand install list matches pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

from SIRTDosimetryLib.mrml.dependencies import DOSIOMICS_REQUIREMENTS, DOSIMETRY_REQUIREMENTS, RESPONSE_REQUIREMENTS

ROOT = Path(__file__).resolve().parents[1]


def test_slicer_requirements_match_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirements in (DOSIMETRY_REQUIREMENTS, DOSIOMICS_REQUIREMENTS, RESPONSE_REQUIREMENTS):
        for requirement in requirements.values():
            assert requirement in declared, f"{requirement} is installed in Slicer but pyproject.toml declares otherwise"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
