"""Save a LIME overlay of a simulated B-line frame: the README's LIME image.

    python Resources/scripts/make_lime_image.py                     # into Resources/Screenshots
    python Resources/scripts/make_lime_image.py --out DIR           # somewhere else, to look first
    python Resources/scripts/make_lime_image.py --classifier runs/a/model.pt

The picture is `lungus explain --method lime --frames top:1`'s own PNG, for the simulated clip and
the small classifier of make_slice_view_images.py (a convex clip with discrete B-lines; a bline2
frame CNN trained on simulator truth with the `lungus demo --quick` recipe, a few minutes on 2 CPU
cores; ``--work DIR`` keeps and reuses it). It also prints how the map sits on the simulator's
B-line masks in that frame: the mean map inside them over its mean in the rest of the fan.
Nothing here is a real patient's clip. Run it with the project's environment (torch).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_slice_view_images import REPO_ROOT, simulated_clip, train_classifier  # noqa: E402

LIME_IMAGE = "lime_overlay.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "Resources" / "Screenshots")
    parser.add_argument("--classifier", type=Path, help="a bline2 model file (default: train one here)")
    parser.add_argument("--work", type=Path, help="keep the simulated data and the classifier here (reused)")
    args = parser.parse_args(argv)

    from lungus.cli import main as lungus
    from lungus.data.labels.schemes import B_LINE, CONFLUENT
    from lungus.io import read_clip

    with tempfile.TemporaryDirectory(prefix="lungus-lime-image-") as temp:
        work = args.work or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        classifier = args.classifier or work / "classifier" / "model.pt"
        if not classifier.is_file():
            print("training a small B-line classifier on simulated clips (simulator truth)...")
            classifier = train_classifier(work)
        clip_path, truth_masks = simulated_clip(work)
        pictures = work / "explain"
        status = lungus(["explain", str(clip_path), "--model", str(classifier), "--method", "lime",
                         "--frames", "top:1", "--out", str(pictures), "--device", "cpu"])
        if status:
            return status
        (picture,) = pictures.glob("*.lime.png")
        frame = int(picture.name.split(".frame")[1][:4])
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, args.out / LIME_IMAGE)
        print(f"wrote {args.out / LIME_IMAGE} (frame {frame})")
        report_truth_contrast(classifier, clip_path, frame, truth_masks[frame], read_clip(clip_path).fan.mask,
                              (B_LINE, CONFLUENT))
    return 0


def report_truth_contrast(classifier: Path, clip_path: Path, frame: int, masks: np.ndarray, fan: np.ndarray,
                          bline_classes: tuple[int, ...]) -> None:
    """Print the LIME and Grad-CAM maps' mean inside the B-line truth masks over the rest of the fan."""
    from lungus.infer import Analyzer
    from lungus.infer.analyzer import explained_class

    analyzer = Analyzer(classifier, device="cpu")
    loaded = analyzer.load(clip_path)
    analysis = analyzer.analyse(loaded)
    target = explained_class(analysis.probabilities, analysis.predicted_class)
    blines = np.isin(masks, bline_classes)
    for method in ("lime", "gradcam"):
        heat = analyzer.explain_frames(loaded, [frame], method, target).original_map(0)
        inside, rest = heat[blines].mean(), heat[fan & ~blines].mean()
        print(f"{method}: mean map {inside:.3f} on the B-line masks, {rest:.3f} in the rest of the fan "
              f"(x{inside / max(rest, 1e-6):.2f})")


if __name__ == "__main__":
    raise SystemExit(main())
