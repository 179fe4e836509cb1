"""Label image files (PNG, PNG folders, NRRD, .seq.nrrd, .seg.nrrd) -> class masks.

The .seg.nrrd fixtures carry the header fields and axis layout that slicer-core 5.13's
vtkMRMLSegmentationStorageNode writes (checked against files it wrote): sizes ``W H 1``
with ``kinds: domain domain domain`` for one layer, ``L W H 1`` with
``kinds: list domain domain domain`` and ``space directions: none ...`` for overlapping
segments, and ``Segment<N>_ID/_Name/_LabelValue/_Layer/_Extent/_Color`` key-value pairs.
"""

from __future__ import annotations

import nrrd
import numpy as np
import pytest
from PIL import Image

from lungus.data.labels.label_images import read_label_masks, segment_class
from lungus.data.labels.schemes import A_LINE, B_LINE, CONFLUENT, PLEURA, RIB_SHADOW, SEG_CLASSES
from lungus.errors import LungUSError
from lungus.io import Clip, write_clip


@pytest.fixture
def labels() -> np.ndarray:
    """Three 24x32 frames with every class."""
    masks = np.zeros((3, 24, 32), dtype=np.uint8)
    masks[:, 4:6, 2:30] = PLEURA
    masks[:, 10:11, 2:30] = A_LINE
    masks[:, 6:, 8:11] = B_LINE
    masks[:, 6:, 20:26] = CONFLUENT
    masks[:, :, :2] = RIB_SHADOW
    masks[1, 6:, 14:16] = B_LINE
    return masks


def test_grey_png_holds_class_ids(tmp_path, labels):
    Image.fromarray(labels[0]).save(tmp_path / "mask.png")
    assert np.array_equal(read_label_masks(tmp_path / "mask.png"), labels[:1])


def test_palette_png_indices_are_class_ids(tmp_path, labels):
    image = Image.fromarray(labels[0], mode="P")
    image.putpalette([v for c in SEG_CLASSES for v in (c.rgb or (0, 0, 0))])
    image.save(tmp_path / "mask.png")
    assert np.array_equal(read_label_masks(tmp_path / "mask.png", n_frames=1), labels[:1])


def test_colour_png_in_the_class_colours(tmp_path, labels):
    colours = np.array([c.rgb or (0, 0, 0) for c in SEG_CLASSES], dtype=np.uint8)
    Image.fromarray(colours[labels[0]]).save(tmp_path / "mask.png")
    assert np.array_equal(read_label_masks(tmp_path / "mask.png"), labels[:1])


def test_colour_png_with_other_colours_is_refused(tmp_path, labels):
    rgb = np.zeros((24, 32, 3), dtype=np.uint8)
    rgb[5, 5] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "mask.png")
    with pytest.raises(LungUSError, match="#ff0000 are not segmentation class colours"):
        read_label_masks(tmp_path / "mask.png")


def test_png_folder_is_one_frame_per_image_in_natural_order(tmp_path, labels):
    folder = tmp_path / "masks"
    folder.mkdir()
    for index, name in enumerate(("frame2.png", "frame10.png", "frame1.png")):
        Image.fromarray(labels[[1, 2, 0][index]]).save(folder / name)
    assert np.array_equal(read_label_masks(folder, n_frames=3), labels)


def test_png_folder_with_a_frame_of_another_size(tmp_path, labels):
    folder = tmp_path / "masks"
    folder.mkdir()
    Image.fromarray(labels[0]).save(folder / "0.png")
    Image.fromarray(labels[1, :20]).save(folder / "1.png")
    with pytest.raises(LungUSError, match="20x32 but 0.png is 24x32") as error:
        read_label_masks(folder)
    assert str(error.value).startswith(str(folder / "1.png"))


def test_jpeg_is_refused(tmp_path, labels):
    Image.fromarray(labels[0]).save(tmp_path / "mask.jpg")
    with pytest.raises(LungUSError, match="JPEG"):
        read_label_masks(tmp_path / "mask.jpg")


