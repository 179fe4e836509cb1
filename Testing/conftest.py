"""Shared fixtures for the whole suite.

Add fixtures here; don't rewrite others'. Every fixture writes real files into
``tmp_path``; nothing is mocked and nothing comes from the network.

Clip fixtures (io):
- ``make_fan_frames(kind, ...)`` -> (frames uint8 (T, H, W), fan_truth bool (H, W)):
  ultrasound-like speckle inside a known convex / linear / phased-array fan, with
  burned-in text, a logo and depth ticks outside it (static over time).
- ``write_test_video(path, frames, fps, fourcc)``: a video through cv2.VideoWriter.
- ``write_test_dicom(path, frames, ...)``: an ultrasound DICOM built with pydicom alone
  (grey, RGB, YBR_FULL, YBR_FULL_422; native or JPEG baseline; spacing in
  SequenceOfUltrasoundRegions; a patient name and ID to check they do not leak).
- ``mp4_clip``, ``dicom_clip``, ``seq_nrrd_clip``: ready-made small files (convex fan).
- ``slicer_ultrasound_clip(name, spacing_mm, annotations)``: a DICOM beside SlicerUltrasound's own
  AnnotateUltrasound test annotations (Testing/data/slicer_ultrasound).

Tests that need torch say so, by the ``torch`` marker or by using a fixture that loads it
(TORCH_FIXTURES); they are skipped where torch is not installed (the Slicer-release test
environments, `make test-slicer-releases`). Any other test that reaches for torch there fails.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import cv2
import numpy as np
import pytest

# ----------------------------------------------------------------------------- torch or not

#: Fixtures that load torch: a test using one (directly or through another fixture) needs torch.
TORCH_FIXTURES = frozenset({"tiny_models"})


def needs_torch(item: pytest.Item) -> bool:
    return item.get_closest_marker("torch") is not None or bool(
        TORCH_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    )


def pytest_collection_modifyitems(config, items):
    if importlib.util.find_spec("torch") is not None:
        return
    skip = pytest.mark.skip(reason="needs torch, which this environment leaves out (a Slicer release environment)")
    for item in items:
        if needs_torch(item):
            item.add_marker(skip)


@pytest.fixture
def offline_pip():
    """Factory: offline_pip(*arguments) runs ``python -m pip install ARGUMENTS`` in this Python with
    no index and no configured wheel folders, so it resolves against what is installed, offline.
    Returns the CompletedProcess (text output captured)."""
    import os
    import subprocess
    import sys

    environment = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_NO_INDEX": "1"}

    def run(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pip", "install", *arguments], capture_output=True, text=True,
                              env=environment, timeout=120)

    return run


# ----------------------------------------------------------------------------- clip fixtures

FAN_GEOMETRIES = {
    # Convex probe: apex above the image, near and far arcs, sides opening +-30 degrees.
    "convex": {"apex": (-50.0, 120.0), "angles": (-30.0, 30.0), "radii": (70.0, 210.0)},
    # Phased array: apex at the top edge, almost no near radius, +-40 degrees.
    "phased": {"apex": (8.0, 120.0), "angles": (-40.0, 40.0), "radii": (3.0, 160.0)},
    # Linear probe: a rectangle (rows 22..166, columns 44..196).
    "linear": {"bbox": (22, 44, 166, 196)},
}


def _truth_mask(kind: str, shape: tuple[int, int]) -> np.ndarray:
    """The fan, computed here independently of lungus (pixel centres inside the shape)."""
    geometry = FAN_GEOMETRIES[kind]
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    if kind == "linear":
        row0, col0, row1, col1 = geometry["bbox"]
        return (rows >= row0) & (rows < row1) & (cols >= col0) & (cols < col1)
    d_row, d_col = rows - geometry["apex"][0], cols - geometry["apex"][1]
    radius = np.sqrt(d_row**2 + d_col**2)
    angle = np.degrees(np.arctan2(d_col, d_row))
    (left, right), (inner, outer) = geometry["angles"], geometry["radii"]
    return (radius >= inner) & (radius <= outer) & (angle >= left) & (angle <= right)


def _fan_frames(
    kind: str = "convex", n_frames: int = 6, seed: int = 0, overlays: bool = True, shadow: bool = False
):
    height, width = 180, 240
    truth = _truth_mask(kind, (height, width))
    generator = np.random.default_rng(seed)
    rows = np.arange(height, dtype=float)[:, None]
    # Depth attenuation, a bright pleural line and one vertical B-line-like streak.
    profile = 150.0 * np.exp(-rows / 260.0) + np.zeros((1, width))
    profile[52:57, :] += 70.0
    profile[57:, 112:122] += 45.0
    offset = np.full((height, width), 12.0)
    if shadow:
        # A black rib shadow below the pleura reaching the fan's left edge and the far edge,
        # as in real clips where the deep image is pure black.
        profile[57:, :75] = 0.0
        offset[57:, :75] = 0.0
    frames = np.zeros((n_frames, height, width), dtype=np.uint8)
    for index in range(n_frames):
        speckle = generator.rayleigh(scale=0.55, size=(height, width))
        image = np.clip(profile * speckle + offset, 0, 255)
        frames[index] = np.where(truth, image, 0).astype(np.uint8)
    if overlays:
        overlay = np.zeros((height, width), dtype=np.uint8)
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(overlay, "ID 4711", (2, 12), font, 0.4, 255, 1, cv2.LINE_AA)
        cv2.putText(overlay, "MI 0.9", (2, 176), font, 0.35, 230, 1, cv2.LINE_AA)
        cv2.putText(overlay, "12cm", (200, 176), font, 0.35, 230, 1, cv2.LINE_AA)
        cv2.rectangle(overlay, (214, 2), (236, 14), 200, -1)  # a vendor logo block
        for tick in range(70, 150, 20):  # depth ticks beside the fan
            cv2.circle(overlay, (6, tick), 1, 255, -1)
        overlay[truth] = 0  # overlays sit outside the fan
        frames = np.maximum(frames, overlay[None])
    return frames, truth


@pytest.fixture
def make_fan_frames():
    """Factory: make_fan_frames(kind="convex"|"linear"|"phased", n_frames=6, seed=0, overlays=True,
    shadow=False) -> (frames (T, 180, 240) uint8, fan_truth (180, 240) bool)."""
    return _fan_frames


def _write_video(path, frames: np.ndarray, fps: float = 25.0, fourcc: str = "mp4v") -> Path:
    path = Path(path)
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height), True)
    assert writer.isOpened(), f"cv2 cannot write {fourcc} to {path}"
    for frame in frames:
        writer.write(frame[:, :, ::-1].copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


@pytest.fixture
def write_test_video():
    """Factory: write_test_video(path, frames (T,H,W[,3 RGB]) uint8, fps=25.0, fourcc="mp4v") -> Path."""
    return _write_video


def _ybr_full(rgb: np.ndarray) -> np.ndarray:
    """RGB -> YCbCr full range (DICOM YBR_FULL), per PS3.3 C.7.6.3.1.2."""
    rgb = rgb.astype(float)
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    cb = -0.168736 * rgb[..., 0] - 0.331264 * rgb[..., 1] + 0.5 * rgb[..., 2] + 128
    cr = 0.5 * rgb[..., 0] - 0.418688 * rgb[..., 1] - 0.081312 * rgb[..., 2] + 128
    return np.clip(np.rint(np.stack([y, cb, cr], axis=-1)), 0, 255).astype(np.uint8)


def _ybr_full_422_bytes(rgb: np.ndarray) -> bytes:
    """Native YBR_FULL_422: per pair of pixels Y1 Y2 Cb Cr, chroma averaged over the pair."""
    ybr = _ybr_full(rgb).astype(float)
    y = ybr[..., 0]
    cb = (ybr[..., 0::2, 1] + ybr[..., 1::2, 1]) / 2
    cr = (ybr[..., 0::2, 2] + ybr[..., 1::2, 2]) / 2
    packed = np.stack([y[..., 0::2], y[..., 1::2], cb, cr], axis=-1)
    return np.clip(np.rint(packed), 0, 255).astype(np.uint8).tobytes()


def _jpeg_bytes(frame: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    if frame.ndim == 3:  # YCbCr JPEG with 4:2:2 chroma, as YBR_FULL_422 states
        Image.fromarray(frame, "RGB").save(buffer, format="JPEG", quality=95, subsampling=1)
    else:
        Image.fromarray(frame, "L").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _write_dicom(
    path,
    frames: np.ndarray,
    *,
    photometric: str | None = None,
    jpeg: bool = False,
    spacing_cm: tuple[float, float] | None = (0.03, 0.025),
    fps: float | None = 20.0,
    fps_tag: str = "CineRate",
    patient_name: str = "Doe^Jane",
    patient_id: str = "PID-12345",
    pixel_data: bool = True,
    number_of_frames: int | None = None,
) -> Path:
    """An ultrasound DICOM made with pydicom only. ``frames`` (T,H,W) grey or (T,H,W,3) RGB.

    ``photometric`` defaults to MONOCHROME2 (grey), RGB (colour) or YBR_FULL_422 (colour
    JPEG). ``spacing_cm`` = (PhysicalDeltaX, PhysicalDeltaY) in cm. ``fps_tag``:
    CineRate, FrameTime or FrameTimeVector. ``number_of_frames`` overrides the header value.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    from lungus.io.dicom import save_dataset  # the pydicom 2.4 / 3.x difference, nothing else

    path = Path(path)
    colour = frames.ndim == 4
    if photometric is None:
        photometric = ("YBR_FULL_422" if jpeg else "RGB") if colour else "MONOCHROME2"
    n_frames, height, width = frames.shape[:3]
    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "US"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20240102"
    ds.Manufacturer = "TestVendor"
    ds.Rows, ds.Columns = height, width
    ds.NumberOfFrames = number_of_frames if number_of_frames is not None else n_frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    if fps is not None:
        if fps_tag == "CineRate":
            ds.CineRate = int(round(fps))
        elif fps_tag == "FrameTime":
            ds.FrameTime = f"{1000.0 / fps:.4f}"
            ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
        else:
            ds.FrameTimeVector = [0.0] + [round(1000.0 / fps, 4)] * (n_frames - 1)
            ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTimeVector")
    if spacing_cm is not None:
        region = pydicom.Dataset()
        region.RegionSpatialFormat = 1
        region.RegionDataType = 1
        region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
        region.RegionLocationMaxX1, region.RegionLocationMaxY1 = width - 1, height - 1
        region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
        region.PhysicalDeltaX, region.PhysicalDeltaY = spacing_cm
        ds.SequenceOfUltrasoundRegions = [region]
    transfer_syntax = ExplicitVRLittleEndian
    if pixel_data:
        if jpeg:
            ds.PixelData = encapsulate([_jpeg_bytes(frame) for frame in frames])
            ds["PixelData"].is_undefined_length = True
            transfer_syntax = JPEGBaseline8Bit
        elif photometric == "YBR_FULL_422":
            ds.PixelData = _ybr_full_422_bytes(frames)
        elif photometric == "YBR_FULL":
            ds.PixelData = _ybr_full(frames).tobytes()
        else:
            ds.PixelData = np.ascontiguousarray(frames).tobytes()
        ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    save_dataset(ds, path)
    return path


