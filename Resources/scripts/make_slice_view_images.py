"""Save what the Red slice view shows after an analysis: the README's two slice-view images.

    python Resources/scripts/make_slice_view_images.py                 # into Resources/Screenshots
    python Resources/scripts/make_slice_view_images.py --out DIR       # somewhere else, to look first
    python Resources/scripts/make_slice_view_images.py --segmenter runs/seg/model.pt

The pixels are Slicer's own: the clip, its results and the view are real MRML nodes in a
headless slicer-core scene, set up by the same bridge code the module runs
(LungUSBLinesLib.results, .views), and composited by vtkMRMLSliceLogic
(LungUSBLinesLib.slice_view). Nothing is drawn by hand.

What produces what (nothing here is a real patient's clip):
- the clip: a simulated convex-probe clip with discrete B-lines (lungus.sim, fixed seed);
- the heat map: Grad-CAM of a B-line classifier (bline2, frame_cnn) trained here on a small
  simulated collection with simulator-truth labels (the `lungus demo --quick` recipe: a few
  minutes on 2 CPU cores, longer on a busy machine);
  ``--classifier MODEL`` uses a model file instead;
- the segmentation: the simulator's truth masks, shown exactly as the module shows a
  segmenter's masks (a labelmap sequence in the clip's browser, the class colour table);
  ``--segmenter MODEL`` shows a trained segmenter's masks instead (e.g. the model of
  Resources/recipes/sim_seg.yaml, which takes over an hour to train on a CPU).

Run it with the project's environment (slicer-core, torch). Deterministic up to torch's
CPU arithmetic.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "LungUSBLines"))  # as Slicer puts the module folder on sys.path

SEGMENTATION_IMAGE = "slice_view_segmentation.png"
HEATMAP_IMAGE = "slice_view_heatmap.png"
CLIP_SEED = 4
CLIP_STATE = 1  # discrete B-lines (lungus.sim.scene)
CLIP_SIZE = 256
CLIP_FRAMES = 24
VIEW_SIZE = 512


def train_classifier(folder: Path) -> Path:
    """A small bline2 frame CNN trained on simulator truth (the `lungus demo --quick` recipe)."""
    from lungus.demo import DemoConfig
    from lungus.sim.dataset import write_dataset
    from lungus.sim.generator import SimulationConfig
    from lungus.train.config import TrainConfig
    from lungus.train.loop import fit

    recipe = DemoConfig.quick()
    summary = write_dataset(
        folder / "data",
        recipe.clips,
        recipe.patients,
        seed=recipe.seed,
        config=SimulationConfig(n_frames=recipe.frames, height=recipe.sim_size, width=recipe.sim_size),
    )
    fit(
        TrainConfig(
            manifest=str(summary.manifest),
            out=str(folder / "classifier"),
            task="bline2",
            model="frame_cnn",
            model_args={"width": recipe.width},
            label_source="truth",
            size=(recipe.input_size, recipe.input_size),
            frames=recipe.window,
            epochs=recipe.epochs,
            batch_size=8,
            lr=3e-3,
            val_fraction=0.2,
            seed=recipe.seed,
            augment=True,
            cache_dir=str(folder / ".cache"),
        ),
        log=lambda message: print(f"  {message}"),
    )
    return folder / "classifier" / "model.pt"


def simulated_clip(folder: Path):
    """The simulated clip written as a .seq.nrrd file, and its truth masks."""
    from lungus.io import write_clip
    from lungus.sim.generator import SimulationConfig, simulate_clip

    config = SimulationConfig(n_frames=CLIP_FRAMES, height=CLIP_SIZE, width=CLIP_SIZE, probe="convex")
    simulated = simulate_clip(config, seed=CLIP_SEED, state=CLIP_STATE, name="simulated")
    return write_clip(simulated.clip, folder / "simulated.seq.nrrd"), simulated.masks


def show_truth_masks(scene, nodes, masks: np.ndarray):
    """The simulator's masks recorded as the module records a segmenter's (results.py)."""
    from LungUSBLinesLib.colors import segmentation_color_table
    from LungUSBLinesLib.sequences import add_synchronized_sequence, frames_like_sequence

    sequence = frames_like_sequence(
        scene, masks, "simulator truth", nodes.clip_sequence, node_class="vtkMRMLLabelMapVolumeNode"
    )
    proxy = add_synchronized_sequence(nodes.browser, sequence)
    proxy.CreateDefaultDisplayNodes()
    proxy.GetDisplayNode().SetAndObserveColorNodeID(segmentation_color_table(scene).GetID())
    nodes.mask_sequence = sequence


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "Resources" / "Screenshots")
    parser.add_argument("--classifier", type=Path, help="a bline2 model file (default: train one here)")
    parser.add_argument("--segmenter", type=Path, help="a segmenter model file (default: simulator truth)")
    parser.add_argument(
        "--work",
        type=Path,
        help="keep the simulated data and the trained classifier here (reused when present)",
    )
    args = parser.parse_args(argv)

    from PIL import Image

    from LungUSBLinesLib.analysis import AnalyzerCache, analyse_sequence
    from LungUSBLinesLib.clips import load_clip
    from LungUSBLinesLib.results import add_analysis_to_scene
    from LungUSBLinesLib.scene import new_headless_scene
    from LungUSBLinesLib.slice_view import SliceView
    from LungUSBLinesLib.views import new_layout_logic, show_result_layers, show_results_views

    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="lungus-slice-view-") as temp, new_headless_scene() as headless:
        work = args.work or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        classifier = args.classifier
        if classifier is None and (work / "classifier" / "model.pt").is_file():
            classifier = work / "classifier" / "model.pt"
        elif classifier is None:
            print("training a small B-line classifier on simulated clips (simulator truth)...")
            classifier = train_classifier(work)
        clip_path, truth_masks = simulated_clip(work)

        scene = headless.scene
        layout_logic = new_layout_logic(scene, headless.app_logic)
        loaded = load_clip(scene, clip_path)
        analyzer = AnalyzerCache().get(classifier, args.segmenter, device="cpu")
        analysis = analyse_sequence(analyzer, loaded.nodes.sequence, clip=loaded.clip, explain="gradcam")
        nodes = add_analysis_to_scene(scene, loaded.nodes, analysis)
        if args.segmenter is None:
            show_truth_masks(scene, nodes, truth_masks)
        frame = nodes.top_frame  # where the module's "Jump to the top frame" goes

        show_results_views(layout_logic, headless.app_logic, next(iter(nodes.charts.values()), None))
        with SliceView(scene, "Red", width=VIEW_SIZE, height=VIEW_SIZE) as view:
            nodes.browser.SetSelectedItemNumber(frame)
            for name, segmentation, heatmap in (
                (SEGMENTATION_IMAGE, True, False),
                (HEATMAP_IMAGE, False, True),
            ):
                show_result_layers(scene, nodes, segmentation=segmentation, heatmap=heatmap)
                view.fit()
                Image.fromarray(view.rgb()).save(args.out / name)
                print(f"wrote {args.out / name}")
        layout_logic.SetMRMLScene(None)
        print(
            f"frame {frame} of {analysis.n_frames}; p(B-lines) of the clip "
            f"{analysis.clip_record().get('p_present', float('nan')):.2f}; {time.time() - started:.0f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
