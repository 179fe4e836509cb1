"""Reviewing a clip in Slicer: say whether the model was right, correct its masks, keep both
(docs/review.md#reviewing-in-slicer).

- :func:`start_mask_review` turns the model's masks (the analysis' labelmap sequence) into a
  *segmentation sequence* in the clip's browser: one segmentation per frame, a segment per class
  (named, coloured and numbered as ``SEG_CLASSES``), with the browser saving changes of its proxy,
  so whatever the Segment Editor paints on a frame is kept in that frame's item.
- A frame is *reviewed* when its labels differ from the model's (it was edited) or when the
  reviewer marked it (:meth:`MaskReview.mark_reviewed`: the model's mask is right as it is).
  :meth:`MaskReview.corrected_masks` gives the reviewed frames' class ids and 255
  (``IGNORE_INDEX``, unlabelled for training) on every other frame.
- :func:`clip_verdict` makes the reviewer's verdict on the clip under review (what the model
  said comes from its analysis, or from the review queue's entry), and :func:`save_review`
  records it and the corrected masks in a review folder (lungus.review.store).
- :class:`QueueWalker` walks a review queue CSV (lungus.review.queue) clip by clip;
  :func:`loaded_browser` finds a queue clip already open in the scene.

Qt-free like the rest of the bridge: every function takes the scene (or a node of it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import slicer
import vtk

from lungus.data.labels.annotation_labels import IGNORE_INDEX, labelled_frames
from lungus.data.labels.schemes import LABEL_SCHEMES, SEG_CLASSES, normalise_label
from lungus.errors import LungUSError
from LungUSBLinesLib.clips import sequence_summary
from LungUSBLinesLib.colors import class_segmentation_frames, segmentation_class_labels
from LungUSBLinesLib.results import clip_browser, find_analysis
from LungUSBLinesLib.sequences import (
    add_synchronized_sequence,
    sequence_fps,
    sequence_spacing_mm,
    sequence_to_frames,
)

if TYPE_CHECKING:
    from lungus.review.queue import QueueEntry
    from lungus.review.store import ReviewFolder, Verdict

#: Node-reference role on the clip's browser: the segmentation sequence under review.
REVIEW_SEGMENTATION_ROLE = "LungUS.ReviewSegmentation"
#: On the segmentation sequence: the frames the reviewer marked reviewed (JSON list), saved with the scene.
MARKED_FRAMES_ATTRIBUTE = "LungUS.MarkedFrames"
#: The segmentation fill opacity in slice views: the model's masks are shown at the same.
REVIEW_FILL_OPACITY = 0.5


def _frame_geometry(clip_sequence: Any) -> tuple[int, int, vtk.vtkMatrix4x4]:
    """(height, width, IJK-to-RAS) of the clip's frames."""
    first = clip_sequence.GetNthDataNode(0) if clip_sequence.GetNumberOfDataNodes() else None
    if first is None or not first.IsA("vtkMRMLVolumeNode") or first.GetImageData() is None:
        raise LungUSError(f"sequence {clip_sequence.GetName()!r} does not hold image frames")
    width, height, _ = first.GetImageData().GetDimensions()
    ijk_to_ras = vtk.vtkMatrix4x4()
    first.GetIJKToRASMatrix(ijk_to_ras)
    return height, width, ijk_to_ras


