"""The options that say where and how long models run: --device for every command that runs a
model, and with --threads and --model-call-timeout for `lungus infer` and `lungus analyse`."""

from __future__ import annotations

import argparse

from lungus.device import DEFAULT_DEVICE, DEVICE_HELP
from lungus.model_calls import DEFAULT_MODEL_CALL_TIMEOUT_S


def add_device_argument(parser: argparse.ArgumentParser, what: str = "") -> None:
    """--device (lungus.device's names and default); ``what`` says what runs on it, if not everything."""
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=f"{what}: {DEVICE_HELP}" if what else DEVICE_HELP)


def add_model_running_arguments(parser: argparse.ArgumentParser) -> None:
    """--device, --threads and --model-call-timeout."""
    add_device_argument(parser)
    parser.add_argument(
        "--threads", type=int, metavar="N", help="CPU threads for the models (default: all cores)"
    )
    parser.add_argument(
        "--model-call-timeout",
        dest="model_call_timeout",
        type=float,
        default=DEFAULT_MODEL_CALL_TIMEOUT_S,
        metavar="S",
        help=f"seconds one model call may take before the clip fails (default {DEFAULT_MODEL_CALL_TIMEOUT_S:g}; "
        "a model that overruns it is not used again in the run)",
    )