@pytest.fixture
def write_test_dicom():
    """Factory: write_test_dicom(path, frames, photometric=None, jpeg=False, spacing_cm=(0.03, 0.025),
    fps=20.0, fps_tag="CineRate", patient_name=..., patient_id=..., pixel_data=True) -> Path."""
    return _write_dicom


@pytest.fixture
def mp4_clip(tmp_path) -> Path:
    """A small mp4 (6 frames, 180x240, 25 fps) of a convex fan with burned-in text."""
    frames, _ = _fan_frames("convex")
    return _write_video(tmp_path / "convex.mp4", frames, fps=25.0)


@pytest.fixture
def dicom_clip(tmp_path) -> Path:
    """A small grey US multi-frame DICOM (6 frames, 180x240, 20 fps, 0.25 x 0.30 mm)."""
    frames, _ = _fan_frames("convex")
    return _write_dicom(tmp_path / "convex.dcm", frames)


@pytest.fixture
def seq_nrrd_clip(tmp_path) -> Path:
    """A small Slicer volume sequence written by lungus (6 frames, 180x240, 25 fps, 0.3 mm)."""
    from lungus.io import Clip, write_clip

    frames, _ = _fan_frames("convex")
    return write_clip(Clip(frames, fps=25.0, spacing_mm=(0.3, 0.3)), tmp_path / "convex.seq.nrrd")


