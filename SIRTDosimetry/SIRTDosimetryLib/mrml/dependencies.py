"""Python packages missing from Slicer's bundled Python: installed on first use, after one confirmation.

Each module declares what it needs in Slicer, with version bounds, in ``<Module>Lib/requirements.txt``
(pip's format; ``Testing/test_packaging.py`` checks the bounds against ``pyproject.toml``). Slicer 5.10
and later ship Python 3.12 and no compiler, so packages are installed from binary wheels only
(``pip install --only-binary :all:``): a package without a wheel fails at once with a message instead of
starting a C build. Slicer itself ships numpy, SimpleITK, VTK, scipy and pydicom; pyradiomics comes with
the SlicerRadiomics extension (``EXTENSION_DEPENDS``), because its only pip distribution for current
Python versions is a source package.

A module calls ``ensure_requirements`` when the user first asks for work that needs the packages (never
when the module is imported, so that Slicer starts fast and offline). The Slicer calls are injected
(``confirm``, ``install``) so this is tested without Slicer; the checks mirror ``slicer.pydeps.pip_check``
of Slicer 5.11+, written here because Slicer 5.10 has no ``slicer.pydeps``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

BINARY_ONLY = ("--only-binary", ":all:")
"""pip options for every install in Slicer: wheels only, never a source build."""

REQUIREMENTS_FILE = "requirements.txt"

SAME_PACKAGE: dict[str, tuple[str, ...]] = {"xgboost-cpu": ("xgboost",)}
"""Distributions that install the same import package: xgboost-cpu (no CUDA payload, used in Slicer on
Linux and Windows) and xgboost (the command line; on macOS the only build)."""


class DependenciesMissing(RuntimeError):
    """The user declined the installation, or it failed; the message says which packages and why."""


def requirements_path(lib_package: str) -> Path:
    """``requirements.txt`` beside a Lib package's ``__init__.py`` (``"SIRTDosimetryLib"`` etc.)."""
    spec = importlib.util.find_spec(lib_package)
    if spec is None or spec.origin is None:
        raise DependenciesMissing(f"the {lib_package} package of SlicerSIRT is not on Slicer's Python path")
    return Path(spec.origin).resolve().parent / REQUIREMENTS_FILE


def module_requirements(module: str, testing: bool = False) -> list:
    """What a SlicerSIRT module needs in Slicer: SIRT Dosimetry's requirements plus the module's own;
    with ``testing``, also what its self-test needs (``<Module>Lib/testing/requirements.txt``)."""
    libs = dict.fromkeys(["SIRTDosimetryLib", f"{module}Lib"])
    paths = [requirements_path(lib) for lib in libs]
    if testing:
        paths += [p for lib in libs if (p := requirements_path(lib).parent / "testing" / REQUIREMENTS_FILE).exists()]
    return load_requirements(*paths)


