"""Writing results without ever overwriting an input or leaving partial files behind.

Everything a command produces is first written into a hidden staging folder inside the output
folder and moved into place only when all of it has been written. Without ``overwrite`` each file
is claimed atomically (a hard link, which fails when the name exists), so of two runs into one
folder only the first succeeds and the second fails cleanly instead of replacing the first's files.
A staging folder carries the process id of its run: one left behind by a killed run is removed by
the next run into that folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import SimpleITK as sitk

from ..errors import SIRTInputError

STAGING_PREFIX = ".sirt-staging-"


def write_image(image: sitk.Image, path: Path) -> None:
    sitk.WriteImage(image, str(path), useCompression=True)


def _non_finite_path(data, where: str = "") -> str | None:
    """The JSON path of the first NaN or infinite number in ``data``, or None."""
    if isinstance(data, float) and not math.isfinite(data):
        return where or "(top level)"
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        found = _non_finite_path(value, f"{where}/{key}")
        if found:
            return found
    return None


def write_json(data: dict, path: Path) -> None:
    """Write strict JSON; a NaN or infinite value is refused with the place where it is."""
    bad = _non_finite_path(data)
    if bad is not None:
        raise SIRTInputError(f"{path.name}: the value at {bad} is not a finite number (check the inputs for extreme values)")
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(output_dir: str | Path, what: str = "output folder") -> Path:
    """Refuse, before any work, an output folder that is a file or cannot be created or written to.

    Creates nothing: writability is probed with a temporary folder in the nearest existing folder.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise SIRTInputError(f"{what} {output_dir} is a file, not a folder")
    existing = _nearest_existing(output_dir)
    if not existing.is_dir():
        raise SIRTInputError(f"{what} {output_dir} cannot be created: {existing} is a file")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-probe-", dir=existing))
    except OSError as exc:
        raise SIRTInputError(f"{what} {output_dir} cannot be written: {exc.strerror or exc}") from None
    return output_dir


def check_outputs(output_dir: str | Path, names: Iterable[str], inputs: Iterable[str | Path] = (), overwrite: bool = False) -> list[Path]:
    """The checks of :func:`commit_outputs` that can run before the work: folder usable, no input
    overwritten, no existing output without ``overwrite``."""
    output_dir = check_output_dir(output_dir)
    targets = [output_dir / name for name in names]
    input_paths = {Path(p).resolve() for p in inputs}
    for target in targets:
        if target.resolve() in input_paths:
            raise SIRTInputError(f"output {target} would overwrite an input file")
        if target.exists() and not overwrite:
            raise SIRTInputError(f"output {target} already exists; choose another folder or pass --overwrite")
    return targets


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def remove_stale_staging(output_dir: Path) -> list[Path]:
    """Remove staging folders of runs that no longer exist (``.sirt-staging-<pid>-*`` of a dead pid)."""
    removed = []
    for item in output_dir.glob(STAGING_PREFIX + "*"):
        pid_text = item.name[len(STAGING_PREFIX) :].split("-", 1)[0]
        if item.is_dir() and not item.is_symlink() and pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(item, ignore_errors=True)
            removed.append(item)
    return removed


def staging_folder(parent: Path) -> Path:
    """A new staging folder in ``parent`` for this run (``.sirt-staging-<pid>-*``), after removing those that
    runs no longer alive left there (killed mid-write): every writer into a folder stages through this."""
    remove_stale_staging(parent)
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=parent))


def _claim(source: Path, target: Path) -> None:
    """Move ``source`` to ``target`` only if ``target`` does not exist, atomically."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise SIRTInputError(f"output {target} already exists (written by another run meanwhile); choose another folder or pass --overwrite") from None
    os.unlink(source)


def commit_outputs(
    output_dir: Path,
    writers: dict[str, Callable[[Path], None]],
    inputs: Iterable[str | Path] = (),
    overwrite: bool = False,
) -> list[Path]:
    """Write files named by ``writers`` (name -> function writing that file) into ``output_dir``.

    Refuses to overwrite an input file, and an existing output unless ``overwrite`` is set (checked
    first, and again atomically when each file is moved in). On any failure, interruption included,
    nothing of this run is left in ``output_dir``.
    """
    output_dir = Path(output_dir)
    targets = check_outputs(output_dir, writers, inputs, overwrite)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SIRTInputError(f"output folder {output_dir} cannot be created: {exc.strerror or exc}") from None
    staging = staging_folder(output_dir)
    claimed: list[Path] = []
    try:
        for name, write in writers.items():
            write(staging / name)
        for name in writers:
            if overwrite:
                os.replace(staging / name, output_dir / name)
            else:
                _claim(staging / name, output_dir / name)
                claimed.append(output_dir / name)
    except BaseException:
        for path in claimed:  # files this run created a moment ago: the set is all or nothing
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return targets
