"""LungUSTrainLib: the Qt-free side of the LungUSTrain module.

Sequences reviewed or labeled in Slicer are exported as clip files the `lungus`
engine reads, so training runs outside Slicer on the same files.
"""

from LungUSTrainLib.export import EXPORT_FORMATS, ExportResult, export_sequence, export_sequences

__all__ = ["EXPORT_FORMATS", "ExportResult", "export_sequence", "export_sequences"]
