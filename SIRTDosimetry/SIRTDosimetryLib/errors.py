"""Exceptions raised for bad input. The command line turns them into exit codes; nothing else does."""


class SIRTInputError(ValueError):
    """The user's input cannot be used as given (geometry, units, names, values)."""
