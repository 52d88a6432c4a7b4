"""Writing results without ever overwriting an input or leaving partial files behind.

Everything a command produces is first written into a hidden staging folder inside the output
folder and moved into place only when all of it has been written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import SimpleITK as sitk

from ..errors import SIRTInputError


def write_image(image: sitk.Image, path: Path) -> None:
    sitk.WriteImage(image, str(path), useCompression=True)


def write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def commit_outputs(
    output_dir: Path,
    writers: dict[str, Callable[[Path], None]],
    inputs: Iterable[str | Path] = (),
    overwrite: bool = False,
) -> list[Path]:
    """Write files named by ``writers`` (name -> function writing that file) into ``output_dir``.

    Refuses to overwrite an input file, and an existing output unless ``overwrite`` is set.
    On any failure nothing is left in ``output_dir``.
    """
    output_dir = Path(output_dir)
    targets = [output_dir / name for name in writers]
    input_paths = {Path(p).resolve() for p in inputs}
    for target in targets:
        if target.resolve() in input_paths:
            raise SIRTInputError(f"output {target} would overwrite an input file")
        if target.exists() and not overwrite:
            raise SIRTInputError(f"output {target} already exists; choose another folder or pass --overwrite")
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sirt-staging-", dir=output_dir))
    try:
        for name, write in writers.items():
            write(staging / name)
        for name in writers:
            os.replace(staging / name, output_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return targets
