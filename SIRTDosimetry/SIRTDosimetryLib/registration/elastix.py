"""Running elastix (the ``itk-elastix`` wheel) on SimpleITK images and returning a SimpleITK transform.

``itk`` is imported only here and only when a registration runs: it is an optional extra
(``pip install slicer-sirt[registration]``) and takes seconds to import. The transform elastix
finds is converted to ITK's own transform classes (``ConvertToItkTransform``) and handed to
SimpleITK through an HDF5 transform file, so that what is resampled, written and loaded into
Slicer is one and the same transform.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import SIRTInputError

INSTALL_HINT = "registration needs itk-elastix: pip install 'slicer-sirt[registration]' (or pip install itk-elastix)"


def _itk():
    try:
        import itk
    except ImportError:
        raise SIRTInputError(INSTALL_HINT) from None
    if not hasattr(itk, "ElastixRegistrationMethod"):
        raise SIRTInputError(INSTALL_HINT)
    return itk


def _to_itk(image: sitk.Image, pixel_type: type):
    itk = _itk()
    result = itk.image_from_array(np.ascontiguousarray(sitk.GetArrayViewFromImage(image), dtype=pixel_type))
    result.SetOrigin(image.GetOrigin())
    result.SetSpacing(image.GetSpacing())
    result.SetDirection(itk.matrix_from_array(np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)))
    return result


def run_elastix(
    fixed: sitk.Image,
    moving: sitk.Image,
    parameter_maps: list[dict[str, list[str]]],
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    threads: int | None = None,
) -> sitk.Transform:
    """Register ``moving`` onto ``fixed``; the transform maps fixed (LPS, mm) points to moving points.

    Masks are binary images on their image's grid: only samples inside them drive the metric.
    Elastix failures (e.g. too few samples inside the moving image) become ``SIRTInputError``.
    """
    itk = _itk()
    parameters = itk.ParameterObject.New()
    for stage in parameter_maps:
        parameters.AddParameterMap(stage)
    method = itk.ElastixRegistrationMethod.New(_to_itk(fixed, np.float32), _to_itk(moving, np.float32))
    method.SetParameterObject(parameters)
    if fixed_mask is not None:
        method.SetFixedMask(_to_itk(fixed_mask, np.uint8))
    if moving_mask is not None:
        method.SetMovingMask(_to_itk(moving_mask, np.uint8))
    method.SetLogToConsole(False)
    if threads is not None:
        method.SetNumberOfThreads(threads)
    with tempfile.TemporaryDirectory(prefix="sirt-elastix-") as folder:
        # elastix's exception only says "see elastix log": the reason is read from the log.
        method.SetOutputDirectory(folder)
        method.SetLogToFile(True)
        method.SetLogFileName("elastix.log")
        try:
            method.Update()
        except RuntimeError as exc:
            log = Path(folder) / "elastix.log"
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            raise SIRTInputError(f"elastix registration failed: {_elastix_reason(text + chr(10) + str(exc))}") from None
        transform = method.ConvertToItkTransform(method.GetCombinationTransform())
        path = Path(folder) / "transform.h5"
        itk.transformwrite([transform], str(path))
        return sitk.ReadTransform(str(path))


def _elastix_reason(message: str) -> str:
    """The line of an elastix log or exception that says what went wrong."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for marker in ("Description:", "ERROR"):
        for line in lines:
            if marker in line:
                return line.split("Description:", 1)[-1].strip()
    return lines[-1] if lines else "unknown error"