def load_requirements(*paths: str | Path) -> list:
    """``packaging.requirements.Requirement`` objects of the files (comments, blank lines and pip options
    skipped, as ``slicer.pydeps.load_requirements``); a name given twice keeps its first entry."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # Slicer 5.10 has packaging only as pip's vendored copy
        from pip._vendor.packaging.requirements import Requirement

    requirements, seen = [], set()
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith(("#", "-")):
                continue
            requirement = Requirement(line)
            key = (requirement.name.lower(), str(requirement.marker))
            if key not in seen:
                seen.add(key)
                requirements.append(requirement)
    return requirements


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Unsatisfied:
    requirement: object  # packaging Requirement
    installed: str | None  # the installed version, None when absent

    @property
    def pip_argument(self) -> str:
        """``name>=x,<y`` (without the environment marker, which applies here)."""
        return f"{self.requirement.name}{self.requirement.specifier}"

    def describe(self) -> str:
        if self.installed is None:
            return f"{self.pip_argument} (not installed)"
        return f"{self.pip_argument} (installed: {self.installed})"


def unsatisfied_requirements(requirements: Iterable, version: Callable[[str], str | None] = installed_version) -> list[Unsatisfied]:
    """The requirements that apply to this platform (markers evaluated) and are not installed at an
    accepted version; a distribution of ``SAME_PACKAGE`` counts for its twin."""
    out = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        names = (requirement.name, *SAME_PACKAGE.get(requirement.name.lower(), ()))
        versions = [v for v in (version(name) for name in names) if v is not None]
        if not any(requirement.specifier.contains(v, prereleases=True) for v in versions):
            out.append(Unsatisfied(requirement, versions[0] if versions else None))
    return out


def install_arguments(missing: Sequence[Unsatisfied]) -> list[str]:
    """The ``pip install`` arguments: binary wheels only, upgrading what is there at a refused version."""
    upgrade = ["--upgrade"] if any(m.installed is not None for m in missing) else []
    return [*BINARY_ONLY, *upgrade, *(m.pip_argument for m in missing)]


def _slicer_confirm(text: str) -> bool:
    import slicer

    return bool(slicer.util.confirmOkCancelDisplay(text, "SlicerSIRT: install Python packages"))


def _slicer_install(arguments: list[str]) -> None:
    import slicer

    slicer.util.pip_install(arguments)  # a list of pip arguments in Slicer 5.10 and 5.12


def ensure_requirements(
    requirements: Iterable,
    requester: str,
    confirm: Callable[[str], bool] | None = None,
    install: Callable[[list[str]], None] | None = None,
    version: Callable[[str], str | None] = installed_version,
) -> list[str]:
    """Make sure ``requirements`` (``Requirement`` objects) are met; returns the pip arguments installed.

    Asks once (``confirm``, default ``slicer.util.confirmOkCancelDisplay``; ``confirm=False`` installs
    without asking, as the self-tests do), then installs with ``install`` (default
    ``slicer.util.pip_install``). Raises ``DependenciesMissing`` with a message for the user when they
    decline, pip fails, or the requirements are still not met afterwards.
    """
    missing = unsatisfied_requirements(requirements, version)
    if not missing:
        return []
    install = install or _slicer_install
    listing = "\n  ".join(m.describe() for m in missing)
    if confirm is not False:
        text = (
            f"{requester} needs Python packages that Slicer does not have yet:\n\n  {listing}\n\n"
            "Install them now? They are downloaded from the Python Package Index as ready-built wheels "
            "(no compiler needed); this may take a few minutes."
        )
        if not (confirm or _slicer_confirm)(text):
            raise DependenciesMissing(f"{requester} cannot run without: {', '.join(m.pip_argument for m in missing)}")
    arguments = install_arguments(missing)
    try:
        install(arguments)
    except Exception as exc:  # pip's CalledProcessError, a network error, a refused wheel: one clear message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DependenciesMissing(
            f"{requester}: installing {', '.join(m.pip_argument for m in missing)} failed ({reason}). Only ready-built "
            "wheels are installed; a package without a wheel for this Python and system, or no network access, stops "
            "the installation. The details are in the Python console."
        ) from None
    importlib.invalidate_caches()
    still = unsatisfied_requirements([m.requirement for m in missing], version)
    if still:
        raise DependenciesMissing(
            f"{requester}: after installation these are still not met: {', '.join(m.describe() for m in still)}. "
            "Restart Slicer and try again; the details are in the Python console."
        )
    return arguments


def require_module(module: str, message: str, find_spec: Callable = importlib.util.find_spec) -> None:
    """Raise ``DependenciesMissing(message)`` unless ``module`` can be imported (for packages that come
    with another extension rather than from pip, such as SlicerRadiomics' ``radiomics``)."""
    try:
        found = find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise DependenciesMissing(message)


RADIOMICS_MISSING = (
    "SIRT Dosiomics extracts features with the pyradiomics of the SlicerRadiomics extension, which is not "
    "installed: install SlicerRadiomics from the Extensions Manager (View > Extensions Manager), restart Slicer "
    "and try again."
)