@dataclass
class MaskReview:
    """The segmentation sequence of one clip under review, in the clip's browser."""

    browser: Any
    sequence: Any  # vtkMRMLSequenceNode of vtkMRMLSegmentationNode, one per clip frame

    @property
    def scene(self) -> Any:
        return self.browser.GetScene()

    @property
    def clip_sequence(self) -> Any:
        return self.browser.GetMasterSequenceNode()

    @property
    def proxy(self) -> Any:
        """The segmentation node showing the current frame: the one to edit in the Segment Editor."""
        return self.browser.GetProxyNode(self.sequence)

    @property
    def n_frames(self) -> int:
        return self.sequence.GetNumberOfDataNodes()

    @property
    def current_frame(self) -> int:
        return int(self.browser.GetSelectedItemNumber())

    def _frame(self, frame: int | None) -> int:
        frame = self.current_frame if frame is None else int(frame)
        if not 0 <= frame < self.n_frames:
            raise LungUSError(f"frame {frame} is outside the clip (frames 0-{self.n_frames - 1})")
        return frame

    def model_masks(self) -> np.ndarray:
        """uint8 (T, H, W): what the model said, the masks of the clip's analysis (all background
        when it has none: then every painted pixel is a correction)."""
        analysis = find_analysis(self.scene, self.browser)
        if analysis is not None and analysis.mask_sequence is not None:
            masks = sequence_to_frames(analysis.mask_sequence)
            if masks.shape[0] == self.n_frames:
                return masks.astype(np.uint8, copy=False)  # a clip's worth: no second copy
        height, width, _ = _frame_geometry(self.clip_sequence)
        return np.zeros((self.n_frames, height, width), dtype=np.uint8)

    def frame_labels(self, frame: int | None = None) -> np.ndarray:
        """uint8 (H, W) class ids of a frame's segmentation as it is now (default: the current frame)."""
        frame = self._frame(frame)
        node = self.proxy if frame == self.current_frame else self.sequence.GetNthDataNode(frame)
        if node is None:
            raise LungUSError(f"the review segmentation has no item for frame {frame}")
        return segmentation_class_labels(node)

    def labels(self) -> np.ndarray:
        """uint8 (T, H, W) class ids of every frame as they are now."""
        return np.stack([self.frame_labels(frame) for frame in range(self.n_frames)])

    def marked_frames(self) -> list[int]:
        """The frames the reviewer marked reviewed, edited or not."""
        text = self.sequence.GetAttribute(MARKED_FRAMES_ATTRIBUTE)
        try:
            frames = json.loads(text) if text else []
        except ValueError:
            frames = []
        return sorted({int(f) for f in frames if isinstance(f, int) and 0 <= f < self.n_frames})

    def _set_marked(self, frames: set[int]) -> None:
        self.sequence.SetAttribute(MARKED_FRAMES_ATTRIBUTE, json.dumps(sorted(frames)))

    def mark_reviewed(self, frame: int | None = None) -> int:
        """Mark a frame (default: the current one) reviewed as it is: its mask is labelled for
        training even if nobody changed it. Returns the frame."""
        frame = self._frame(frame)
        self._set_marked({*self.marked_frames(), frame})
        return frame

    def unmark_reviewed(self, frame: int | None = None) -> int:
        """Take back a mark (an edited frame stays reviewed: its labels differ from the model's)."""
        frame = self._frame(frame)
        self._set_marked(set(self.marked_frames()) - {frame})
        return frame

    def edited_frames(self, labels: np.ndarray | None = None) -> list[int]:
        """The frames whose labels differ from the model's masks."""
        labels = self.labels() if labels is None else labels
        model = self.model_masks()
        if model.shape != labels.shape:
            raise LungUSError(
                f"the model's masks are {model.shape[2]}x{model.shape[1]}x{model.shape[0]}, "
                f"the review's {labels.shape[2]}x{labels.shape[1]}x{labels.shape[0]}"
            )
        # Frame by frame: ~20 times faster than one clip-sized comparison (no 144 MB boolean
        # array for 300 frames of 600x800).
        return [frame for frame in range(len(labels)) if not np.array_equal(labels[frame], model[frame])]

    def reviewed_frames(self, labels: np.ndarray | None = None) -> list[int]:
        """Edited or marked frames: the ones whose masks are labels for training."""
        labels = self.labels() if labels is None else labels
        return sorted({*self.edited_frames(labels), *self.marked_frames()})

    def describe(self) -> str:
        """E.g. "Reviewed frames: 3 of 120 (2 edited, 1 marked as they were); this frame: edited"."""
        labels = self.labels()
        edited, marked = set(self.edited_frames(labels)), set(self.marked_frames())
        reviewed = edited | marked
        text = (
            f"Reviewed frames: {len(reviewed)} of {self.n_frames} ({len(edited)} edited, "
            f"{len(marked - edited)} marked as they were)"
        )
        state = (
            "edited"
            if self.current_frame in edited
            else "marked"
            if self.current_frame in marked
            else "not reviewed"
        )
        return f"{text}; this frame: {state}"

    def corrected_masks(self) -> np.ndarray:
        """uint8 (T, H, W): the class ids of reviewed frames, IGNORE_INDEX (255) on the others
        (unknown, so training leaves them out; docs/architecture.md#segmentation-classes)."""
        labels = self.labels()
        masks = np.full_like(labels, IGNORE_INDEX)
        reviewed = self.reviewed_frames(labels)
        masks[reviewed] = labels[reviewed]
        return masks


