"""Stable column names for feature tables.

Every feature column says where its number comes from, in five ``_``-separated tokens::

    <source>_<image>_<structure>_<class>_<feature>
    y90_dose_tumour_glcm_JointEnergy
    maa_spect_npl_firstorder_90Percentile
    maa_ct_wnl_shape_Sphericity

- ``source``: the study the image belongs to: ``maa`` (pre-treatment 99mTc-MAA) or ``y90``
  (post-treatment 90Y).
- ``image``: ``ct``, ``spect``, ``pet``, ``dose`` or ``bed``.
- ``structure``: ``tumour``, ``npl`` (normal perfused liver), ``wnl`` (whole normal liver) or a
  user-defined role, always lower case letters, digits and ``-``.
- ``class`` and ``feature``: pyradiomics' own names (``original_glcm_JointEnergy`` becomes
  ``glcm_JointEnergy``); pyradiomics feature names contain no ``_``.

Besides features, each (source, image, structure) feature set has bookkeeping columns that use the
same prefix: ``<prefix>_error`` (why the features are missing; empty when they are not),
``<prefix>_warning`` (computed but degenerate, e.g. a single grey level) and
``<prefix>_diagnostics_<Name>`` (voxel count, clip range). Dose-volume metrics are
``<source>_dvc_<structure>_<metric>`` (the metric may contain ``_``; ``<source>_dvc_error`` and
``<source>_dvc_warning`` say why they are missing or doubtful), clinical values are
``clinical_<name>``, and the row key is ``patient_id``.

Because every token is drawn from a fixed alphabet, :func:`parse_column` inverts the scheme, and
tables from different patients and runs join on column names without guesswork.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from SIRTDosimetryLib.vocabulary import STANDARD_STRUCTURES, STRUCTURE_ALIASES  # noqa: F401 - part of the column grammar

SOURCES: tuple[str, ...] = ("maa", "y90")
"""Study tokens: pre-treatment 99mTc-MAA and post-treatment 90Y imaging."""

SOURCE_ALIASES: dict[str, str] = {
    "maa": "maa",
    "tc99m": "maa",
    "tc99m-maa": "maa",
    "99mtc-maa": "maa",
    "99mtc": "maa",
    "y90": "y90",
    "90y": "y90",
    "y-90": "y90",
}

IMAGE_KINDS: tuple[str, ...] = ("ct", "spect", "pet", "dose", "bed")
# The structure tokens (tumour, npl, wnl) and their aliases are the dosimetry module's vocabulary.

ID_COLUMN = "patient_id"
PATIENT_ERROR_COLUMN = "patient_error"
CLINICAL_PREFIX = "clinical_"

TOKEN_PATTERN = r"[a-z0-9][a-z0-9-]*"
"""A source, image or structure token (regular-expression fragment, no anchors)."""
FEATURE_TOKEN_PATTERN = r"[A-Za-z0-9]+"
"""A pyradiomics feature class or feature name (no ``_``)."""
METRIC_PATTERN = r"[a-z0-9][a-z0-9_]*"
"""A dose-volume metric name (may contain ``_``)."""
DVC_TOKEN = "dvc"
PATIENT_STRUCTURE = "patient"
"""Structure token of the patient-level dose-volume values (lung shunt fraction, injected activity)."""

_TOKEN = re.compile(rf"^{TOKEN_PATTERN}$")
_FEATURE = re.compile(rf"^{FEATURE_TOKEN_PATTERN}$")


class NamingError(ValueError):
    """A name that cannot become (or is not) a stable column token."""


def slug(text: str) -> str:
    """A structure or clinical name as a column token: lower case, runs of other characters become ``-``.

    ``"Perfused normal"`` → ``"perfused-normal"``, ``"Tumor 1"`` → ``"tumor-1"``.
    """
    token = re.sub(r"[^a-z0-9]+", "-", str(text).strip().lower()).strip("-")
    if not token:
        raise NamingError(f"{text!r} has no letters or digits to make a column name from")
    return token


def source_token(source: str) -> str:
    """``"MAA"``, ``"99mTc-MAA"`` → ``"maa"``; ``"Y90"``, ``"90Y"`` → ``"y90"``."""
    key = str(source).strip().lower().replace("_", "-").replace(" ", "")
    if key not in SOURCE_ALIASES:
        raise NamingError(f"unknown source {source!r}; use one of {', '.join(SOURCES)} (MAA or 90Y)")
    return SOURCE_ALIASES[key]


def structure_token(role: str) -> str:
    token = slug(role)
    return STRUCTURE_ALIASES.get(token, token)


def image_token(kind: str) -> str:
    token = str(kind).strip().lower()
    if token not in IMAGE_KINDS:
        raise NamingError(f"unknown image kind {kind!r}; use one of {', '.join(IMAGE_KINDS)}")
    return token


def _check_token(token: str, what: str) -> str:
    if not _TOKEN.match(token):
        raise NamingError(f"{what} {token!r} must be lower case letters, digits and '-'")
    return token


def prefix(source: str, image: str, structure: str) -> str:
    """``<source>_<image>_<structure>``: the prefix shared by one feature set's columns."""
    return "_".join(
        (_check_token(source, "source"), _check_token(image, "image kind"), _check_token(structure, "structure"))
    )


