"""Open any model file: a lungus model file (``.pt``, an ensemble included), or a TorchScript or
ONNX export with its embedded card, told apart by content, not by name.

This is the one place that knows the kinds of model file; the formats themselves live with their
writers (``model_file``: the ``.pt`` dict read with ``weights_only=True``; ``export``: TorchScript
and ONNX with the card and a content digest inside), and every check on them (format version,
card, weights digest, input-size limits) runs whichever way a file is opened here.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from lungus.errors import LungUSError, error_detail
from lungus.models.model_file import ModelCard, load_model_file, read_model_file_card
from lungus.models.outputs import check_model_output, expected_logits_shape
from lungus.models.torchscript_onnx import load_onnx, load_torchscript, read_onnx_card, read_torchscript_card

#: The kinds of model file, as ``file_kind`` names them.
MODEL, TORCHSCRIPT, ONNX = "model", "torchscript", "onnx"


def file_kind(path: os.PathLike | str) -> str:
    """``model`` (torch.save dict), ``torchscript`` or ``onnx``, by content; LungUSError if none."""
    path = Path(path)
    if not path.is_file():
        raise LungUSError("no such file", path=path)
    try:
        # is_zipfile only finds the end record (and raises for some damaged ones, e.g. a zip64
        # record that claims several disks); a damaged directory or entry name fails in namelist.
        names = None
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError, ValueError) as error:
        raise LungUSError(
            f"damaged model file: its zip directory cannot be read ({error_detail(error)})", path=path
        ) from None
    if names is not None:
        if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
            return TORCHSCRIPT
        if any(name.endswith("/data.pkl") for name in names):
            return MODEL
    elif path.suffix.lower() == ".onnx":
        return ONNX
    raise LungUSError("not a lungus model, TorchScript or ONNX file", path=path)


def read_card(path: os.PathLike | str) -> ModelCard:
    """The card of a model file, an exported TorchScript file or an exported ONNX file."""
    readers = {MODEL: read_model_file_card, TORCHSCRIPT: read_torchscript_card, ONNX: read_onnx_card}
    return readers[file_kind(path)](path)


@dataclass(frozen=True)
class ModelSource:
    """Where a model came from: the file, its kind (model, torchscript, onnx) and a short id.

    ``id`` is ``<name>:<sha256 prefix>`` (name: the card's name, else the file's stem), so a
    results table says which weights produced each row.
    """

    path: Path
    kind: str
    sha256: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.name}:{self.sha256[:8]}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "kind": self.kind, "sha256": self.sha256}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def onnx_providers(device: torch.device) -> list[str]:
    """ONNX Runtime's execution providers for ``device``: CUDA first on a GPU when onnxruntime has it."""
    import onnxruntime

    if device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OpenedModel(NamedTuple):
    """A model file opened to run: ``model`` is the eager module (model files, in eval mode on the
    device), the TorchScript module, or an ``OnnxModel`` session (numpy out); ``card`` its card."""

    model: Any
    card: ModelCard
    source: ModelSource


def open_model(
    path: str | os.PathLike, device: str | torch.device = "cpu", threads: int | None = None
) -> OpenedModel:
    """Open a lungus model file, TorchScript export or ONNX export (told apart by content).

    ONNX files run in ONNX Runtime (CUDA when ``device`` is a GPU and onnxruntime has it);
    ``threads`` limits ONNX Runtime's threads (torch uses ``torch.set_num_threads``).
    """
    path = Path(path)
    device = torch.device(device)
    kind = file_kind(path)
    if kind == MODEL:
        loaded = load_model_file(path)
        model = loaded.model.to(device).eval()
    elif kind == TORCHSCRIPT:
        loaded = load_torchscript(path, map_location=device)
        model = loaded.model
    else:
        loaded = load_onnx(path, threads=threads, providers=onnx_providers(device))
        model = loaded
    card = loaded.card
    return OpenedModel(model, card, ModelSource(path, kind, file_sha256(path), card.name or path.stem))


@dataclass
class InferenceModel:
    """A model file of any kind, ready to run: ``model(x)`` -> logits as a CPU float tensor.

    ``kind`` is ``model`` (a ``.pt`` model file; ``module`` is the eager model, for
    ``explain`` and Grad-CAM), ``torchscript`` or ``onnx`` (ONNX Runtime). Its logits are checked
    like the inference runners' (``lungus.models.outputs``).
    """

    kind: str
    card: ModelCard
    path: Path
    runner: Callable[[torch.Tensor], torch.Tensor]
    module: nn.Module | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The logits, checked: finite and shaped as the card says (else a LungUSError)."""
        expected = expected_logits_shape(self.card, x.shape)
        return check_model_output(self.runner(x), expected, self.card, self.path, "logits")


def _torch_runner(module: nn.Module, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x.to(device)).float().cpu()

    return run


def load_for_inference(
    path: os.PathLike | str, *, device: str | torch.device = "cpu", threads: int | None = None
) -> InferenceModel:
    """``open_model``'s model as one callable: float input in, checked CPU logits out."""
    device = torch.device(device)
    model, card, source = open_model(path, device, threads)
    if source.kind == ONNX:
        return InferenceModel(source.kind, card, source.path, lambda x: torch.from_numpy(model(x)))
    return InferenceModel(
        source.kind, card, source.path, _torch_runner(model, device), model if source.kind == MODEL else None
    )