def _segmentation_sequence(scene: Any, clip_sequence: Any, masks: np.ndarray, name: str) -> Any:
    """A sequence of one segmentation per clip frame (the class-id images ``masks``), with the clip
    sequence's index, so the browser plays it in step."""
    height, width, ijk_to_ras = _frame_geometry(clip_sequence)
    n_items = clip_sequence.GetNumberOfDataNodes()
    if masks.shape != (n_items, height, width):
        raise LungUSError(
            f"{masks.shape[0]} masks of {masks.shape[2]}x{masks.shape[1]} pixels for clip "
            f"{clip_sequence.GetName()!r} of {n_items} frames of {width}x{height}"
        )
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    sequence.SetIndexName(clip_sequence.GetIndexName())
    sequence.SetIndexUnit(clip_sequence.GetIndexUnit())
    sequence.SetIndexType(clip_sequence.GetIndexType())
    was_modifying = sequence.StartModify()
    for i, frame_node in enumerate(class_segmentation_frames(masks, ijk_to_ras)):
        # The sequence keeps its own (deep) copy of each frame's node.
        sequence.SetDataNodeAtValue(frame_node, clip_sequence.GetNthIndexValue(i))
    sequence.EndModify(was_modifying)
    return sequence


def start_mask_review(scene: Any, clip_nodes: Any) -> MaskReview:
    """The clip's review segmentation, made from the model's masks the first time (all background
    when the analysis has no segmenter) and found again after (edits and marks kept).

    ``clip_nodes``: the clip's ClipNodes or its sequence browser. The segmentation sequence plays
    in the clip's browser, which saves the proxy's changes into the current frame's item: edit
    the proxy (:attr:`MaskReview.proxy`) in the Segment Editor, frame by frame.
    """
    browser = clip_browser(clip_nodes)
    found = find_mask_review(scene, browser)
    if found is not None:
        return found
    clip_sequence = browser.GetMasterSequenceNode()
    analysis = find_analysis(scene, browser)
    if analysis is not None and analysis.mask_sequence is not None:
        masks = sequence_to_frames(analysis.mask_sequence)
    else:
        height, width, _ = _frame_geometry(clip_sequence)
        masks = np.zeros((clip_sequence.GetNumberOfDataNodes(), height, width), dtype=np.uint8)
    sequence = _segmentation_sequence(
        scene, clip_sequence, masks, f"{clip_sequence.GetName()} reviewed masks"
    )
    sequence.SetAttribute(MARKED_FRAMES_ATTRIBUTE, "[]")
    proxy = add_synchronized_sequence(browser, sequence)
    # Edits of the proxy go into the sequence (the Segment Editor asks for this otherwise).
    browser.SetSaveChanges(sequence, True)
    proxy.CreateDefaultDisplayNodes()
    proxy.GetDisplayNode().SetOpacity2DFill(REVIEW_FILL_OPACITY)
    browser.SetNodeReferenceID(REVIEW_SEGMENTATION_ROLE, sequence.GetID())
    return MaskReview(browser, sequence)


