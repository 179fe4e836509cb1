"""Colour ultrasound as Slicer's DICOM module loads it: a sequence of vtkMRMLVectorVolumeNode
RGB frames (DICOMImageSequencePlugin.addSequenceFromImageData), analysed and exported."""

from __future__ import annotations

import time

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
import vtk  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

from lungus.errors import LungUSError  # noqa: E402
from lungus.io import read_clip  # noqa: E402
from LungUSBLinesLib.analysis import AnalyzerCache, analyse_sequence  # noqa: E402
from LungUSBLinesLib.analysis_job import AnalysisJob, AnalysisRequest  # noqa: E402
from LungUSBLinesLib.sequences import sequence_fps, sequence_spacing_mm, sequence_to_clip  # noqa: E402
from LungUSTrainLib.sequence_export import export_sequence  # noqa: E402
from LungUSTrainLib.training_set import LabeledSequence, clip_sequences, export_training_set  # noqa: E402

FRAME_TIME_MS = 50.0  # 20 fps
SPACING_MM = (0.3, 0.25)  # DICOM ultrasound region spacing, (x, y) as the plugin passes it


def _colour_frames(n_frames=6, height=40, width=56):
    """uint8 (T, H, W, 3): grey speckle-free ramp with a colour-Doppler blob that moves."""
    row, col = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    grey = (3 * row + 2 * col) % 200 + 20
    frames = np.repeat(np.repeat(grey[None, :, :, None], n_frames, axis=0), 3, axis=3).astype(np.uint8)
    for t in range(n_frames):
        frames[t, 10:20, 5 + 6 * t : 15 + 6 * t] = (220, 30, 40)  # flow towards the probe: red
    return frames


def _multiframe_image(frames):
    """The vtkImageData vtkITKArchetypeImageSeriesVectorReaderFile gives for a multi-frame RGB
    DICOM: frames along z, spacing (x, y, frame time in ms)."""
    n_frames, height, width, components = frames.shape
    image = vtk.vtkImageData()
    image.SetDimensions(width, height, n_frames)
    image.SetSpacing(1.0, 1.0, FRAME_TIME_MS)
    image.GetPointData().SetScalars(
        numpy_support.numpy_to_vtk(np.ascontiguousarray(frames).reshape(-1, components), deep=True)
    )
    return image


def _load_like_the_dicom_plugin(scene, frames, name="colour clip"):
    """DICOMImageSequencePlugin.load for one colour file (loadable.grayscale False), without the
    DICOM database: the same nodes, matrices, spacing, index values and browser."""
    temp_frame_volume = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode")
    image_data = _multiframe_image(frames)
    ijk_to_ras = vtk.vtkMatrix4x4()
    ijk_to_ras.SetElement(0, 0, -1.0)
    ijk_to_ras.SetElement(1, 1, -1.0)
    temp_frame_volume.SetIJKToRASMatrix(ijk_to_ras)
    _, _, frame_time_ms = image_data.GetSpacing()
    image_data.SetSpacing(1.0, 1.0, 1.0)
    temp_frame_volume.SetSpacing(SPACING_MM[0], SPACING_MM[1], 1.0)
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode")
    sequence.SetName(name)
    sequence.SetIndexName("time")
    sequence.SetIndexUnit("s")
    frame_time = frame_time_ms * 0.001
    extent = image_data.GetExtent()
    for frame in range(extent[5] - extent[4] + 1):
        crop = vtk.vtkImageClip()
        crop.SetInputData(image_data)
        crop.SetOutputWholeExtent(
            extent[0], extent[1], extent[2], extent[3], extent[4] + frame, extent[4] + frame
        )
        crop.ClipDataOn()
        crop.Update()
        cropped = crop.GetOutput()
        cropped.SetExtent(extent[0], extent[1], extent[2], extent[3], 0, 0)
        cropped.SetOrigin(0.0, 0.0, 0.0)
        temp_frame_volume.SetAndObserveImageData(cropped)
        sequence.SetDataNodeAtValue(temp_frame_volume, f"{frame * frame_time:.3f}")
    storage = slicer.vtkMRMLVolumeSequenceStorageNode()
    scene.AddNode(storage)
    sequence.SetAndObserveStorageNodeID(storage.GetID())
    scene.RemoveNode(temp_frame_volume)
    browser = slicer.vtkMRMLSequenceBrowserNode()
    browser.SetName(name + " browser")
    browser.SetPlaybackRateFps(1.0 / frame_time)
    scene.AddNode(browser)
    browser.AddSynchronizedSequenceNode(sequence)
    return sequence, browser