def test_unknown_values_need_a_value_map(tmp_path):
    binary = np.zeros((8, 8), dtype=np.uint8)
    binary[2:6, 3] = 200
    Image.fromarray(binary).save(tmp_path / "bline.png")
    with pytest.raises(LungUSError, match="label values 200 are not class ids") as error:
        read_label_masks(tmp_path / "bline.png")
    assert "\n" not in str(error.value)
    masks = read_label_masks(tmp_path / "bline.png", value_map={200: B_LINE})
    assert np.array_equal(masks[0], np.where(binary == 200, B_LINE, 0))


def test_a_0_255_b_line_mask_still_needs_a_value_map(tmp_path):
    binary = np.zeros((8, 8), dtype=np.uint8)
    binary[2:6, 3] = 255
    Image.fromarray(binary).save(tmp_path / "bline.png")
    with pytest.raises(LungUSError, match=r"frame 0 mixes label value 255 with class ids.*value_map \{255: 3\}"):
        read_label_masks(tmp_path / "bline.png")
    masks = read_label_masks(tmp_path / "bline.png", value_map={255: B_LINE})
    assert np.array_equal(masks[0], np.where(binary == 255, B_LINE, 0))


def test_a_frame_all_255_is_read_as_unlabelled(tmp_path, labels):
    from lungus.data.labels.annotation_labels import IGNORE_INDEX

    frames = labels.copy()
    frames[1] = IGNORE_INDEX
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"frame{i}.png")
    assert np.array_equal(read_label_masks(tmp_path), frames)


def test_nrrd_labelmap_volume(tmp_path, labels):
    # A plain labelmap volume as Slicer stores it: sizes W H T, short integers.
    nrrd.write(
        str(tmp_path / "labels.nrrd"),
        labels.astype(np.int16).transpose(2, 1, 0),
        {"space": "left-posterior-superior", "kinds": ["domain"] * 3},
    )
    assert np.array_equal(read_label_masks(tmp_path / "labels.nrrd", 3, shape=(24, 32)), labels)


def test_seq_nrrd_of_simulator_masks(tmp_path, labels):
    path = write_clip(Clip(labels, fps=25.0), tmp_path / "masks.seq.nrrd")
    assert np.array_equal(read_label_masks(path, n_frames=3), labels)


