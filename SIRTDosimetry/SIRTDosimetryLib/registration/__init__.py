"""Registration of SPECT, PET, CT and MRI with elastix, with quality checks; see docs/registration.md.

``register_case`` is the one entry point (``sirt register`` and batch manifests call it). Elastix
itself (``itk-elastix``) is an optional extra, imported only when a registration runs.
"""

from .case import RegistrationResult, register_case
from .presets import PRESETS, TRANSFORM_KINDS, RegistrationSettings
from .qa import DEFAULT_MIN_DICE, QAGate

__all__ = ["DEFAULT_MIN_DICE", "PRESETS", "TRANSFORM_KINDS", "QAGate", "RegistrationResult", "RegistrationSettings", "register_case"]