def paint_frame(
    scene: Any, review: MaskReview, segment: str, region: np.ndarray, *, erase: bool = False
) -> int:
    """Paint (or ``erase``) the class ``segment`` (a class name, e.g. "B-line") on the pixels
    ``region`` (bool (H, W)) of the frame on show, through Slicer's segment editor logic as the
    Segment Editor's Paint and Erase do (painting overwrites other classes: a pixel has one
    class). For scripted corrections; returns the frame. The edit is kept in the frame's item."""
    from vtk.util import numpy_support

    from LungUSBLinesLib.colors import class_segment_id

    if not hasattr(slicer, "vtkSlicerSegmentEditorLogic"):
        raise LungUSError("this Slicer has no segment editor logic to paint with; edit in the Segment Editor")
    seg_class = next((c for c in SEG_CLASSES if c.name == segment and c.rgb is not None), None)
    if seg_class is None:
        names = ", ".join(c.name for c in SEG_CLASSES if c.rgb is not None)
        raise LungUSError(f"{segment!r} is not a segmentation class; one of: {names}")
    region = np.asarray(region, dtype=bool)
    height, width, _ = _frame_geometry(review.clip_sequence)
    if region.shape != (height, width):
        raise LungUSError(
            f"a {region.shape[1]}x{region.shape[0]} region for frames of {width}x{height} pixels"
        )
    # A parameter node of its own: the user's Segment Editor settings stay as they are.
    parameters = scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode", "LungUS paint")
    parameters.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteAllSegments)
    editor = slicer.vtkSlicerSegmentEditorLogic()
    try:
        editor.SetMRMLScene(scene)
        editor.SetSegmentEditorNode(parameters)
        editor.SetSegmentationNode(review.proxy)
        editor.SetSourceVolumeNode(review.browser.GetProxyNode(review.clip_sequence))
        editor.SetCurrentSegmentID(class_segment_id(seg_class))
        if not editor.ResetModifierLabelmapToDefault():
            raise LungUSError(f"Slicer could not prepare frame {review.current_frame} for editing")
        modifier = editor.GetModifierLabelmap()
        if modifier.GetDimensions()[:2] != (width, height):
            raise LungUSError(f"the segmentation's grid is not frame {review.current_frame}'s")
        numpy_support.vtk_to_numpy(modifier.GetPointData().GetScalars())[:] = region.astype(np.uint8).ravel()
        modifier.Modified()
        mode = editor.ModificationModeRemove if erase else editor.ModificationModeAdd
        editor.ModifySegmentByLabelmap(
            review.proxy, class_segment_id(seg_class), modifier, mode, False, False
        )
    finally:
        editor.SetMRMLScene(None)
        scene.RemoveNode(parameters)
    return review.current_frame


#: The singleton tag of the Segment Editor module's parameter node (Modules/Scripted/SegmentEditor).
SEGMENT_EDITOR_SINGLETON_TAG = "SegmentEditor"


def segment_editor_node(scene: Any, review: MaskReview, segment: str = "B-line") -> Any:
    """Point the Segment Editor module at the review: its parameter node (the scene's singleton,
    made here when the module has not made it yet) gets the review's proxy segmentation, the
    clip's frame as source volume and the class ``segment`` selected. The module shows them when
    it is entered. Returns the vtkMRMLSegmentEditorNode."""
    from LungUSBLinesLib.colors import class_segment_id

    editor = scene.GetSingletonNode(SEGMENT_EDITOR_SINGLETON_TAG, "vtkMRMLSegmentEditorNode")
    if editor is None:
        editor = slicer.vtkMRMLSegmentEditorNode()
        editor.SetSingletonTag(SEGMENT_EDITOR_SINGLETON_TAG)
        editor = scene.AddNode(editor)
    editor.SetAndObserveSegmentationNode(review.proxy)
    editor.SetAndObserveSourceVolumeNode(review.browser.GetProxyNode(review.clip_sequence))
    wanted = next((c for c in SEG_CLASSES if c.name == segment), None)
    if wanted is None or wanted.rgb is None:
        raise LungUSError(f"{segment!r} is not a segmentation class")
    editor.SetSelectedSegmentID(class_segment_id(wanted))
    return editor


