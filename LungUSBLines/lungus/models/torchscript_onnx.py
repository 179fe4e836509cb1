"""Export to TorchScript and ONNX, each file carrying the model card (docs/architecture.md#model-file-formats).

- TorchScript (``.ts``): scripted (so any T, H, W and batch work), frozen for inference;
  the card is the ``card.json`` extra file, as SlicerIGT aigt embeds its config.json.
- ONNX (``.onnx``): the torch.export-based exporter (``dynamo=True``), with batch, frames
  and frame size dynamic; the card is the ``lungus_card`` entry of ``metadata_props``.

Both run only ``forward`` (the logits); explanations need the ``.pt`` model file.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lungus.errors import LungUSError
from lungus.models.model_file import (
    FORMAT_VERSION,
    SUPPORTED_FORMAT_VERSIONS,
    CardLike,
    LoadedModel,
    ModelCard,
    as_card,
    check_digest,
    check_model_matches_card,
    unwrap,
    weights_digest,
    write_atomically,
)
from lungus.models.registry import CLASSIFIER

CARD_EXTRA_FILE = "card.json"
ONNX_CARD_KEY = "lungus_card"
ONNX_VERSION_KEY = "lungus_format_version"
ONNX_DIGEST_KEY = "lungus_content_sha256"
#: The embedded payload's digest of the export's code and weights (the card's own weights_sha256
#: names the .pt weights it was exported from, which a frozen or converted graph no longer holds).
CONTENT_DIGEST = "content_sha256"
# TorchScript archive entries the content digest leaves out: the card (which holds the digest)
# and the id torch.save draws at random for every save.
_UNDIGESTED_ENTRIES = ("extra/", ".data/serialization_id")
#: A card with its metrics is a few kilobytes; far more is not a card (and is not read into memory).
MAX_CARD_BYTES = 1 << 20
INPUT_NAME = "frames"
OUTPUT_NAME = "logits"


def _inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy, so exporting never changes the caller's model."""
    return copy.deepcopy(unwrap(model)).cpu().eval()


def _card_for(model: nn.Module, card: CardLike, path: os.PathLike | str) -> ModelCard:
    """The validated card, naming the weights exported (the digest a .pt of them records)."""
    card = as_card(card, path)
    check_model_matches_card(unwrap(model), card, path)
    card.weights_sha256 = weights_digest(unwrap(model).state_dict())
    return card