@pytest.fixture
def colour(headless):
    frames = _colour_frames()
    sequence, browser = _load_like_the_dicom_plugin(headless.scene, frames)
    return frames, sequence, browser


def test_the_plugins_frames_are_vector_volumes(colour):
    _, sequence, browser = colour
    assert sequence.GetNthDataNode(0).IsA("vtkMRMLVectorVolumeNode")
    assert browser.GetMasterSequenceNode() is sequence
    assert browser.GetProxyNode(sequence).IsA("vtkMRMLVectorVolumeNode")


def test_colour_frames_become_grey_exactly_as_the_reader_reads_a_colour_file(colour, tmp_path):
    frames, sequence, _ = colour
    np.save(tmp_path / "colour.npy", frames)
    read = read_clip(tmp_path / "colour.npy")
    clip = sequence_to_clip(sequence)
    np.testing.assert_array_equal(clip.frames, read.frames)
    assert read.rgb is not None  # the moving Doppler blob is colour that matters: kept
    np.testing.assert_array_equal(clip.rgb, read.rgb)
    assert clip.fps == pytest.approx(20.0)
    assert clip.spacing_mm == pytest.approx((SPACING_MM[1], SPACING_MM[0]))
    assert (sequence_fps(sequence), sequence_spacing_mm(sequence)) == (clip.fps, clip.spacing_mm)


def test_a_colour_sequence_is_analysed(colour, tiny_models):
    _, sequence, _ = colour
    analyzer = AnalyzerCache().get(tiny_models["classifier"], tiny_models["segmenter"], device="cpu")
    analysis = analyse_sequence(analyzer, sequence)
    assert analysis.n_frames == 6
    assert analysis.segmentation.original_masks(6).shape == (6, 40, 56)


def test_a_colour_sequence_is_analysed_by_the_panels_background_job(headless, colour, tiny_models):
    _, sequence, browser = colour
    request = AnalysisRequest(None, str(tiny_models["segmenter"]), device="cpu", threads=1)
    job = AnalysisJob(headless.scene, browser, request).start()
    deadline = time.monotonic() + 300
    while job.poll():
        assert time.monotonic() < deadline, "the analysis job did not end"
        time.sleep(0.05)
    nodes = job.finish()
    assert nodes.mask_sequence.GetNumberOfDataNodes() == 6
    assert slicer.util.arrayFromVolume(nodes.mask_sequence.GetNthDataNode(0)).shape == (1, 40, 56)


def test_a_colour_sequence_exports_as_a_grey_clip(colour, tmp_path):
    frames, sequence, _ = colour
    written = read_clip(export_sequence(sequence, tmp_path / "colour.seq.nrrd"))
    np.testing.assert_array_equal(written.frames, sequence_to_clip(sequence).frames)


def test_a_colour_sequence_is_a_training_clip(headless, colour, tmp_path):
    _, sequence, _ = colour
    assert [s.GetID() for s in clip_sequences(headless.scene)] == [sequence.GetID()]
    entry = LabeledSequence(sequence, patient="p1", label="present")
    training_set = export_training_set([entry], tmp_path / "set", "bline2")
    assert not training_set.failed
    assert read_clip(training_set.exported[0].path).frames.shape == (6, 40, 56)


def test_vector_frames_of_two_components_are_refused_by_name(headless):
    frames = np.zeros((3, 8, 10, 2), dtype=np.uint8)
    sequence, _ = _load_like_the_dicom_plugin(headless.scene, frames, name="two channels")
    with pytest.raises(LungUSError, match="'two channels'.*2 components"):
        sequence_to_clip(sequence)
