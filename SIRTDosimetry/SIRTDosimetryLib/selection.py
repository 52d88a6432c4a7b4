"""One way to name segments in every command: exact names, case-insensitive names, globs and roles.

A *pattern* is

- a segment name, matched exactly, else case-insensitively (``liver`` finds ``Liver``);
- a glob (``Tumor*``, ``*lesion?``), matched case-insensitively;
- a role, ``@tumour`` (also ``@tumor``, ``@lesion``): the segments whose names contain tumor/tumour/lesion,
  unless the caller knows the roles (``sirt dvh --tumours``), then those.

``sirt dose --segments/--bed-params``, ``sirt dvh --segments/--bed-params`` and ``sirt features --structure``
all read their segment names through :func:`select_segments` / :func:`expand_mapping`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .analysis.derived import DEFAULT_TUMOUR_PATTERNS, match_names
from .errors import SIRTInputError

ROLE_ALIASES = {"tumour": "tumour", "tumor": "tumour", "lesion": "tumour", "tumours": "tumour", "tumors": "tumour"}
"""``@name`` spellings of the roles a segment name alone can give."""


def _role_members(role: str, names: Sequence[str], roles: Mapping[str, Sequence[str]] | None) -> list[str] | None:
    """Segments of ``@role``; None when the role is unknown (for a caller to decide)."""
    if roles is not None and role in roles:
        return [n for n in names if n in set(roles[role])]
    if ROLE_ALIASES.get(role) == "tumour":
        return [n for n in names if any(match_names(p, [n]) for p in DEFAULT_TUMOUR_PATTERNS)]
    return None


def expand_pattern(pattern: str, names: Sequence[str], roles: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The names ``pattern`` selects (in the order of ``names``); empty when none."""
    pattern = pattern.strip()
    if pattern.startswith("@"):
        members = _role_members(pattern[1:].strip().lower(), names, roles)
        if members is None:
            known = sorted({*ROLE_ALIASES, *(roles or {})})
            raise SIRTInputError(f"unknown role {pattern!r}; roles are {', '.join('@' + r for r in known)}")
        return members
    return match_names(pattern, list(names))


def select_segments(patterns: Sequence[str], names: Sequence[str], what: str = "segment",
                    roles: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """Every name selected by any pattern, in the order of ``names``; a pattern selecting nothing is an error."""
    found: set[str] = set()
    for pattern in patterns:
        matched = expand_pattern(pattern, names, roles)
        if not matched:
            raise SIRTInputError(f"{what} {pattern.strip()!r} not found: it matches none of {', '.join(map(repr, names))}")
        found.update(matched)
    return [n for n in names if n in found]


def expand_mapping(mapping: Mapping[str, object], names: Sequence[str], what: str = "segment",
                   roles: Mapping[str, Sequence[str]] | None = None) -> dict[str, object]:
    """``{pattern: value}`` → ``{name: value}``; where patterns overlap the later entry wins, and the
    result keeps the order of the entries (later entries last)."""
    result: dict[str, object] = {}
    for pattern, value in mapping.items():
        for name in select_segments([pattern], names, what, roles):
            result.pop(name, None)
            result[name] = value
    return result


def split_patterns(text: str) -> list[str]:
    """``"Liver, Tumor*, @tumour"`` → ``["Liver", "Tumor*", "@tumour"]`` (commas or ``|`` separate)."""
    return [p.strip() for p in text.replace("|", ",").split(",") if p.strip()]
