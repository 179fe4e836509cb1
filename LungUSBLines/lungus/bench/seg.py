"""`lungus bench seg`: frames per second of the frame segmenter.

Times the default segmenter (``unet_small``, width 8, stride-2 stem: the architecture of the
recipe in BENCHMARKS.md; or a trained model file with ``--model``) on ``--size`` frames,
forward pass only (input already normalised, logits out), at batch 1 (a live probe, frame by
frame) and batch 32 (a stored clip):

- ``eager``: PyTorch, ``torch.inference_mode``;
- ``torchscript``: the scripted, frozen export (lungus.models.torchscript_onnx);
- ``onnxruntime``: ONNX Runtime's CPU provider on the model converted as ``lungus infer``
  converts it (lungus.infer.runners.onnx_session);
- ``cuda-fp32`` / ``cuda-fp16`` / ``cuda-bf16``: eager on the GPU when there is one, with
  autocast for the half-precision rows (synchronised before the clock stops).

fps = frames / median wall time of ``--repeat`` timed runs after a warm-up. Threads: every
CPU pool (torch, ONNX Runtime, BLAS, OpenCV) uses ``--threads``, by default all the CPUs
this process may use, as a user's machine would.
"""

from __future__ import annotations

import argparse
import os

from lungus.bench import positive_int