def show_review(scene: Any, review: MaskReview, visible: bool = True) -> None:
    """Show (or hide) the review segmentation in the slice views. It takes the place of the
    model's masks: the label layer is cleared, so the two do not cover each other."""
    composites = scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    masks_proxy = None
    analysis = find_analysis(scene, review.browser)
    if analysis is not None:
        masks_proxy = analysis.mask_proxy
    for i in range(composites.GetNumberOfItems()):
        composite = composites.GetItemAsObject(i)
        if masks_proxy is not None and composite.GetLabelVolumeID() == masks_proxy.GetID():
            composite.SetLabelVolumeID(None)
    display = review.proxy.GetDisplayNode()
    if display is None:
        review.proxy.CreateDefaultDisplayNodes()
        display = review.proxy.GetDisplayNode()
    display.SetVisibility(bool(visible))


def find_mask_review(scene: Any, browser: Any) -> MaskReview | None:
    """The review segmentation of the clip of ``browser``, or None if it has none."""
    if browser is None:
        return None
    sequence = browser.GetNodeReference(REVIEW_SEGMENTATION_ROLE)
    if sequence is None or not browser.IsSynchronizedSequenceNodeID(sequence.GetID()):
        return None
    return MaskReview(browser, sequence)


def remove_mask_review(scene: Any, review: MaskReview) -> None:
    """Take a clip's review segmentation out of the scene (the edits are lost: save first)."""
    browser, sequence = review.browser, review.sequence
    proxy = browser.GetProxyNode(sequence)
    browser.RemoveSynchronizedSequenceNode(sequence.GetID())
    browser.RemoveNodeReferenceIDs(REVIEW_SEGMENTATION_ROLE)
    for node in (proxy, sequence):
        if node is not None and scene.IsNodePresent(node):
            displays = []
            if node.IsA("vtkMRMLDisplayableNode"):
                displays = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
            scene.RemoveNode(node)
            for display in displays:
                if display is not None and scene.IsNodePresent(display):
                    scene.RemoveNode(display)


# ---------------------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class ModelOpinion:
    """What the model said of a clip: its task (the label scheme), its label and that label's probability."""

    scheme: str | None = None
    label: str | None = None
    probability: float | None = None


def verdict_labels(scheme: str) -> tuple[str, ...]:
    """The classes a verdict of ``scheme`` (bline2, bline3, lus4) chooses from, in class order."""
    if scheme not in LABEL_SCHEMES:
        raise LungUSError(f"{scheme!r} is not a clip label scheme; one of {', '.join(LABEL_SCHEMES)}")
    return LABEL_SCHEMES[scheme]


def scheme_of_label(label: str | None) -> str | None:
    """The label scheme a class name belongs to (the schemes' classes do not overlap), or None."""
    for scheme, classes in LABEL_SCHEMES.items():
        if label in classes:
            return scheme
    return None


def model_opinion(record: dict[str, Any]) -> ModelOpinion:
    """What a clip's analysis record (AnalysisNodes.record, a clips.csv row) says."""
    label = record.get("pred") or None
    scheme = record.get("task") if record.get("task") in LABEL_SCHEMES else scheme_of_label(label)
    probability = None
    if label is not None:
        probabilities = record.get("probabilities") or {}
        value = probabilities.get(label, record.get(f"p_{label}"))
        if value not in (None, ""):
            probability = float(value)
    return ModelOpinion(scheme, None if label is None else str(label), probability)


