"""LungUSBLinesLib: the Qt-free bridge between the `lungus` engine and Slicer's MRML scene.

Shared by the three modules (LungUSBLines, LungUSTrain, LungUSInference). It imports
slicer's MRML classes but never slicer.app, qt, ctk or ScriptedLoadableModule, so it
runs headless under slicer-core as well as inside Slicer. Every function takes the
scene explicitly: ``slicer.mrmlScene`` in Slicer, ``new_headless_scene().scene`` outside.

The one-way rule: module widgets -> LungUSBLinesLib -> lungus.

Names are imported on first use (``LungUSBLinesLib.clip_to_sequence`` works), so a
module can import ``LungUSBLinesLib.dependencies`` to find what to install before
anything that needs those packages is loaded.
"""

from __future__ import annotations

from lungus.lazy import lazy_exports

# Public name -> submodule that defines it.
_EXPORTS = {
    "AnalyzerCache": "analysis",
    "analyse_sequence": "analysis",
    "is_cancellation": "analysis",
    "clip_for_analysis": "analysis",
    "AnalysisJob": "analysis_job",
    "AnalysisRequest": "analysis_job",
    "ExplanationCheck": "explanation_check",
    "LoadedClip": "clips",
    "clip_file_name_filter": "clips",
    "describe_clip": "clips",
    "load_clip": "clips",
    "sequence_summary": "clips",
    "HEATMAP_COLOR_TABLE_NAME": "colors",
    "SEGMENTATION_COLOR_TABLE_NAME": "colors",
    "heatmap_color_table": "colors",
    "class_segment_id": "colors",
    "class_segmentation_frames": "colors",
    "labels_to_segmentation": "colors",
    "segmentation_class_labels": "colors",
    "segmentation_color_table": "colors",
    "set_class_segments": "colors",
    "ENGINE_REQUIREMENTS": "dependencies",
    "TORCH_REQUIREMENTS": "dependencies",
    "MissingRequirement": "dependencies",
    "engine_version": "dependencies",
    "missing_requirements": "dependencies",
    "DEVICE_CHOICES": "panel",
    "EXPLANATION_CHOICES": "panel",
    "TASK_CHOICES": "panel",
    "explanation_choices": "panel",
    "new_output_folder": "panel",
    "EngineProcess": "processes",
    "JobProgress": "processes",
    "default_python": "processes",
    "engine_command": "processes",
    "AnalysisNodes": "results",
    "add_analysis_to_scene": "results",
    "describe_analysis": "results",
    "find_analysis": "results",
    "jump_to_frame": "results",
    "remove_analysis": "results",
    "save_analysis": "results",
    "MaskReview": "review",
    "ModelOpinion": "review",
    "QueueWalker": "review",
    "SavedReview": "review",
    "clip_file": "review",
    "clip_opinion": "review",
    "clip_verdict": "review",
    "find_mask_review": "review",
    "loaded_browser": "review",
    "model_opinion": "review",
    "paint_frame": "review",
    "remove_mask_review": "review",
    "review_summary": "review",
    "save_review": "review",
    "segment_editor_node": "review",
    "show_review": "review",
    "start_mask_review": "review",
    "HeadlessScene": "scene",
    "self_test_skip_reason": "selftest",
    "new_headless_scene": "scene",
    "CLIP_SUMMARY_ATTRIBUTE": "sequences",
    "ClipNodes": "sequences",
    "add_synchronized_sequence": "sequences",
    "clip_to_sequence": "sequences",
    "create_browser": "sequences",
    "frame_ijk_to_ras": "sequences",
    "frames_like_sequence": "sequences",
    "frames_to_sequence": "sequences",
    "sequence_fps": "sequences",
    "sequence_spacing_mm": "sequences",
    "sequence_to_clip": "sequences",
    "sequence_to_frames": "sequences",
    "stored_clip_summary": "sequences",
    "load_scene": "storage",
    "read_sequence": "storage",
    "save_scene": "storage",
    "save_sequence": "storage",
    "read_csv_table": "tables",
    "records_to_table": "tables",
    "table_records": "tables",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
