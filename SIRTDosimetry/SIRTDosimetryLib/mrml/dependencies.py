"""Python packages missing from Slicer's bundled Python: installed on first use, after asking.

Slicer ships numpy, SimpleITK, VTK and pydicom; SlicerSIRT also needs packages such as pynrrd and
scipy (dose), pyradiomics-bhklab (features), scikit-learn and xgboost (response models). A module
calls ``ensure_requirements`` when the user first asks for work that needs them (never when the
module is imported, so that Slicer starts fast and offline): the user sees the list, and only
after they accept is ``slicer.util.pip_install`` run.

The Slicer calls are injected (``confirm``, ``install``) so this is tested without Slicer.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping

# import name -> pip requirement; Testing/test_packaging.py checks each against pyproject.toml
DOSIMETRY_REQUIREMENTS: dict[str, str] = {"nrrd": "pynrrd>=1.0", "scipy": "scipy>=1.11", "pydicom": "pydicom>=2.4"}
DOSIOMICS_REQUIREMENTS: dict[str, str] = {
    **DOSIMETRY_REQUIREMENTS,
    "radiomics": "pyradiomics-bhklab>=3.1.4",
    "pandas": "pandas>=2.1",
    "yaml": "PyYAML>=6.0",
    "threadpoolctl": "threadpoolctl>=3.1",
}
RESPONSE_REQUIREMENTS: dict[str, str] = {
    **DOSIMETRY_REQUIREMENTS,
    "sklearn": "scikit-learn>=1.6",
    "xgboost": "xgboost>=2.0",
    "skops": "skops>=0.10",
    "imblearn": "imbalanced-learn>=0.13",  # the model pipeline (imblearn.pipeline.Pipeline, SMOTE)
    "pandas": "pandas>=2.1",
}


class DependenciesMissing(RuntimeError):
    """The user declined the installation, or it failed; the message says which packages."""


def missing_requirements(requirements: Mapping[str, str], find_spec: Callable = importlib.util.find_spec) -> dict[str, str]:
    """The entries of ``requirements`` (import name → pip requirement) whose module cannot be found."""
    missing = {}
    for module, requirement in requirements.items():
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing[module] = requirement
    return missing


def _slicer_confirm(text: str) -> bool:
    import slicer

    return bool(slicer.util.confirmOkCancelDisplay(text, "SlicerSIRT: install Python packages"))


def _slicer_install(requirements: list[str]) -> None:
    import slicer

    slicer.util.pip_install(requirements)


def ensure_requirements(
    requirements: Mapping[str, str],
    requester: str,
    confirm: Callable[[str], bool] | None = None,
    install: Callable[[list[str]], None] | None = None,
    find_spec: Callable = importlib.util.find_spec,
) -> list[str]:
    """Make sure the modules of ``requirements`` can be imported; returns the requirements installed.

    Asks the user first (``confirm``, default ``slicer.util.confirmOkCancelDisplay``), then installs
    with ``install`` (default ``slicer.util.pip_install``). Raises ``DependenciesMissing`` when the
    user declines or the modules are still missing afterwards.
    """
    missing = missing_requirements(requirements, find_spec)
    if not missing:
        return []
    wanted = sorted(set(missing.values()))
    confirm = confirm or _slicer_confirm
    install = install or _slicer_install
    text = (
        f"{requester} needs Python packages that are not installed in Slicer yet:\n\n  "
        + "\n  ".join(wanted)
        + "\n\nInstall them now? (This downloads them from the Python Package Index and may take a few minutes.)"
    )
    if not confirm(text):
        raise DependenciesMissing(f"{requester} cannot run without: {', '.join(wanted)}")
    install(wanted)
    importlib.invalidate_caches()
    still = missing_requirements(missing, find_spec)
    if still:
        raise DependenciesMissing(f"installing {', '.join(sorted(set(still.values())))} failed; see the Python console")
    return wanted