def clip_opinion(scene: Any, clip_nodes: Any, entry: QueueEntry | None = None) -> ModelOpinion:
    """What the model said of a clip: from its analysis in the scene, else from its review-queue
    ``entry`` (the scheme then follows from the label)."""
    analysis = find_analysis(scene, clip_browser(clip_nodes))
    opinion = model_opinion(analysis.record) if analysis is not None else ModelOpinion()
    if opinion.label is None and entry is not None and entry.model_label:
        opinion = ModelOpinion(scheme_of_label(entry.model_label), entry.model_label, entry.probability)
    return opinion


def clip_file(browser: Any) -> str:
    """The file the clip under review was read from (absolute), as the review folder records it."""
    sequence = clip_browser(browser).GetMasterSequenceNode()
    path = sequence_summary(sequence).get("path")
    if not path:
        raise LungUSError(
            f"clip {sequence.GetName()!r} was not read from a file, so a review cannot name it: "
            "open the clip file in LungUS B-lines (or save the sequence as .seq.nrrd and open that)"
        )
    return str(Path(path).expanduser().resolve())


def clip_verdict(
    scene: Any,
    clip_nodes: Any,
    reviewer: str,
    label: str | None = None,
    *,
    comment: str = "",
    entry: QueueEntry | None = None,
    scheme: str | None = None,
) -> Verdict:
    """The reviewer's verdict on the clip of ``clip_nodes`` (its ClipNodes or browser).

    ``label`` None means "agree": the model's label. What the model said comes from the clip's
    analysis in the scene, else from the queue ``entry``; the scheme is the model's task (or
    ``scheme`` when neither says). Patient and zone come from ``entry`` when it has them (the
    store makes each clip its own patient otherwise).
    """
    from lungus.review.store import Verdict

    browser = clip_browser(clip_nodes)
    opinion = clip_opinion(scene, browser, entry)
    scheme = scheme or opinion.scheme
    if not reviewer or not reviewer.strip():
        raise LungUSError("type the reviewer's name first (it becomes the manifest column expert_<name>)")
    if scheme is None:
        raise LungUSError(
            "no label scheme for this clip: analyse it with a classifier, open it from a review queue, "
            f"or choose the scheme ({', '.join(LABEL_SCHEMES)})"
        )
    if label is None:
        if opinion.label is None:
            raise LungUSError("the model said nothing about this clip to agree with: choose a label")
        label = opinion.label
    try:
        label = normalise_label(scheme, label)
    except ValueError as error:
        raise LungUSError(str(error)) from None
    if label is None:
        raise LungUSError(f"choose a {scheme} label: {', '.join(LABEL_SCHEMES[scheme])}")
    model_label = opinion.label if opinion.scheme in (None, scheme) else None
    return Verdict(
        clip=clip_file(browser),
        reviewer=reviewer.strip(),
        scheme=scheme,
        label=label,
        model_label=model_label,
        model_probability=opinion.probability if model_label is not None else None,
        patient=entry.patient if entry is not None and entry.patient else None,
        zone=entry.zone if entry is not None and entry.zone else None,
        comment=comment,
    )


@dataclass(frozen=True)
class SavedReview:
    """What :func:`save_review` wrote: the verdict as recorded, the masks file (None when no
    frame was reviewed) and the frames labelled in it."""

    verdict: Verdict
    masks: Path | None
    reviewed_frames: tuple[int, ...] = ()

    def line(self) -> str:
        text = f"{'agreed' if self.verdict.agreed else 'set'} {self.verdict.label}"
        if self.masks is not None:
            text += f"; masks of {len(self.reviewed_frames)} reviewed frame(s) saved"
        return text


