"""Exceptions raised for bad input. The command line turns them into exit codes; nothing else does."""


class SIRTInputError(ValueError):
    """The user's input cannot be used as given (geometry, units, names, values)."""


def error_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line reports."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