@pytest.fixture
def slicer_ultrasound_clip(tmp_path, write_test_dicom):
    """Factory: slicer_ultrasound_clip(name="3038953328_70622118", spacing_mm=0.261, annotations=True) -> a
    2-frame 649x850 ultrasound DICOM, ``tmp_path/<name>/<name>.dcm``, beside SlicerUltrasound's own fan JSON
    for it and (``annotations``) its AnnotateUltrasound ``<name>.tom.json`` with lines on frame 0
    (Testing/data/slicer_ultrasound, MIT). The DICOM's one ultrasound region gives ``spacing_mm`` (the
    spacing the lines imply: Testing/lungus/data/labels/test_data_slicer_ultrasound_annotations.py);
    None: no region, so Slicer and lungus read the lines at one mm per pixel."""
    import shutil

    data = Path(__file__).resolve().parent / "data" / "slicer_ultrasound"

    def make(name: str = "3038953328_70622118", spacing_mm: float | None = 0.261,
             annotations: bool = True) -> Path:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        for suffix in (".json", ".tom.json") if annotations else (".json",):
            shutil.copy(data / f"{name}{suffix}", folder / f"{name}{suffix}")
        spacing_cm = None if spacing_mm is None else (spacing_mm / 10, spacing_mm / 10)  # PhysicalDeltaX, Y
        frames = np.zeros((2, 649, 850), dtype=np.uint8)
        return write_test_dicom(folder / f"{name}.dcm", frames, spacing_cm=spacing_cm)

    return make


