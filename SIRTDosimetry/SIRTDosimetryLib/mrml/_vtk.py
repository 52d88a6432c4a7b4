"""VTK and Slicer imports for the MRML adapter.

Inside 3D Slicer, ``slicer`` is the application's module; outside it, the ``slicer-core`` wheel
(``pip install slicer-sirt[mrml]``) provides the same MRML classes under the same names. The
unrelated PyPI package called ``slicer`` has none of them and is refused with a clear message.
"""

from __future__ import annotations

import importlib

from ..errors import SIRTInputError

_MISSING = (
    "MRML is not available: run inside 3D Slicer, or install the slicer-core wheel "
    "(pip install 'slicer-sirt[mrml]'; the PyPI package named 'slicer' is unrelated)"
)

try:
    import vtk
    from vtk.util import numpy_support
except ImportError:  # pragma: no cover - depends on the installation
    raise SIRTInputError(_MISSING) from None

__all__ = ["vtk", "numpy_support", "slicer_module"]

_slicer = None


def slicer_module():
    """The ``slicer`` module with the MRML classes (Slicer's own, or the slicer-core wheel's)."""
    global _slicer
    if _slicer is None:
        try:
            module = importlib.import_module("slicer")
        except ImportError:
            module = None
        if module is None or not hasattr(module, "vtkMRMLScene"):
            raise SIRTInputError(_MISSING)
        _slicer = module
    return _slicer
