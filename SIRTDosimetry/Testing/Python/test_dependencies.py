"""Installing Slicer's missing Python packages: one confirmation, binary wheels only, clear failures.

The Slicer dialog and ``slicer.util.pip_install`` are replaced by callables; where pip itself matters
(binary-only refusal, a real install), a real ``pip`` runs offline against a local folder of packages.
"""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from SIRTDosimetryLib.mrml.dependencies import (
    BINARY_ONLY,
    DependenciesMissing,
    ensure_requirements,
    install_arguments,
    module_requirements,
    require_module,
    unsatisfied_requirements,
)


def versions(table: dict[str, str]):
    return lambda name: table.get(name)


def test_nothing_is_asked_when_everything_is_there():
    asked = []
    done = ensure_requirements([Requirement("scipy>=1.11,<2")], "Test", confirm=asked.append, install=asked.append,
                               version=versions({"scipy": "1.14.1"}))
    assert done == [] and asked == []


def test_one_confirmation_lists_missing_and_too_old_packages_and_declining_installs_nothing():
    requirements = [Requirement("scipy>=1.11,<2"), Requirement("pandas>=2.1,<3"), Requirement("PyYAML>=6.0,<7")]
    asked, installed = [], []
    with pytest.raises(DependenciesMissing, match="cannot run without: scipy<2,>=1.11, pandas<3,>=2.1"):
        ensure_requirements(requirements, "SIRT Test", confirm=lambda text: asked.append(text) or False,
                            install=installed.append, version=versions({"scipy": "1.9.0", "PyYAML": "6.0.1"}))
    assert len(asked) == 1 and installed == []
    assert "scipy<2,>=1.11 (installed: 1.9.0)" in asked[0] and "pandas<3,>=2.1 (not installed)" in asked[0]
    assert "PyYAML" not in asked[0]


def test_install_is_binary_only_upgrades_refused_versions_and_markers_are_honoured():
    requirements = [
        Requirement("scipy>=1.11,<2"),
        Requirement('xgboost-cpu>=2.0,<4 ; sys_platform == "no-such-platform"'),
        Requirement("pandas>=2.1,<3"),
    ]
    table = {"scipy": "1.9.0"}
    installed = []

    def install(arguments):
        installed.append(arguments)
        table.update(scipy="1.14.1", pandas="2.2.3")

    done = ensure_requirements(requirements, "Test", confirm=False, install=install, version=versions(table))
    assert installed == [done] and done[:2] == list(BINARY_ONLY) == ["--only-binary", ":all:"]
    assert done[2:] == ["--upgrade", "scipy<2,>=1.11", "pandas<3,>=2.1"]


def test_xgboost_satisfies_xgboost_cpu():
    requirement = Requirement("xgboost-cpu>=2.0,<4")
    assert unsatisfied_requirements([requirement], versions({"xgboost": "3.0.2"})) == []
    assert unsatisfied_requirements([requirement], versions({"xgboost": "1.7.6"}))[0].installed == "1.7.6"


def test_a_pip_failure_is_one_clear_message():
    def failing(arguments):
        raise subprocess.CalledProcessError(1, ["PythonSlicer", "-m", "pip", "install", *arguments])

    with pytest.raises(DependenciesMissing) as caught:
        ensure_requirements([Requirement("pandas>=2.1,<3")], "SIRT Test", confirm=lambda text: True, install=failing,
                            version=versions({}))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("SIRT Test: installing pandas<3,>=2.1 failed")
    assert "returned non-zero exit status 1" in message and "ready-built wheels" in message


def test_still_missing_after_installation_says_so():
    with pytest.raises(DependenciesMissing, match="still not met: pandas<3,>=2.1 \\(not installed\\).*Restart Slicer"):
        ensure_requirements([Requirement("pandas>=2.1,<3")], "Test", confirm=False, install=lambda a: None, version=versions({}))


def test_a_package_from_another_extension_is_named_with_the_way_to_get_it():
    require_module("json", "unused")
    with pytest.raises(DependenciesMissing, match="SlicerRadiomics"):
        from SIRTDosimetryLib.mrml.dependencies import RADIOMICS_MISSING

        require_module("surely_not_a_module_xyz", RADIOMICS_MISSING)


def test_self_tests_also_install_what_they_need():
    names = {r.name for r in module_requirements("SIRTDosimetry", testing=True)}
    assert "pynrrd" in names and "pynrrd" not in {r.name for r in module_requirements("SIRTDosimetry")}


# --- real pip, offline, against a local folder -----------------------------------------------------


def _sdist(folder: Path, name: str, version: str) -> None:
    with tarfile.open(folder / f"{name}-{version}.tar.gz", "w:gz") as archive:
        data = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        info = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def _wheel(folder: Path, name: str, version: str) -> None:
    """A minimal pure-Python wheel (PEP 427) with one module."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}.py": b"VALUE = 42\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{dist_info}/RECORD"] = ("\n".join(record + [f"{dist_info}/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(folder / f"{module}-{version}-py3-none-any.whl", "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)


def _local_pip(index: Path, target: Path):
    def install(arguments):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "--find-links", str(index),
             "--target", str(target), *arguments],
            check=True, capture_output=True, timeout=120,
        )
    return install


def _version_in(target: Path):
    def version(name):
        found = [d for d in metadata.distributions(path=[str(target)]) if d.metadata["Name"] == name]
        return found[0].version if found else None
    return version


def test_real_pip_installs_a_wheel_and_refuses_a_source_package(tmp_path):
    index, target = tmp_path / "index", tmp_path / "site"
    index.mkdir()
    _wheel(index, "sirt-probe-wheel", "1.2")
    _sdist(index, "sirt-probe-sdist", "1.0")
    install, version = _local_pip(index, target), _version_in(target)

    done = ensure_requirements([Requirement("sirt-probe-wheel>=1.0,<2")], "Test", confirm=False, install=install, version=version)
    assert done == [*BINARY_ONLY, "sirt-probe-wheel<2,>=1.0"] and version("sirt-probe-wheel") == "1.2"

    with pytest.raises(DependenciesMissing, match="installing sirt-probe-sdist<2,>=1.0 failed"):
        ensure_requirements([Requirement("sirt-probe-sdist>=1.0,<2")], "Test", confirm=False, install=install, version=version)
    assert version("sirt-probe-sdist") is None
    assert install_arguments(unsatisfied_requirements([Requirement("x>=1")], versions({})))[:2] == ["--only-binary", ":all:"]


def test_dosimetry_runs_on_mrml_without_pynrrd(patient1_paths):
    """Slicer has no pynrrd: the module's imports and a dose on MRML nodes must not need it."""
    pytest.importorskip("slicer")
    code = f"""
import sys
sys.modules["nrrd"] = None  # any "import nrrd" now fails
from SIRTDosimetryLib.mrml.scene import new_scene, load_volume, load_segmentation
from SIRTDosimetryLib.mrml.logic import DoseSettings, compute_dose_from_nodes
context = new_scene()
volume = load_volume(context.scene, {str(patient1_paths[0])!r}, "pet")
segmentation = load_segmentation(context.scene, {str(patient1_paths[1])!r}, "seg")
out = compute_dose_from_nodes(volume, segmentation, DoseSettings(units="bq_per_ml", segments=["Liver"]).to_parameters(), with_dvh=False)
print("liver", out.result.segments[0].dose_mean_gy)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split()[-1]) > 1.0
