"""What Slicer's Red slice view shows for a segmenter on real clips it never trained on.

    python Resources/scripts/make_real_clip_slice_views.py --cv runs/covid_blues_seg_weak \
        --manifest manifests/covid_blues.csv --out runs/real_slice_views
    python Resources/scripts/make_real_clip_slice_views.py --segmenter runs/seg/model.pt \
        --manifest manifests/covid_blues.csv --out runs/real_slice_views_sim

Picks clips with and without B-lines by the manifest's bline2 labels and shows each through
the module's own bridge code (LungUSBLinesLib.clips, .analysis, .results, .views) in a headless
slicer-core scene, composited by vtkMRMLSliceLogic (LungUSBLinesLib.slice_view): the clip as
background, the segmenter's masks as the label layer with the class colours. With ``--cv RUN``
(a `lungus train --label-source weak:SOURCE --folds K` run) each clip is segmented by the fold
model that held out its patient, as its out-of-fold evidence was scored; ``--segmenter`` uses
one model for all. The clips shown are not chosen by how good they look: per class, those
whose B-line evidence (bline_count_max of the model that shows them) is nearest the class
median, so the pictures show a typical clip of each kind.

Each view is at the clip's frame where the masks show the most B-line pixels (the frame a
reviewer would jump to). Writes OUT/<class>_<n>_<clip>.png and OUT/montage.png with a caption
line per clip in OUT/captions.txt.

Real clips under a no-derivatives licence (COVID-BLUES: CC BY-NC-ND 4.0) must not be
committed or shared as modified images; write these into an ignored folder such as runs/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "LungUSBLines"))  # as Slicer puts the module folder on sys.path

VIEW_SIZE = 384


def fold_evidence(cv_run: Path) -> dict[str, tuple[int, dict]]:
    """clip -> (fold, evidence) of a weak-label cross-validation run."""
    found = {}
    for path in sorted(cv_run.glob("fold*/test/evidence.json")):
        fold = int(path.parent.parent.name.removeprefix("fold"))
        for record in json.loads(path.read_text(encoding="utf-8")):
            found[record["clip"]] = (fold, record["evidence"])
    if not found:
        raise SystemExit(f"{cv_run}: no fold*/test/evidence.json (a `lungus train --label-source weak:... "
                         "--folds K` run)")
    return found


def typical_clips(names: list[str], labels: np.ndarray, evidence: dict[str, float], per_class: int
                  ) -> list[tuple[str, str]]:
    """(class, clip) pairs: per class the clips whose evidence is nearest the class median."""
    picked = []
    for value, kind in ((1, "blines"), (0, "no_blines")):
        clips = [n for n, y in zip(names, labels) if y == value and n in evidence]
        median = float(np.median([evidence[c] for c in clips]))
        clips.sort(key=lambda c: (abs(evidence[c] - median), c))
        picked += [(kind, c) for c in clips[:per_class]]
    return picked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, required=True)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--cv", type=Path, help="a weak-label cross-validation run: each clip by its fold's model")
    which.add_argument("--segmenter", type=Path, help="one segmenter model file for every clip")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=2)
    args = parser.parse_args(argv)

    from PIL import Image

    from LungUSBLinesLib.analysis import AnalyzerCache, analyse_sequence
    from LungUSBLinesLib.clips import load_clip
    from LungUSBLinesLib.results import add_analysis_to_scene
    from LungUSBLinesLib.scene import new_headless_scene
    from LungUSBLinesLib.slice_view import SliceView
    from LungUSBLinesLib.views import new_layout_logic, show_result_layers
    from lungus.data.labels.schemes import B_LINE, CONFLUENT
    from lungus.data.manifests.evidence_labels import clip_labels
    from lungus.data.manifests.manifest import Manifest

    manifest = Manifest.load(args.manifest)
    labels = clip_labels(manifest, "bline2").blines
    if args.cv is not None:
        folds = fold_evidence(args.cv)
        evidence = {clip: ev["bline_count_max"] for clip, (_, ev) in folds.items()}
    else:  # one model: its evidence on every clip would take a full run; use the labels' order
        folds = {}
        evidence = {name: 0.0 for name in manifest.clips}
    picked = typical_clips(list(manifest.clips), labels, evidence, args.per_class)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = AnalyzerCache()
    images, captions = [], []
    for n, (kind, clip) in enumerate(picked):
        model = args.segmenter if args.cv is None else args.cv / f"fold{folds[clip][0]}" / "model.pt"
        with tempfile.TemporaryDirectory(), new_headless_scene() as headless:
            scene = headless.scene
            layout_logic = new_layout_logic(scene, headless.app_logic)
            loaded = load_clip(scene, manifest.clip_path(manifest.clips.index(clip)))
            analysis = analyse_sequence(cache.get(None, model, device="cpu"), loaded.nodes.sequence,
                                        clip=loaded.clip)
            nodes = add_analysis_to_scene(scene, loaded.nodes, analysis)
            masks = analysis.segmentation.original_masks(analysis.n_frames)
            blines = np.isin(masks, (B_LINE, CONFLUENT)).sum(axis=(1, 2))
            frame = int(np.argmax(blines))
            with SliceView(scene, "Red", width=VIEW_SIZE, height=VIEW_SIZE) as view:
                nodes.browser.SetSelectedItemNumber(frame)
                show_result_layers(scene, nodes, segmentation=True, heatmap=False)
                view.fit()
                rgb = view.rgb()
            layout_logic.SetMRMLScene(None)
        path = args.out / f"{kind}_{n}_{Path(clip).stem}.png"
        Image.fromarray(rgb).save(path)
        images.append(rgb)
        record = analysis.clip_record()
        caption = (f"{path.name}: label {kind}, frame {frame} of {analysis.n_frames}, "
                   f"B-line count max {record.get('bline_count_max')}, frames with B-lines "
                   f"{record.get('frames_with_blines')} of {analysis.n_frames}, model {model}")
        captions.append(caption)
        print(caption)
    Image.fromarray(np.concatenate(images, axis=1)).save(args.out / "montage.png")
    (args.out / "captions.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'montage.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
