"""Export a model file for deployment, and check the export against it (behind `lungus export`).

The writing is lungus.models.torchscript_onnx's (the card embedded); this adds the round trip: load the
exported file as the engine would and compare its logits with the model file's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from lungus.errors import LungUSError

FORMATS = ("torchscript", "onnx")
#: Largest |logit difference| accepted between a model file and its export (float32 reordering).
TOLERANCE = 1e-3


def export_model(model_path: str | os.PathLike, fmt: str, out: str | os.PathLike) -> Path:
    """Write ``model_path`` as TorchScript or ONNX to ``out`` with its card; returns ``out``."""
    from lungus.models.model_file import load_model_file
    from lungus.models.torchscript_onnx import export_onnx, export_torchscript

    if fmt not in FORMATS:
        raise LungUSError(f"unknown export format {fmt!r}; use {' or '.join(FORMATS)}")
    out = Path(out)
    if out.resolve() == Path(model_path).resolve():
        raise LungUSError("the export would overwrite the model file; give another --out", out)
    loaded = load_model_file(model_path)
    if fmt == "torchscript":
        return export_torchscript(loaded.model, loaded.card, out)
    return export_onnx(loaded.model, loaded.card, out)


def check_input(card, seed: int = 0) -> torch.Tensor:
    """A random input of the card's shape (batch 2), the same every time."""
    return torch.randn(card.default_input_shape(batch=2), generator=torch.Generator().manual_seed(seed))


def check_export(model_path: str | os.PathLike, exported: str | os.PathLike) -> float:
    """Max |logit difference| between a model file and its exported file on a random input;
    LungUSError when the export loads differently or disagrees beyond TOLERANCE."""
    from lungus.models.model_file import load_model_file
    from lungus.models.model_files import ONNX, open_model

    loaded = load_model_file(model_path)
    model, card, source = open_model(exported)
    # A model file saved before digests existed has none; its export records one (of the same weights).
    source_card = {**loaded.card.to_dict(), "weights_sha256": loaded.card.weights_sha256 or card.weights_sha256}
    if card.to_dict() != source_card:
        raise LungUSError("the card embedded in the export differs from the model file's", exported)
    x = check_input(card)
    with torch.no_grad():
        expected = loaded.model(x).numpy()
        got = model(x) if source.kind == ONNX else model(x).numpy()
    difference = float(np.max(np.abs(np.asarray(got) - expected)))
    if not difference <= TOLERANCE:
        raise LungUSError(
            f"the export's output differs from the model file's by {difference:.3g} "
            f"(more than {TOLERANCE}); report this with the model's architecture",
            exported,
        )
    return difference
