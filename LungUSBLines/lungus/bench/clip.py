"""`lungus bench clip`: end-to-end seconds to analyse one clip, as `lungus infer` does it.

The clip (100 frames of 350x350 by default, the size of the COVID-BLUES clips) is simulated
and written as an mp4 by the benchmark itself; each timed run decodes it, finds the fan,
prepares it for each model, runs the classifier (sliding windows, per-frame evidence) and the
segmenter (every frame), and measures B-line counts and BLAS from the masks: everything but
writing files. The models are the default frame_cnn classifier of `lungus train` and the
segmenter of Resources/recipes/sim_seg.yaml (unet_small, width 8, stride-2 stem, 256x256: the
one `lungus bench seg` times), with untrained weights, since speed does not depend on the
weights, or the model files given with --model / --segmenter.

Variants: CPU with the segmenter on ONNX Runtime (what `lungus infer` does on a CPU: the
headline ``clip_seconds_cpu``), CPU all PyTorch, and the GPU when there is one.
"""

from __future__ import annotations

import argparse

HELP = "end-to-end seconds per clip (decode, classifier, segmenter, B-line counts) like `lungus infer`"
USES_TORCH = True


def _size(text: str) -> tuple[int, int]:
    from lungus.bench.simulate import _size as parse

    return parse(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", metavar="CLS", help="classifier model file (default: the recipe's frame_cnn)"
    )
    parser.add_argument(
        "--segmenter", metavar="SEG", help="segmenter model file (default: the recipe's unet_small)"
    )
    parser.add_argument(
        "--no-segmenter", dest="use_segmenter", action="store_false", help="time the classifier alone"
    )
    parser.add_argument(
        "--frames", type=int, default=100, metavar="T", help="frames in the clip (default 100)"
    )
    parser.add_argument(
        "--size", type=_size, default=(350, 350), metavar="HxW", help="frame size (default 350x350)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, metavar="R", help="timed runs per variant (default 5)"
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu"),
        default="auto",
        help="auto: the CPU, and the GPU when present (default); cpu: the CPU only",
    )


def _stage_seconds(analyzer, path, repeat: int) -> dict[str, float]:
    """Median seconds of reading + preparing, and of the models + measures, separately."""
    import statistics
    import time

    read, models = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        loaded = analyzer.load(path)
        middle = time.perf_counter()
        analyzer.analyse(loaded)
        read.append(middle - start)
        models.append(time.perf_counter() - middle)
    return {"read_s": round(statistics.median(read), 3), "models_s": round(statistics.median(models), 3)}


def run(args: argparse.Namespace) -> dict:
    import tempfile
    from pathlib import Path

    import torch

    from lungus.bench import measure
    from lungus.bench import seg as seg_bench
    from lungus.data.labels.tasks import SEG_TASK
    from lungus.errors import LungUSError
    from lungus.infer.analyzer import Analyzer
    from lungus.infer.recipes import random_model_file
    from lungus.io.writer import write_clip
    from lungus.sim.generator import SimulationConfig, simulate_clip

    height, width = args.size
    if args.frames < 1 or args.repeat < 1:
        raise LungUSError("--frames and --repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="lungus-bench-clip-") as folder:
        folder = Path(folder)
        try:
            config = SimulationConfig(n_frames=args.frames, height=height, width=width, probe="convex")
        except ValueError as error:
            raise LungUSError(f"invalid --size/--frames: {error}") from None
        clip_path = write_clip(simulate_clip(config, seed=0, state=2).clip, folder / "clip.mp4")
        classifier = args.model or random_model_file(folder / "classifier.pt", "bline2", "frame_cnn")
        segmenter = None
        if args.use_segmenter:
            segmenter = args.segmenter or random_model_file(
                folder / "segmenter.pt", SEG_TASK, seg_bench.DEFAULT_MODEL, size=seg_bench.DEFAULT_SIZE,
                model_args=seg_bench.DEFAULT_ARGS)
        variants = [("cpu", "auto"), ("cpu", "torch")]
        if args.device == "auto" and torch.cuda.is_available():
            variants.append(("cuda", "torch"))
        rows = []
        for device, runtime in variants:
            analyzer = Analyzer(classifier, segmenter, device=device, runtime=runtime, threads=args.threads)
            timing = measure(
                lambda analyzer=analyzer: analyzer.analyse(clip_path), repeat=args.repeat, warmup=1
            )
            rows.append(
                {
                    "device": device,
                    "segmenter_runtime": analyzer.segmenter.runtime
                    if analyzer.segmenter is not None
                    else "-",
                    "frames": args.frames,
                    "size": f"{height}x{width}",
                    "median_s": round(timing.median, 3),
                    "best_s": round(timing.best, 3),
                    "cpu_s": round(timing.cpu_median, 3),
                    **_stage_seconds(analyzer, clip_path, max(1, args.repeat // 2)),
                }
            )
        models = {kind: None if entry is None else entry["id"] for kind, entry in analyzer.models().items()}
    record = {
        "results": rows,
        "clip_seconds_cpu": rows[0]["median_s"],
        "models": models,
        "target_clip_seconds_cpu": 2.0,
    }
    gpu = [row for row in rows if row["device"] == "cuda"]
    if gpu:
        record["clip_seconds_gpu"] = gpu[0]["median_s"]
    return record
