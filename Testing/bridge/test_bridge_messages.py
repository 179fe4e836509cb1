"""LungUSBLinesLib.messages: one line for bad input, a traceback only for bugs."""

from __future__ import annotations

from lungus.errors import LungUSError
from LungUSBLinesLib.messages import error_details, error_message, is_expected_error


def test_bad_input_is_one_line_without_a_traceback():
    error = LungUSError("truncated video", "/data/a.mp4")
    assert is_expected_error(error)
    assert error_message(error) == "/data/a.mp4: truncated video" and error_details(error) == ""


def test_a_bug_names_its_type_and_keeps_its_traceback():
    try:
        {}["missing"]
    except KeyError as error:
        assert not is_expected_error(error)
        assert error_message(error) == "KeyError: 'missing'"
        assert "Traceback" in error_details(error) and "test_a_bug" in error_details(error)


def test_multi_line_messages_become_one_line():
    assert error_message(ValueError("first\n  second")) == "ValueError: first second"
