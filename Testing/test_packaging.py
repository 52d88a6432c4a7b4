"""The packaging stays consistent: what Slicer installs on first use matches pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from SIRTDosimetryLib.mrml.dependencies import SAME_PACKAGE, load_requirements, module_requirements, requirements_path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("SIRTDosimetry", "SIRTDosiomics", "SIRTResponse")


def declared() -> dict[str, Requirement]:
    """pyproject.toml's core dependencies by canonical name."""
    entries = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {canonicalize_name(r.name): r for r in map(Requirement, entries)}


@pytest.mark.parametrize("lib", ["SIRTDosimetryLib", "SIRTDosiomicsLib", "SIRTResponseLib"])
def test_slicer_requirements_have_the_bounds_of_pyproject(lib):
    """Every package a module installs in Slicer is a core dependency with the same lower and upper bound."""
    core = declared()
    requirements = load_requirements(requirements_path(lib))
    assert requirements, f"{lib}/requirements.txt lists nothing"
    for requirement in requirements:
        names = [requirement.name, *SAME_PACKAGE.get(requirement.name, ())]
        match = next((core[canonicalize_name(n)] for n in names if canonicalize_name(n) in core), None)
        assert match is not None, f"{requirement} is installed in Slicer but pyproject.toml does not declare it"
        assert requirement.specifier == match.specifier, f"{requirement} in Slicer, {match} in pyproject.toml"
        assert any(s.operator == "<" for s in requirement.specifier), f"{requirement} has no upper bound"
        assert any(s.operator == ">=" for s in requirement.specifier), f"{requirement} has no lower bound"


def test_slicer_requirements_exclude_what_slicer_ships_or_cannot_build():
    """No package Slicer bundles (replacing numpy or SimpleITK breaks Slicer), no source-only pyradiomics,
    no CUDA-laden xgboost where xgboost-cpu exists."""
    names = {canonicalize_name(r.name): r for m in MODULES for r in module_requirements(m)}
    assert not {"numpy", "simpleitk", "vtk", "slicer-core", "pyradiomics", "pyradiomics-bhklab", "pynrrd"} & set(names)
    assert "scipy" in names and "scikit-learn" in names
    assert str(names["xgboost-cpu"].marker) == 'sys_platform != "darwin"'
    assert str(names["xgboost"].marker) == 'sys_platform == "darwin"'


def test_module_requirements_add_dosimetry_to_each_module():
    dosimetry = {r.name for r in module_requirements("SIRTDosimetry")}
    for module in ("SIRTDosiomics", "SIRTResponse"):
        names = [r.name for r in module_requirements(module)]
        assert dosimetry <= set(names) and len(names) == len(set(names))
    assert "threadpoolctl" in {r.name for r in module_requirements("SIRTDosiomics")}


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
