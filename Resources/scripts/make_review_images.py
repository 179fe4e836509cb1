"""Save what the Red slice view shows before and after a mask correction: the README's review images.

    python Resources/scripts/make_review_images.py                 # into Resources/Screenshots
    python Resources/scripts/make_review_images.py --out DIR       # somewhere else, to look first

The pixels are Slicer's own: the clip, the masks and the view are real MRML nodes in a headless
slicer-core scene, set up by the bridge code the module runs (LungUSBLinesLib.results, .review,
.views), and composited by vtkMRMLSliceLogic (LungUSBLinesLib.slice_view). Nothing is drawn by hand.

What produces what (nothing here is a real patient's clip, and no model runs):
- the clip: the simulated convex-probe clip with discrete B-lines of make_slice_view_images.py;
- "before": the simulator's truth masks with one B-line taken out of the shown frame, standing in
  for a segmenter that missed it, recorded as the module records a segmenter's masks;
- "after": the review. The masks become the review segmentation sequence, the missed B-line is
  painted back on that frame through Slicer's segment editor logic (LungUSBLinesLib.review.
  paint_frame, the code path of the Segment Editor's Paint), the verdict and the corrected masks
  are saved into a review folder, and the masks file is read back and shown as the module shows
  masks (the class colour table; Slicer's slice logic composites volumes, not segmentations).

Torch-free; runs in seconds with slicer-core. Deterministic.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "LungUSBLines"))  # as Slicer puts the module folder on sys.path
sys.path.insert(0, str(REPO_ROOT / "Resources" / "scripts"))

BEFORE_IMAGE = "review_before.png"
AFTER_IMAGE = "review_after.png"
VIEW_SIZE = 512


def missed_b_line(masks: np.ndarray) -> tuple[int, np.ndarray]:
    """(frame, region): the frame with the most B-line pixels and its largest B-line region."""
    from scipy import ndimage

    from lungus.data.labels.schemes import B_LINE

    frame = int(np.argmax((masks == B_LINE).sum(axis=(1, 2))))
    regions, count = ndimage.label(masks[frame] == B_LINE)
    if count == 0:
        raise SystemExit("the simulated clip has no B-line to miss")
    sizes = ndimage.sum(np.ones_like(regions), regions, index=range(1, count + 1))
    return frame, regions == 1 + int(np.argmax(sizes))


def recorded_masks(scene, clip_nodes, clip_path: Path, masks: np.ndarray):
    """``masks`` recorded beside the clip as an analysis with a segmenter only (no model run:
    lungus.infer's result objects, filled here), so the module's review code finds them."""
    from lungus.data.labels.blines import analyse_masks
    from lungus.data.pipeline.clip_preparation import Placement
    from lungus.infer.results import ClipAnalysis, SegmentationOutput
    from LungUSBLinesLib.results import add_analysis_to_scene

    n_frames, height, width = masks.shape
    placement = Placement(crop=(0, 0, height, width), scale=1.0, pad=(0, 0), original_size=(height, width))
    output = SegmentationOutput(
        masks, np.arange(n_frames), placement, np.ones((height, width), bool), analyse_masks(masks)
    )
    analysis = ClipAnalysis(
        clip=str(clip_path),
        n_frames=n_frames,
        fps=clip_nodes.browser.GetPlaybackRateFps(),
        frames=np.arange(n_frames),
        segmentation=output,
        segmenter="simulator truth, one B-line out",
    )
    return add_analysis_to_scene(scene, clip_nodes, analysis)


def show_labels(scene, nodes, masks: np.ndarray, name: str):
    """``masks`` as a labelmap sequence in the clip's browser, shown in the label layer."""
    from LungUSBLinesLib.colors import segmentation_color_table
    from LungUSBLinesLib.sequences import add_synchronized_sequence, frames_like_sequence

    sequence = frames_like_sequence(
        scene, masks, name, nodes.clip_sequence, node_class="vtkMRMLLabelMapVolumeNode"
    )
    proxy = add_synchronized_sequence(nodes.browser, sequence)
    proxy.CreateDefaultDisplayNodes()
    proxy.GetDisplayNode().SetAndObserveColorNodeID(segmentation_color_table(scene).GetID())
    return proxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "Resources" / "Screenshots")
    args = parser.parse_args(argv)

    from make_slice_view_images import simulated_clip
    from PIL import Image

    from lungus.data.labels.label_images import read_label_masks
    from LungUSBLinesLib import review
    from LungUSBLinesLib.clips import load_clip
    from LungUSBLinesLib.scene import new_headless_scene
    from LungUSBLinesLib.slice_view import SliceView
    from LungUSBLinesLib.views import (
        SEGMENTATION_OPACITY,
        new_layout_logic,
        show_result_layers,
        show_results_views,
    )

    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="lungus-review-images-") as temp,
        new_headless_scene() as headless,
    ):
        work = Path(temp)
        clip_path, truth = simulated_clip(work)
        frame, missed = missed_b_line(truth)
        model_masks = truth.copy()
        model_masks[frame][missed] = 0  # the "segmenter" missed this B-line

        scene = headless.scene
        layout_logic = new_layout_logic(scene, headless.app_logic)
        loaded = load_clip(scene, clip_path)
        nodes = recorded_masks(scene, loaded.nodes, clip_path, model_masks)
        nodes.browser.SetSelectedItemNumber(frame)

        under_review = review.start_mask_review(scene, loaded.nodes)
        review.paint_frame(scene, under_review, "B-line", missed)
        verdict = review.clip_verdict(
            scene,
            loaded.nodes,
            "reviewer",
            "present",
            scheme="bline2",
            comment="a B-line the segmenter missed, painted back",
        )
        saved = review.save_review(work / "reviews", verdict, under_review)
        corrected = read_label_masks(saved.masks)
        assert saved.reviewed_frames == (frame,), saved.reviewed_frames

        show_results_views(layout_logic, headless.app_logic, None)
        with SliceView(scene, "Red", width=VIEW_SIZE, height=VIEW_SIZE) as view:
            show_result_layers(scene, nodes, segmentation=True, heatmap=False)
            view.fit()
            before = view.rgb()
            after_proxy = show_labels(scene, nodes, corrected, "corrected masks, read back")
            view.composite_node.SetLabelVolumeID(after_proxy.GetID())
            view.composite_node.SetLabelOpacity(SEGMENTATION_OPACITY)
            after = view.rgb()
            # The pixels say what the captions say: the missed B-line is green after, not before.
            rows, cols = np.nonzero(missed)
            view_rows, view_cols = view.view_pixels(loaded.nodes.proxy, rows, cols)
            # B-line green (40, 220, 40) at half opacity over grey: green well above red.
            tinted = [
                float(np.mean(image[view_rows, view_cols, 1].astype(int) - image[view_rows, view_cols, 0]))
                for image in (before, after)
            ]
            assert tinted[0] < 10 < 40 < tinted[1], (
                f"the painted B-line does not show as it should ({tinted})"
            )
        Image.fromarray(before).save(args.out / BEFORE_IMAGE)
        Image.fromarray(after).save(args.out / AFTER_IMAGE)
        layout_logic.SetMRMLScene(None)
        print(
            f"wrote {args.out / BEFORE_IMAGE} and {args.out / AFTER_IMAGE}: frame {frame} of {truth.shape[0]}, "
            f"{int(missed.sum())} B-line pixels painted back; green minus red over them {tinted[0]:.0f} -> "
            f"{tinted[1]:.0f}; saved {saved.masks.relative_to(work)} ({saved.line()})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