HELP = "frames/s of the frame segmenter (eager, TorchScript, ONNX Runtime, CUDA) at batch 1 and 32"
VARIANTS = ("eager", "torchscript", "onnxruntime", "cuda")
# The segmenter of the recipe in BENCHMARKS.md (Segmentation): what a user would run.
DEFAULT_MODEL = "unet_small"
DEFAULT_ARGS = {"width": 8, "input_stride": 2}
DEFAULT_SIZE = 256  # Resources/recipes/sim_seg.yaml
REAL_TIME_FPS = 33.4  # Howell et al. 2024's real-time figure (on a GPU)


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(threads=_usable_cpus())
    parser.add_argument("--size", type=positive_int, default=DEFAULT_SIZE, metavar="N", help=f"frame size NxN (default {DEFAULT_SIZE})")
    parser.add_argument("--batches", type=positive_int, nargs="+", default=[1, 32], metavar="B",
                        help="batch sizes (default 1 32)")
    parser.add_argument("--frames", type=positive_int, default=64, metavar="N",
                        help="frames per timed run (rounded up to whole batches; default 64)")
    parser.add_argument("--repeat", type=positive_int, default=5, metavar="R", help="timed runs (default 5)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="what to time (default all; cuda only where a GPU is present)")
    parser.add_argument("--model", metavar="PT", help="a trained segmenter's model file (default: the default "
                        f"segmenter, {DEFAULT_MODEL} {DEFAULT_ARGS}, untrained: speed does not depend on the weights)")
    parser.add_argument("--model-arg", dest="model_arg", action="append", default=[], metavar="NAME=VALUE",
                        help="change an argument of the default segmenter, e.g. width=16 (see `lungus train "
                        "--list-models`)")


def _segmenter(args: argparse.Namespace):
    """(model in eval mode, its card) for the benchmark."""
    from lungus.data.labels.schemes import SEG_CLASSES
    from lungus.data.labels.tasks import SEG_TASK
    from lungus.errors import LungUSError
    from lungus.models.model_file import ModelCard, load_model_file
    from lungus.models.registry import build_model, get_spec
    from lungus.train.setup import json_architecture

    if args.model:
        loaded = load_model_file(args.model)
        if loaded.card.task != SEG_TASK:
            raise LungUSError(f"a {loaded.card.task} classifier, not a segmenter", args.model)
        return loaded.model.eval(), loaded.card
    from lungus.models.registry import parse_arch_args

    model = build_model(DEFAULT_MODEL, len(SEG_CLASSES), **{**DEFAULT_ARGS, **parse_arch_args(args.model_arg)}).eval()
    card = ModelCard(
        task=SEG_TASK,
        class_names=[c.name for c in SEG_CLASSES],
        architecture=json_architecture(model),
        preprocessing={"size": [args.size, args.size], "frames": None, "target_fps": None, "fan_crop": True,
                       "normalisation": get_spec(DEFAULT_MODEL).normalisation(False, {})},
        label_source="truth",
        name="default-segmenter",
    )
    return model, card


def _runners(args: argparse.Namespace, model, card, folder: str):
    """(variant, device, make(batch) -> run()) for every variant asked for and available here."""
    import copy

    import torch

    from lungus.models.torchscript_onnx import export_onnx, export_torchscript, load_onnx, load_torchscript

    def torch_runner(module, device="cpu", dtype=None):
        def make(batch: int):
            x = torch.randn(batch, 1, args.size, args.size, device=device)

            def run() -> None:
                with torch.inference_mode():
                    if dtype is None:
                        module(x)
                    else:
                        with torch.autocast("cuda", dtype=dtype):
                            module(x)
                if device != "cpu":
                    torch.cuda.synchronize()

            return run

        return make

    runners = []
    if "eager" in args.variants:
        runners.append(("eager", "cpu", torch_runner(model)))
    if "torchscript" in args.variants:
        scripted = load_torchscript(export_torchscript(model, card, os.path.join(folder, "seg.ts"))).model
        runners.append(("torchscript", "cpu", torch_runner(scripted)))
    if "onnxruntime" in args.variants:
        # The in-memory conversion `lungus infer` runs a segmenter with on the CPU; the torch.export
        # file exporter (`lungus export`) gives the same graph but takes half a minute.
        from lungus.infer.runners import onnx_session

        session = onnx_session(copy.deepcopy(model), card, args.threads)
        if session is None:
            session = load_onnx(export_onnx(model, card, os.path.join(folder, "seg.onnx")), threads=args.threads)

        def onnx_make(batch: int):
            import numpy as np

            x = np.random.default_rng(0).standard_normal((batch, 1, args.size, args.size)).astype(np.float32)
            return lambda: session(x)

        runners.append(("onnxruntime", "cpu", onnx_make))
    if "cuda" in args.variants and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        # Module.to moves in place: the CPU runners built above must keep their CPU model.
        on_gpu = copy.deepcopy(model).to("cuda")
        runners.append(("cuda-fp32", gpu, torch_runner(on_gpu, "cuda")))
        runners.append(("cuda-fp16", gpu, torch_runner(on_gpu, "cuda", torch.float16)))
        if torch.cuda.is_bf16_supported():
            runners.append(("cuda-bf16", gpu, torch_runner(on_gpu, "cuda", torch.bfloat16)))
    return runners


def run(args: argparse.Namespace) -> dict:
    import tempfile

    from lungus.bench import measure
    from lungus.errors import LungUSError

    if args.size < 32:
        raise LungUSError(f"--size must be at least 32, got {args.size}")
    model, card = _segmenter(args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lungus-bench-seg-") as folder:
        for variant, device, make in _runners(args, model, card, folder):
            for batch in args.batches:
                calls = -(-args.frames // batch)
                step = make(batch)

                def work(step=step, calls=calls) -> None:
                    for _ in range(calls):
                        step()

                timing = measure(work, repeat=args.repeat, warmup=1)
                frames = calls * batch
                rows.append({
                    "variant": variant,
                    "device": "cpu" if device == "cpu" else "cuda",
                    "batch": batch,
                    "size": args.size,
                    "fps": round(frames / timing.median, 1),
                    "best_fps": round(frames / timing.best, 1),
                    "ms_per_frame": round(1000 * timing.median / frames, 2),
                    "threads": args.threads if device == "cpu" else None,
                    **({} if device == "cpu" else {"gpu": device}),
                })
    cpu_batch1 = [row["fps"] for row in rows if row["device"] == "cpu" and row["batch"] == 1]
    best = max((row for row in rows if row["device"] == "cpu" and row["batch"] == 1), key=lambda r: r["fps"],
               default=None)
    return {
        "results": rows,
        "model": card.architecture,
        "best_cpu_fps_batch1": max(cpu_batch1) if cpu_batch1 else None,
        "best_cpu_variant_batch1": best["variant"] if best else None,
        "cpu_threads": args.threads,
        "target_fps": REAL_TIME_FPS,
    }