def segmentation_header(segments: list[tuple[str, int, int]], layers: int, offset=(0, 0, 0)) -> dict:
    header = {
        "space": "left-posterior-superior",
        "space origin": np.zeros(3),
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": " ".join(map(str, offset)),
    }
    if layers > 1:
        header["kinds"] = ["list", "domain", "domain", "domain"]
        header["space directions"] = np.array([[np.nan] * 3, [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    else:
        header["kinds"] = ["domain", "domain", "domain"]
        header["space directions"] = np.eye(3)
    for index, (name, value, layer) in enumerate(segments):
        header.update(
            {
                f"Segment{index}_ID": f"Segment_{index + 1}",
                f"Segment{index}_Name": name,
                f"Segment{index}_LabelValue": str(value),
                f"Segment{index}_Layer": str(layer),
                f"Segment{index}_Color": "0.5 0.5 0.5",
                f"Segment{index}_Extent": "0 31 0 23 0 0",
            }
        )
    return header


def write_segmentation(path, layer_data: list[np.ndarray], segments, offset=(0, 0, 0)):
    """layer_data: per layer a (T, H, W) uint8 array of segment label values."""
    if len(layer_data) == 1:
        data = layer_data[0].transpose(2, 1, 0)  # (W, H, T): Fortran order on disk
    else:
        data = np.stack(layer_data, axis=-1).transpose(3, 2, 1, 0)  # (L, W, H, T)
    nrrd.write(str(path), np.ascontiguousarray(data), segmentation_header(segments, len(layer_data), offset))
    return path


def test_seg_nrrd_segments_become_classes_by_name(tmp_path, labels):
    # Slicer's own label values are arbitrary: map them through the segment names.
    values = {PLEURA: 7, A_LINE: 1, B_LINE: 2, CONFLUENT: 3, RIB_SHADOW: 4}
    stored = np.zeros_like(labels)
    for class_id, value in values.items():
        stored[labels == class_id] = value
    names = {
        PLEURA: "Pleura",
        A_LINE: "A lines",
        B_LINE: "B-lines",
        CONFLUENT: "Confluent",
        RIB_SHADOW: "rib_shadow",
    }
    path = write_segmentation(
        tmp_path / "clip.seg.nrrd", [stored], [(names[c], v, 0) for c, v in values.items()]
    )
    assert np.array_equal(read_label_masks(path, n_frames=3), labels)


def test_seg_nrrd_overlapping_layers_paint_blines_over_alines(tmp_path):
    blines = np.zeros((1, 24, 32), dtype=np.uint8)
    blines[0, 5:, 10:14] = 1
    alines = np.zeros((1, 24, 32), dtype=np.uint8)
    alines[0, 12:14, :] = 1
    path = write_segmentation(tmp_path / "f.seg.nrrd", [blines, alines], [("B-line", 1, 0), ("A-line", 1, 1)])
    masks = read_label_masks(path)
    assert masks[0, 12, 11] == B_LINE and masks[0, 12, 20] == A_LINE and masks[0, 6, 11] == B_LINE
    assert set(np.unique(masks)) == {0, A_LINE, B_LINE}


def test_seg_nrrd_cropped_to_its_extent_is_placed_in_the_frame(tmp_path):
    crop = np.zeros((1, 5, 4), dtype=np.uint8)
    crop[0, 1:4, 1:3] = 1
    path = write_segmentation(tmp_path / "c.seg.nrrd", [crop], [("B-line", 1, 0)], offset=(10, 6, 0))
    with pytest.raises(LungUSError, match="give the frame shape"):
        read_label_masks(path)
    masks = read_label_masks(path, shape=(24, 32))
    expected = np.zeros((1, 24, 32), dtype=np.uint8)
    expected[0, 7:10, 11:13] = B_LINE
    assert np.array_equal(masks, expected)


def test_seg_nrrd_with_an_unknown_segment_name(tmp_path, labels):
    path = write_segmentation(
        tmp_path / "x.seg.nrrd", [(labels == B_LINE).astype(np.uint8)], [("Liver", 1, 0)]
    )
    with pytest.raises(LungUSError, match="segment 'Liver' \\(Segment0\\) is not a LungUS class"):
        read_label_masks(path)
    masks = read_label_masks(path, segment_classes={"liver": B_LINE})
    assert np.array_equal(masks, np.where(labels == B_LINE, B_LINE, 0))


def test_segment_names_of_every_class():
    for seg_class in SEG_CLASSES:
        assert segment_class(seg_class.name) == seg_class.id
    assert segment_class("Pleural Lines") == PLEURA and segment_class("white_lung") == CONFLUENT
    assert segment_class("liver") is None


def test_frame_count_and_size_must_match_the_clip(tmp_path, labels):
    Image.fromarray(labels[0]).save(tmp_path / "mask.png")
    with pytest.raises(LungUSError, match="labels for 1 frames but the clip has 3"):
        read_label_masks(tmp_path / "mask.png", n_frames=3)
    with pytest.raises(LungUSError, match="24x32 but the clip is 32x32"):
        read_label_masks(tmp_path / "mask.png", shape=(32, 32))


def test_unreadable_files_are_one_line_errors(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    with pytest.raises(LungUSError, match="not a readable label image"):
        read_label_masks(tmp_path / "junk.png")
    (tmp_path / "junk.seg.nrrd").write_text("garbage\n")
    with pytest.raises(LungUSError, match="not a readable NRRD"):
        read_label_masks(tmp_path / "junk.seg.nrrd")
    with pytest.raises(LungUSError, match="not found"):
        read_label_masks(tmp_path / "missing.png")
    (tmp_path / "labels.txt").write_text("0 1 2")
    with pytest.raises(LungUSError, match="not a label image"):
        read_label_masks(tmp_path / "labels.txt")
