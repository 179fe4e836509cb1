"""The options that say where and how long models run, shared by `lungus infer` and `lungus analyse`."""

from __future__ import annotations

import argparse

from lungus.model_calls import DEFAULT_MODEL_CALL_TIMEOUT_S


def add_model_running_arguments(parser: argparse.ArgumentParser) -> None:
    """--device, --threads and --model-call-timeout."""
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default auto)")
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