def save_review(
    folder: str | os.PathLike | ReviewFolder, verdict: Verdict, review: MaskReview | None = None
) -> SavedReview:
    """Record ``verdict`` in the review folder and, when ``review`` has reviewed frames, its
    corrected masks (reviewed frames' class ids, 255 elsewhere) as the clip's masks file."""
    from lungus.review.store import ReviewFolder

    store = folder if isinstance(folder, ReviewFolder) else ReviewFolder(folder)
    masks_path, reviewed = None, ()
    if review is not None:
        masks = review.corrected_masks()
        reviewed = tuple(int(f) for f in np.flatnonzero(labelled_frames(masks)))
        if reviewed:
            masks_path = store.save_masks(
                verdict.clip,
                verdict.reviewer,
                masks,
                spacing_mm=sequence_spacing_mm(review.clip_sequence),
                fps=sequence_fps(review.clip_sequence),
            )
    recorded = store.record(verdict)
    return SavedReview(recorded, masks_path, reviewed)


def review_summary(scene: Any, clip_nodes: Any, folder: str | os.PathLike | None = None) -> str:
    """What the review panel says about a clip: its reviewed frames, and the latest verdict on it
    in the review folder ``folder`` (read only when the folder holds reviews: nothing is made)."""
    from lungus.review.store import REVIEW_HISTORY, ReviewFolder

    browser = clip_browser(clip_nodes)
    review = find_mask_review(scene, browser)
    lines = ["Masks: the model's (Edit masks to correct them)" if review is None else review.describe()]
    if folder and (Path(folder).expanduser() / REVIEW_HISTORY).is_file():
        try:
            history = ReviewFolder(folder).history(clip_file(browser))
        except LungUSError:
            history = []  # a clip not read from a file has no reviews
        if history:
            latest = history[-1]
            agreed = " (agreed with the model)" if latest.agreed else ""
            lines.append(
                f"Last verdict: {latest.label} by {latest.reviewer}{agreed}, {latest.time}"
                + (f"; {len(history)} reviews in all" if len(history) > 1 else "")
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- the queue


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def loaded_browser(scene: Any, clip: str | os.PathLike) -> Any | None:
    """The browser of a clip already open in ``scene`` that was read from the file ``clip``, or None."""
    browsers = scene.GetNodesByClass("vtkMRMLSequenceBrowserNode")
    for i in range(browsers.GetNumberOfItems()):
        browser = browsers.GetItemAsObject(i)
        sequence = browser.GetMasterSequenceNode()
        if sequence is None:
            continue
        path = sequence_summary(sequence).get("path")
        if path and _same_file(path, clip):
            return browser
    return None


class QueueWalker:
    """Clip after clip through a review queue (lungus.review.queue), in rank order."""

    def __init__(self, entries: Sequence[QueueEntry], position: int = 0) -> None:
        self.entries = sorted(entries, key=lambda entry: entry.rank)
        self.position = min(max(int(position), 0), max(len(self.entries) - 1, 0))

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> QueueWalker:
        """The queue a `lungus review-queue --out` CSV holds."""
        from lungus.review.queue import read_queue_csv

        return cls(read_queue_csv(path))

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def current(self) -> QueueEntry | None:
        return self.entries[self.position] if self.entries else None

    def next(self) -> QueueEntry | None:
        """Move to the next clip and return it; None (staying on the last) at the end."""
        if self.position + 1 >= len(self.entries):
            return None
        self.position += 1
        return self.current

    def previous(self) -> QueueEntry | None:
        """Move to the clip before and return it; None (staying on the first) at the start."""
        if self.position == 0 or not self.entries:
            return None
        self.position -= 1
        return self.current

    def go_to(self, clip: str | os.PathLike) -> QueueEntry | None:
        """Move to the entry of the file ``clip`` and return it; None (not moving) if it is not queued."""
        for i, entry in enumerate(self.entries):
            if _same_file(entry.clip, clip):
                self.position = i
                return entry
        return None

    def where(self) -> str:
        """E.g. "clip 3 of 40: /data/clip.mp4 (score 0.82)"."""
        entry = self.current
        if entry is None:
            return "the queue is empty"
        return f"clip {self.position + 1} of {len(self.entries)}: {entry.clip} (score {entry.score:.2f})"