def export_torchscript(
    model: nn.Module, card: CardLike, path: os.PathLike | str, *, freeze: bool = True
) -> Path:
    """Script ``model`` (eval mode), optionally freeze it, and save it with the card as ``card.json``."""
    card = _card_for(model, card, path)
    model = _inference_copy(model)
    with warnings.catch_warnings():
        # torch.jit is deprecated upstream but still what Slicer-side tools (aigt) load without Python deps.
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(model)
        if freeze:
            scripted = torch.jit.freeze(scripted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        unsigned = io.BytesIO()
        torch.jit.save(scripted, unsigned)
    payload = {"format_version": FORMAT_VERSION, "card": card.to_dict(), CONTENT_DIGEST: torchscript_digest(unsigned)}
    extra = {CARD_EXTRA_FILE: json.dumps(payload)}

    def write(temp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(scripted, str(temp), _extra_files=extra)

    return write_atomically(path, write)


def torchscript_digest(archive: os.PathLike | str | io.BytesIO) -> str:
    """SHA-256 of a TorchScript archive's code, constants and weights: every zip entry but the
    embedded card and the per-save random id, in name order, with the archive's folder name
    (torch takes it from the file name) left out."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(archive) as zipped:
        entries = {name.partition("/")[2]: name for name in zipped.namelist()}
        for inner in sorted(entries):
            if not inner.startswith(_UNDIGESTED_ENTRIES):
                digest.update(json.dumps([inner, zipped.getinfo(entries[inner]).file_size]).encode() + b"\n")
                digest.update(zipped.read(entries[inner]))
    return digest.hexdigest()


def _card_from_payload(data: Any, path: Path, content_digest: str) -> ModelCard:
    """The card from an embedded ``{"format_version", "card"}`` payload, version checked."""
    version = data.get("format_version") if isinstance(data, dict) else None
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise LungUSError(
            f"exported model format_version {version!r} is not supported; this lungus reads format_version "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}",
            path=path,
        )
    check_digest(data.get(CONTENT_DIGEST), content_digest, path)
    return as_card(data.get("card"), path)


def _json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise LungUSError("the embedded lungus card is not valid JSON (damaged file)", path=path) from None


def load_torchscript(path: os.PathLike | str, map_location: Any = "cpu") -> LoadedModel:
    """A TorchScript file exported by lungus, and its card."""
    card = read_torchscript_card(path)
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location=map_location)
    except Exception as error:
        raise LungUSError(f"not a loadable TorchScript file ({type(error).__name__})", path=path) from None
    return LoadedModel(model=module.eval(), card=card, path=path)


def read_torchscript_card(path: os.PathLike | str) -> ModelCard:
    """The card embedded in a TorchScript file exported by lungus, its digest checked against the
    archive's content (the code and weights are not deserialised)."""
    path = Path(path)
    if not path.is_file():
        raise LungUSError("no such TorchScript file", path=path)
    # The card and the digest of everything else are checked from the zip before torch parses a
    # byte: torch.jit.load of a damaged archive can crash the process (found by fuzzing), and code
    # that is not the code exported should not be deserialised at all.
    try:
        content_digest = torchscript_digest(path)
        card_text = _embedded_card_text(path)
    except LungUSError:
        raise
    except Exception as error:
        raise LungUSError(f"not a loadable TorchScript file ({type(error).__name__})", path=path) from None
    if not card_text:
        raise LungUSError(
            "TorchScript file has no embedded lungus card (card.json); export it with lungus", path=path
        )
    return _card_from_payload(_json(card_text, path), path, content_digest)


def _embedded_card_text(path: Path) -> str:
    """The ``extra/card.json`` entry of a TorchScript archive as text ("" when there is none)."""
    with zipfile.ZipFile(path) as zipped:
        names = [name for name in zipped.namelist() if name.partition("/")[2] == f"extra/{CARD_EXTRA_FILE}"]
        if len(names) != 1:
            return ""
        info = zipped.getinfo(names[0])
        if info.file_size > MAX_CARD_BYTES:
            raise LungUSError(f"the embedded card is {info.file_size:,} bytes, more than a card can be", path)
        return zipped.read(names[0]).decode("utf-8")


def _dynamic_shapes(kind: str) -> tuple[dict[int, Any], ...]:
    dim = torch.export.Dim
    if kind == CLASSIFIER:
        return ({0: dim("batch"), 2: dim("frames"), 3: dim("height", min=32), 4: dim("width", min=32)},)
    return ({0: dim("batch"), 2: dim("height", min=32), 3: dim("width", min=32)},)


def export_onnx(
    model: nn.Module,
    card: CardLike,
    path: os.PathLike | str,
    *,
    example_shape: Sequence[int] | None = None,
    opset: int = 18,
) -> Path:
    """Export ``model`` to ONNX with dynamic batch, frames (classifiers) and frame size; embed the card.

    ``example_shape`` defaults to the card's input shape with batch 2 (a batch of 1 would let
    the exporter specialise the batch axis).
    """
    import onnx

    card = _card_for(model, card, path)
    model = _inference_copy(model)
    shape = tuple(example_shape) if example_shape is not None else card.default_input_shape(batch=2)
    example = torch.zeros(shape)
    path = Path(path)

    def write(temp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                program = torch.onnx.export(
                    model,
                    (example,),
                    dynamo=True,
                    opset_version=opset,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamic_shapes=_dynamic_shapes(card.kind),
                    verbose=False,
                )
            except Exception as error:
                raise LungUSError(
                    f"ONNX export of {card.architecture['name']} failed ({type(error).__name__}: "
                    f"{str(error).splitlines()[0][:200] if str(error) else ''}); use --format torchscript",
                    path=path,
                ) from None
        proto = program.model_proto
        for key, value in (
            (ONNX_CARD_KEY, json.dumps(card.to_dict())),
            (ONNX_VERSION_KEY, str(FORMAT_VERSION)),
            (ONNX_DIGEST_KEY, onnx_digest(proto)),
        ):
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save_model(proto, str(temp))

    return write_atomically(path, write)


def onnx_digest(proto: Any) -> str:
    """SHA-256 of an ONNX model's graph and weights: the model serialised deterministically
    without its metadata (where the card and this digest live)."""
    bare = copy.deepcopy(proto)
    del bare.metadata_props[:]
    return hashlib.sha256(bare.SerializeToString(deterministic=True)).hexdigest()


def read_onnx_card(path: os.PathLike | str) -> ModelCard:
    """The card embedded in an ONNX file exported by lungus (weights are not read)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise LungUSError("no such ONNX file", path=path)
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as error:
        raise LungUSError(f"not a readable ONNX file ({type(error).__name__})", path=path) from None
    meta = {entry.key: entry.value for entry in proto.metadata_props}
    if ONNX_CARD_KEY not in meta:
        raise LungUSError("ONNX file has no embedded lungus card; export it with lungus", path=path)
    version = meta.get(ONNX_VERSION_KEY, "")
    payload = {
        "format_version": int(version) if version.isdigit() else version,
        "card": _json(meta[ONNX_CARD_KEY], path),
        CONTENT_DIGEST: meta.get(ONNX_DIGEST_KEY, ""),
    }
    return _card_from_payload(payload, path, onnx_digest(proto))


@dataclass
class OnnxModel:
    """An ONNX Runtime session for a lungus ONNX file: ``model(x)`` maps float32 input to logits (numpy)."""

    session: Any
    card: ModelCard
    path: Path
    run_options: Any = None  # onnxruntime.RunOptions of every run, so that stop() can end one

    def __call__(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        feed = {INPUT_NAME: np.ascontiguousarray(array, dtype=np.float32)}
        return self.session.run([OUTPUT_NAME], feed, self.run_options)[0]

    def stop(self) -> None:
        """End the runs in progress (ONNX Runtime checks between operators): a graph whose Loop
        never ends is stopped when a model call overruns its time limit (lungus.model_calls)."""
        if self.run_options is not None:
            self.run_options.terminate = True


def session_options(threads: int | None) -> Any:
    """ONNX Runtime session options: ``threads`` for one operator at a time (None: its default)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def load_onnx(
    path: os.PathLike | str, *, threads: int | None = None, providers: list[str] | None = None
) -> OnnxModel:
    """An ONNX Runtime session (CPU unless ``providers`` say otherwise) and the embedded card."""
    import onnxruntime

    card = read_onnx_card(path)
    try:
        session = onnxruntime.InferenceSession(
            str(path), session_options(threads), providers=providers or ["CPUExecutionProvider"]
        )
    except Exception as error:
        raise LungUSError(f"ONNX Runtime cannot load it ({type(error).__name__})", path=path) from None
    return OnnxModel(session=session, card=card, path=Path(path), run_options=onnxruntime.RunOptions())
