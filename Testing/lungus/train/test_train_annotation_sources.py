"""SlicerUltrasound's own annotation file read by the training paths: segmentation masks and fusion frame
labels, for an export of the annotated DICOM that carries no spacing (.npy here, as an mp4 would be; the
mp4 writer pads the 649 rows to 650, which the fan JSON then refuses) whose manifest row gives its
annotation_spacing_mm."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from lungus.data.labels.annotation_labels import annotation_mask_file, read_annotation_mask_file
from lungus.data.labels.frame_labels import UNLABELLED
from lungus.data.manifests.manifest import Manifest
from lungus.data.pipeline.clip_preparation import ClipCache
from lungus.data.pipeline.training_sets import segmentation_mask_source
from lungus.errors import LungUSError
from lungus.io import read_clip, write_clip
from lungus.train.fusion import frame_labels_from_masks

NAME = "3038953328_70622118"


@pytest.fixture
def exported(slicer_ultrasound_clip, tmp_path):
    """(the annotated DICOM, a manifest factory) where the manifest lists the DICOM's .npy export, beside
    copies of its fan JSON and tom's AnnotateUltrasound file; the factory takes the spacing column's value."""
    dicom = slicer_ultrasound_clip(NAME)
    folder = tmp_path / "export"
    folder.mkdir()
    write_clip(read_clip(dicom, fan=False), folder / f"{NAME}.npy")
    for suffix in (".json", ".tom.json"):
        shutil.copy(dicom.with_name(f"{NAME}{suffix}"), folder / f"{NAME}{suffix}")

    def manifest(spacing: str | None) -> Manifest:
        path = folder / "manifest.csv"
        with open(path, "w", newline="") as handle:
            given = spacing is not None
            columns = ["clip", "patient", "bline2"] + (["annotation_spacing_mm"] if given else [])
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerow([f"{NAME}.npy", "p1", "present"] + ([spacing] if given else []))
        return Manifest.load(path)

    return dicom, manifest


def test_segmentation_masks_of_the_export_are_the_dicoms(exported, tmp_path):
    dicom, manifest = exported
    source = segmentation_mask_source(manifest("0.261"), "annotations", ClipCache(tmp_path / "cache"))
    from_manifest = source["read_masks"](source["mask_file"](0))
    from_dicom = read_annotation_mask_file(annotation_mask_file(dicom, tmp_path / "cache"))
    assert np.array_equal(from_manifest, from_dicom)


def test_without_the_spacing_column_the_exports_frame_is_refused(exported, tmp_path):
    _, manifest = exported
    source = segmentation_mask_source(manifest(None), "annotations", ClipCache(tmp_path / "cache"))
    expected = r"tom\.json: frame 0, points read with unit spacing .* outside the fan"
    with pytest.raises(LungUSError, match=expected):
        source["mask_file"](0)


def test_a_spacing_that_is_not_a_number_names_the_manifest_line(exported, tmp_path):
    _, manifest = exported
    source = segmentation_mask_source(manifest("fine"), "annotations", ClipCache(tmp_path / "cache"))
    with pytest.raises(LungUSError, match=r"manifest.csv: line 2: column annotation_spacing_mm: 'fine'"):
        source["mask_file"](0)


@pytest.mark.parametrize("source", ["annotations", "annotations:tom", "annotations-staple"])
def test_fusion_frame_labels_from_the_annotation(exported, tmp_path, source):
    """Frame 0 shows tom's B-lines; frame 1 nobody annotated."""
    _, manifest = exported
    cache = ClipCache(tmp_path / "cache")
    labels = frame_labels_from_masks(manifest("0.261"), 0, np.array([0, 1, 1]), source, cache)
    assert labels.tolist() == [1, UNLABELLED, UNLABELLED]


def test_a_review_export_reads_back_through_both_training_paths(exported, tmp_path):
    """tom's masks, saved as reviewer ann's corrections of the export and exported beside it: with the spacing
    in the clip's sidecar, the export writes the DICOM's millimetres and both training paths read them back
    (segmentation masks within the 3-pixel pleura thickness, the same frame labels)."""
    import json

    import cv2

    from lungus.data.labels.schemes import B_LINE, PLEURA
    from lungus.review.annotate_export import export_annotate_ultrasound
    from lungus.review.store import ReviewFolder

    dicom, manifest = exported
    clip = manifest(None).clip_path(0)
    sidecar = clip.with_suffix(".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "annotation_spacing_mm": 0.261}))
    toms = read_annotation_mask_file(annotation_mask_file(dicom, tmp_path / "cache"))
    reviews = ReviewFolder(tmp_path / "REVIEWS")
    reviews.save_masks(clip, "ann", toms)
    [written] = export_annotate_ultrasound(reviews, clip.parent)
    assert written.name == f"{NAME}.ann.json"

    source = segmentation_mask_source(manifest(None), "annotations:ann", ClipCache(tmp_path / "cache"))
    back = source["read_masks"](source["mask_file"](0))
    for class_id in (PLEURA, B_LINE):
        before, after = toms[0] == class_id, back[0] == class_id
        for one, other in ((before, after), (after, before)):
            distance = cv2.distanceTransform((~other).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            assert one.any() and distance[one].max() <= 3
    labels = frame_labels_from_masks(manifest(None), 0, np.array([0, 1]), "annotations:ann", ClipCache(None))
    assert labels.tolist() == [1, UNLABELLED]
