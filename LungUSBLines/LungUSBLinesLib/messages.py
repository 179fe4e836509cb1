"""What the panels tell the user when something fails: one line, and a traceback only for bugs."""

from __future__ import annotations

import traceback


def is_expected_error(error: BaseException) -> bool:
    """Bad input (a LungUSError: an unreadable clip, a wrong model file) rather than a bug."""
    from lungus.errors import LungUSError

    return isinstance(error, LungUSError)


def error_message(error: BaseException) -> str:
    """One line saying what went wrong (LungUSError text is already one line naming the file)."""
    text = " ".join(str(error).split())
    if is_expected_error(error):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def error_details(error: BaseException) -> str:
    """The traceback for an unexpected error (shown under "Details"); nothing for bad input."""
    if is_expected_error(error):
        return ""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))
