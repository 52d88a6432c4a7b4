"""The one vocabulary of structure roles and standard liver structures, for all three modules.

Two words are kept apart on purpose:

- A **role** says what kind of tissue a structure is, and so which dose-volume constraints and
  which default LQ preset it gets: ``tumour`` (TNR, D70...), ``normal_liver`` (V20..V90 as well) or
  ``other``. ``role()`` also accepts the spellings ``tumor``/``tumours``/``tumors`` and ``normal liver``.
- A **standard structure** is one of the three structures of the liver protocol, each with a
  short token (used in option names such as ``--npl-reference``, in ``tnr_npl``/``tnr_wnl`` and in
  the feature columns of the dosiomics and response modules), the name of its derived segment and
  its role:

  ===========  =========================  ==============
  token        derived-segment name       role
  ===========  =========================  ==============
  ``tumour``   (the tumour segments)      ``tumour``
  ``npl``      ``normal perfused liver``  ``normal_liver``
  ``wnl``      ``whole normal liver``     ``normal_liver``
  ===========  =========================  ==============

Any other structure keeps its own name (as a column token: lower case, see
``SIRTDosiomicsLib.naming.slug``) and the role ``other`` unless given one.
"""

from __future__ import annotations

from .errors import SIRTInputError

TUMOUR = "tumour"
NORMAL_LIVER = "normal_liver"
OTHER = "other"
ROLES: tuple[str, ...] = (TUMOUR, NORMAL_LIVER, OTHER)
"""Roles decide which constraints a structure gets (normal-liver V20..V90, tumour TNR) and its default LQ preset."""

ROLE_ALIASES: dict[str, str] = {
    "tumor": TUMOUR, "tumours": TUMOUR, "tumors": TUMOUR, "normal liver": NORMAL_LIVER, "normal-liver": NORMAL_LIVER,
}
"""Other spellings accepted for a role."""

NORMAL_PERFUSED_NAME = "normal perfused liver"
WHOLE_NORMAL_NAME = "whole normal liver"

STANDARD_STRUCTURES: tuple[str, ...] = ("tumour", "npl", "wnl")
"""Tokens of the tumour, normal perfused liver and whole normal liver, the structures of the published protocol."""

STRUCTURE_ALIASES: dict[str, str] = {"tumor": "tumour", "tumours": "tumour", "tumors": "tumour"}
"""Other spellings accepted for a standard structure token."""

STRUCTURE_NAMES: dict[str, str] = {"npl": NORMAL_PERFUSED_NAME, "wnl": WHOLE_NORMAL_NAME}
"""Derived-segment name of a standard structure token."""

ROLE_OF_STRUCTURE: dict[str, str] = {"tumour": TUMOUR, "npl": NORMAL_LIVER, "wnl": NORMAL_LIVER}
"""Role of each standard structure; any other structure is ``other`` unless given a role."""


def role(text: str) -> str:
    """A role from any accepted spelling (``Tumor`` → ``tumour``, ``normal liver`` → ``normal_liver``)."""
    key = str(text).strip().lower()
    key = ROLE_ALIASES.get(key, key)
    if key not in ROLES:
        raise SIRTInputError(f"unknown role {text!r}; choose one of {', '.join(ROLES)}")
    return key