# ----------------------------------------------------------------------------- simulated collections


@pytest.fixture(scope="session")
def tiny_collection(tmp_path_factory) -> Path:
    """A 16-clip, 8-patient simulated collection (64x64, 8 frames), written once per session.

    Tests must not modify it; copy what they change. Returns the manifest path.
    """
    from lungus.sim.dataset import write_dataset
    from lungus.sim.generator import SimulationConfig

    folder = tmp_path_factory.mktemp("tiny_collection")
    summary = write_dataset(folder, 16, 8, seed=3, config=SimulationConfig(n_frames=8, height=64, width=64))
    return summary.manifest


@pytest.fixture(scope="session")
def tiny_clip_paths(tiny_collection) -> list[Path]:
    """The 16 mp4 clips (64x64, 8 frames at 25 fps) of ``tiny_collection``, in manifest order."""
    from lungus.data.manifests.manifest import Manifest

    return Manifest.load(tiny_collection).clip_paths()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Untrained tiny model files with the cards `lungus train` would write: a bline2 and a
    bline3 frame CNN (32x32, 4-frame windows) and a 2-level U-Net segmenter (32x32).

    Speed and plumbing tests need real model files, not trained ones."""
    import torch

    from lungus.infer.recipes import random_model_file

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny_models")
    classifier = {"size": 32, "frames": 4, "model_args": {"width": 4}}
    return {
        # seed 1: its Grad-CAM maps are not all zero (seed 0's are)
        "classifier": random_model_file(folder / "classifier.pt", "bline2", "frame_cnn", seed=1, eval_stride=2,
                                        name="tiny-cls", **classifier),
        "bline3": random_model_file(folder / "bline3.pt", "bline3", "frame_cnn", name="tiny-bline3", **classifier),
        "segmenter": random_model_file(folder / "segmenter.pt", "seg", "unet_small", size=32,
                                       model_args={"width": 4, "levels": 2}, name="tiny-seg"),
    }


@pytest.fixture(scope="session")
def tiny_fusion_run(tiny_models, tiny_collection, tmp_path_factory) -> Path:
    """A fusion run (``lungus train --model fusion``, logreg, 2-fold patient CV) on the tiny
    collection's features from two backbones, the tiny bline2 and bline3 models; returns its folder
    (``model.pt``, ``predictions.csv``, ``cv_metrics.json``)."""
    from lungus.cli import main

    folder = tmp_path_factory.mktemp("fusion")
    backbones = [str(tiny_models["classifier"]), str(tiny_models["bline3"])]
    code = main(["features", str(tiny_collection), "--backbone", backbones[0], "--backbone", backbones[1],
                 "--size", "32", "--out", str(folder / "features"), "--device", "cpu"])
    assert code == 0
    run = folder / "run"
    code = main(["train", "--manifest", str(tiny_collection), "--task", "bline2", "--model", "fusion",
                 "--backbones", ",".join(backbones), "--classifier", "logreg", "--size", "32",
                 "--features-dir", str(folder / "features"), "--folds", "2", "--eval-aggregation", "topk:2",
                 "--out", str(run), "--device", "cpu"])
    assert code == 0
    return run


@pytest.fixture(scope="session")
def tiny_bline2_recipe(tmp_path_factory) -> Path:
    """A recipe YAML for a tiny bline2 frame CNN (32x32, 4-frame windows, one epoch, no
    augmentation, no validation split): studies that train end to end in seconds."""
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(
        "task: bline2\nmodel: frame_cnn\nmodel_args: {width: 4}\nsize: [32, 32]\nframes: 4\nepochs: 1\n"
        "batch_size: 4\nval_fraction: 0\naugment: false\n"
    )
    return path


# ----------------------------------------------------------------------------- burned-in text placed on purpose

#: Where make_text_frames puts its text: the frame's corners; a column of scanner lines
#: ending a pixel or two short of the fan's left edge (a linear probe's "L12 / LUNG / D / G /
#: Hz / patient" column); lines that start outside the fan and run into it.
TEXT_PLACEMENTS = ("corners", "fan_edge", "bbox_overlap")
_SCANNER_LINES = ("L12-4", "LUNG", "D 4.0cm", "G 56%", "25Hz", "P001")


def burned_text_frames(kind: str = "convex", placement: str = "fan_edge", n_frames: int = 12, seed: int = 0):
    """Fan frames with text burned in at a known place; returns (frames, fan_truth, text) where
    ``text`` (H, W) bool marks every pixel the text changed in some frame."""
    if placement not in TEXT_PLACEMENTS:
        raise ValueError(f"placement must be one of {TEXT_PLACEMENTS}, got {placement!r}")
    frames, truth = _fan_frames(kind, n_frames=n_frames, seed=seed, overlays=False)
    height, width = truth.shape
    overlay = np.zeros((height, width), dtype=np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.35

    def put(text: str, left: int, baseline: int, level: int = 230) -> None:
        cv2.putText(overlay, text, (left, baseline), font, scale, level, 1, cv2.LINE_AA)

    if placement == "corners":
        put("ID 4711", 2, 10)
        put("DOE^JANE", width - 58, 10)
        put("MI 0.9", 2, height - 4)
        put("12cm", width - 32, height - 4)
        overlay[cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = 0
    elif placement == "fan_edge":
        rows = np.flatnonzero(truth.any(axis=1))
        for index, text in enumerate(_SCANNER_LINES):
            baseline = int(rows[0]) + 12 + 14 * index
            fan_left = int(np.flatnonzero(truth[baseline - 8 : baseline + 2].any(axis=0))[0])
            (text_width, _), _ = cv2.getTextSize(text, font, scale, 1)
            put(text, max(1, fan_left - 2 - text_width), baseline)
        # A one-pixel gap, as scanners leave: the text ends right at the fan's edge.
        overlay[cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = 0
    else:
        middle = int(np.flatnonzero(truth.any(axis=1)).mean())
        for index, text in enumerate(("DOE^JANE 4711", "12/03/2026")):
            baseline = middle + 14 * index
            fan_left = int(np.flatnonzero(truth[baseline])[0])
            put(text, max(1, fan_left - 24), baseline)
    text = (overlay[None] > frames).any(axis=0)
    return np.maximum(frames, overlay[None]), truth, text


@pytest.fixture
def make_text_frames():
    """Factory: make_text_frames(kind="convex"|"linear"|"phased", placement="corners"|"fan_edge"|
    "bbox_overlap", n_frames=12, seed=0) -> (frames (T, 180, 240) uint8, fan_truth, text) with
    ``text`` (180, 240) bool: every pixel the burned-in text changed."""
    return burned_text_frames
