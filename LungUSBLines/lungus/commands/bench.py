"""`lungus bench <name> [options] [--json]`: run a named benchmark (see lungus.bench)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Run a named benchmark and print its table (or, with --json, one JSON record with
the machine, the command, the thread count and a `results` list). `lungus bench`
alone lists the benchmarks; `lungus bench NAME --help` shows a benchmark's options.
Thread pools (numpy/BLAS, OpenCV, torch) are pinned to --threads (default 1)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a named benchmark (simulate, ...); no name lists them",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="benchmark to run")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's options")
    parser.set_defaults(func=run)


def _benchmark_parser(name: str, module) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"lungus bench {name}", description=module.HELP)
    parser.add_argument("--json", action="store_true", help="print one JSON record instead of a table")
    parser.add_argument(
        "--threads", type=int, default=1, metavar="N", help="threads for every pool (default 1)"
    )
    parser.add_argument("--out", metavar="FILE", help="also write the JSON record to FILE")
    module.add_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    import json
    import shlex

    from lungus.atomic import atomic_write_text
    from lungus.bench import available, format_table, run_benchmark
    from lungus.errors import LungUSError

    benchmarks = available()
    if not args.name:
        print("benchmarks (lungus bench NAME [--json]):")
        for name, module in benchmarks.items():
            print(f"  {name:<12} {module.HELP}")
        return 0
    if args.name not in benchmarks:
        raise LungUSError(f"unknown benchmark {args.name!r}; choose from {', '.join(benchmarks)}")
    parser = _benchmark_parser(args.name, benchmarks[args.name])
    options = parser.parse_args(args.options)
    if options.threads < 1:
        raise LungUSError(f"--threads must be at least 1, got {options.threads}")
    command = shlex.join(["lungus", "bench", args.name, *args.options])
    record = run_benchmark(args.name, options, command)
    text = json.dumps(record, indent=2)
    if options.out:
        atomic_write_text(options.out, text + "\n")
    print(text if options.json else format_table(record))
    return 0
