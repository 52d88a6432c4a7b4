"""One way to name segments in every command: exact names, case-insensitive names, globs and roles.

A *pattern* is

- a segment name, matched exactly, else case-insensitively (``liver`` finds ``Liver``);
- a glob (``Tumor*``, ``*lesion?``), matched case-insensitively;
- a role (``vocabulary.ROLES``, any spelling ``vocabulary.role`` accepts): ``@tumour`` (``@tumor``) is the
  segments whose names contain tumor/tumour/lesion unless the caller knows the roles (``roles=``); the other
  roles need the caller's roles (``sirt dvh --bed-params @normal_liver=...`` resolves them itself).

``sirt dose --segments/--bed-params``, ``sirt dvh --segments/--bed-params`` and ``sirt features --structure``
all read their segment names through :func:`select_segments` / :func:`expand_mapping`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .analysis.derived import DEFAULT_TUMOUR_PATTERNS, match_names
from .errors import SIRTInputError
from .vocabulary import TUMOUR, role


def _role_members(text: str, names: Sequence[str], roles: Mapping[str, Sequence[str]] | None) -> list[str]:
    """Segments of ``@text``: from ``roles`` when given, tumours by name otherwise."""
    key = role(text)
    if roles is not None and key in roles:
        return [n for n in names if n in set(roles[key])]
    if key == TUMOUR:
        return [n for n in names if any(match_names(p, [n]) for p in DEFAULT_TUMOUR_PATTERNS)]
    raise SIRTInputError(f"@{key} needs the structures' roles, which only 'sirt dvh' knows; name the segments here")


def expand_pattern(pattern: str, names: Sequence[str], roles: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The names ``pattern`` selects (in the order of ``names``); empty when none."""
    pattern = pattern.strip()
    if pattern.startswith("@"):
        return _role_members(pattern[1:], names, roles)
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