def feature_column(source: str, image: str, structure: str, feature_class: str, feature: str) -> str:
    if not _FEATURE.match(feature_class) or not _FEATURE.match(feature):
        raise NamingError(f"feature class/name {feature_class!r}/{feature!r} must be letters and digits")
    return f"{prefix(source, image, structure)}_{feature_class}_{feature}"


def error_column(source: str, image: str, structure: str) -> str:
    return f"{prefix(source, image, structure)}_error"


def warning_column(source: str, image: str, structure: str) -> str:
    return f"{prefix(source, image, structure)}_warning"


def diagnostics_column(source: str, image: str, structure: str, name: str) -> str:
    return feature_column(source, image, structure, "diagnostics", name)


def dvc_column(source: str, structure: str, metric: str) -> str:
    metric = str(metric)
    if not re.match(rf"^{METRIC_PATTERN}$", metric):
        raise NamingError(f"dose-volume metric {metric!r} must be lower case letters, digits and '_'")
    return f"{_check_token(source, 'source')}_{DVC_TOKEN}_{_check_token(structure, 'structure')}_{metric}"


def dvc_status_column(source: str, status: str) -> str:
    """``<source>_dvc_error`` / ``<source>_dvc_warning``: why the dose-volume metrics of a source are missing."""
    if status not in ("error", "warning"):
        raise NamingError(f"status must be error or warning, got {status!r}")
    return f"{_check_token(source, 'source')}_dvc_{status}"


def clinical_column(name: str) -> str:
    return CLINICAL_PREFIX + slug(name).replace("-", "_")


def from_pyradiomics(key: str) -> tuple[str, str]:
    """``"original_glcm_JointEnergy"`` → ``("glcm", "JointEnergy")``."""
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != "original":
        raise NamingError(f"unexpected pyradiomics feature key {key!r}")
    return parts[1], parts[2]


@dataclass(frozen=True)
class Column:
    """What a column holds.

    ``kind`` is feature, diagnostics, error, warning, dvc, dvc_error, dvc_warning, clinical, id or
    patient_error.
    """

    kind: str
    source: str | None = None
    image: str | None = None
    structure: str | None = None
    feature_class: str | None = None
    name: str | None = None  # feature, diagnostic, metric or clinical name


def parse_column(column: str) -> Column:
    """Invert the naming scheme; raises :class:`NamingError` for a column it did not make."""
    if column == ID_COLUMN:
        return Column("id")
    if column == PATIENT_ERROR_COLUMN:
        return Column("patient_error")
    if column.startswith(CLINICAL_PREFIX):
        return Column("clinical", name=column[len(CLINICAL_PREFIX) :])
    parts = column.split("_")
    if len(parts) == 3 and parts[0] in SOURCES and parts[1] == "dvc" and parts[2] in ("error", "warning"):
        return Column(f"dvc_{parts[2]}", source=parts[0])
    if len(parts) >= 4 and parts[1] == "dvc" and parts[0] in SOURCES:
        return Column("dvc", source=parts[0], structure=parts[2], name="_".join(parts[3:]))
    if len(parts) == 4 and parts[0] in SOURCES and parts[1] in IMAGE_KINDS and parts[3] in ("error", "warning"):
        return Column(parts[3], source=parts[0], image=parts[1], structure=parts[2])
    if len(parts) == 5 and parts[0] in SOURCES and parts[1] in IMAGE_KINDS and _TOKEN.match(parts[2]):
        kind = "diagnostics" if parts[3] == "diagnostics" else "feature"
        return Column(kind, parts[0], parts[1], parts[2], parts[3], parts[4])
    raise NamingError(f"{column!r} is not a SIRTDosiomics column name")


# --- the grammar as regular expressions, for tools that select columns by pattern ---------------

BOOKKEEPING_PATTERN = rf"(_error|_warning)$|_diagnostics_|^{PATIENT_ERROR_COLUMN}$|_{DVC_TOKEN}_{TOKEN_PATTERN}_n_voxels$"
"""Columns that describe how a row was made (errors, warnings, diagnostics, voxel counts): never model inputs."""


def feature_pattern(source: str, image: str) -> str:
    """Anchored pattern of the feature columns (not the diagnostics) of one source and image, any structure."""
    return rf"^{re.escape(source)}_{re.escape(image)}_{TOKEN_PATTERN}_(?!diagnostics_){FEATURE_TOKEN_PATTERN}_{FEATURE_TOKEN_PATTERN}$"


def dvc_pattern(source: str, metric: str = METRIC_PATTERN, structure: str = TOKEN_PATTERN) -> str:
    """Anchored pattern of dose-volume columns ``<source>_dvc_<structure>_<metric>``; ``metric`` and
    ``structure`` are regular-expression fragments (default: any)."""
    return rf"^{re.escape(source)}_{DVC_TOKEN}_(?:{structure})_(?:{metric})$"


def clinical_pattern() -> str:
    return rf"^{CLINICAL_PREFIX}"
