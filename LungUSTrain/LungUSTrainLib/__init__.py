"""LungUSTrainLib: the Qt-free side of the LungUSTrain module.

- sequences reviewed or labeled in Slicer are exported as clip files the `lungus` engine reads
  (export), with a manifest built from each sequence's patient and label (training_set);
- `lungus train` runs as a subprocess whose progress and result are read here (training).

Names are imported on first use.
"""

from __future__ import annotations

from lungus.lazy import lazy_exports

_EXPORTS = {
    "EXPORT_FORMATS": "export",
    "ExportResult": "export",
    "export_sequence": "export",
    "export_sequences": "export",
    "LabeledSequence": "training_set",
    "TrainingSet": "training_set",
    "check_entries": "training_set",
    "clip_sequences": "training_set",
    "export_training_set": "training_set",
    "label_choices": "training_set",
    "read_labels": "training_set",
    "store_labels": "training_set",
    "TrainRequest": "training",
    "TrainingResult": "training",
    "classifier_models": "training",
    "log_lines": "training",
    "parse_progress_line": "training",
    "read_training_result": "training",
    "start_training": "training",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
