"""Models ready to run: a classifier or a segmenter loaded once from a model file, or from an
exported TorchScript / ONNX file with its embedded card.

A runner hides which runtime executes the model (eager PyTorch, TorchScript, ONNX Runtime) and
feeds it exactly as the card says: ``normalise_frames`` with the card's mean/std, the card's
windows for classifiers, its label classes and post-processing for segmenters
(``lungus.predict.card.predictor_from_card``, as evaluation builds them).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lungus.errors import Cancelled, LungUSError
from lungus.explanations import EVERY_MODEL_EXPLANATIONS, EXPLAIN_OUTPUTS, GRADCAM, LIME
from lungus.model_calls import DEFAULT_MODEL_CALL_TIMEOUT_S, ModelCallLimit
from lungus.models.lime import LimeSettings
from lungus.models.model_file import ModelCard
from lungus.models.model_files import MODEL, ONNX, TORCHSCRIPT, file_kind, open_model
from lungus.models.outputs import check_model_output, expected_logits_shape
from lungus.models.registry import CLASSIFIER, SEGMENTER
from lungus.predict.card import predictor_from_card

RUNTIMES = ("auto", "torch", "onnx")
#: Frames per segmenter call: large enough to amortise call overhead, small enough to keep
#: memory flat and to check the cancel flag often.
SEG_BATCH = 16

Cancel = Callable[[], bool]


def never_cancelled() -> bool:
    return False


def _expect_kind(card: ModelCard, kind: str, path: Path, option: str) -> None:
    if card.kind != kind:
        other = "--segmenter" if card.kind == SEGMENTER else "--model"
        raise LungUSError(
            f"this is a {card.kind} ({card.task}) model, not a {kind}; pass it with {other} instead of {option}",
            path,
        )


class ClassifierRunner:
    """A clip classifier: sliding windows in, window probabilities (and per-frame evidence) out.

    Model files (``.pt``) run eagerly and give per-frame class probabilities from the model's
    ``explain()`` (its frame logits), Grad-CAM and LIME; exported files give window probabilities only.
    Each model call runs under ``call_timeout_s`` (``ModelCallLimit``; None: no limit) and its
    logits are checked (finite, shaped as the card says) before they become probabilities.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        device: torch.device,
        threads: int | None = None,
        call_timeout_s: float | None = DEFAULT_MODEL_CALL_TIMEOUT_S,
    ) -> None:
        self.model, self.card, self.source = open_model(path, device, threads)
        _expect_kind(self.card, CLASSIFIER, Path(path), "--model")
        self.call = ModelCallLimit(self.source.path, call_timeout_s, getattr(self.model, "stop", None))
        self.device = device
        self.task = predictor_from_card(self.card)
        self.explains = self.source.kind == MODEL

    @property
    def class_names(self) -> list[str]:
        return list(self.card.class_names)

    def window_probabilities(
        self, windows: np.ndarray, cancel: Cancel = never_cancelled, step: Callable[[], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """uint8 (W, T, H, W) windows -> class probabilities (W, K) and, for model files,
        per-frame class probabilities (W, T, K) from the frame logits."""
        batch = self.task.eval_batch
        window_p, frame_p = [], []
        for start in range(0, windows.shape[0], batch):
            check_cancel(cancel)
            chunk = torch.from_numpy(np.ascontiguousarray(windows[start : start + batch]))
            x = self.task.inputs(chunk, torch.device("cpu") if self.source.kind == ONNX else self.device)
            logits, frame_logits = self.call(lambda x=x: self._logits(x))
            logits = self._checked(logits, expected_logits_shape(self.card, x.shape), "logits")
            window_p.append(logits.float().softmax(dim=1).cpu().numpy())
            if frame_logits is not None:
                frame_shape = (x.shape[0], x.shape[2], self.card.num_classes)
                frame_logits = self._checked(frame_logits, frame_shape, "frame logits")
                frame_p.append(frame_logits.float().softmax(dim=-1).cpu().numpy())
            if step is not None:
                step()
        return np.concatenate(window_p), (np.concatenate(frame_p) if frame_p else None)

    def _logits(self, x: torch.Tensor) -> tuple[Any, Any]:
        """(window logits, frame logits or None) for a batch of windows (in the model-call thread);
        with the card's ``eval_flip``, averaged with those of the mirror image, as evaluation does
        (lungus.predict.classifier.ClipClassifier.predict_clip)."""
        logits, frame_logits = self._forward(x)
        if self.task.flip:
            flipped, flipped_frames = self._forward(x.flip(-1))
            logits = (logits + flipped) / 2
            if frame_logits is not None:
                frame_logits = (frame_logits + flipped_frames) / 2
        return logits, frame_logits

    def _forward(self, x: torch.Tensor) -> tuple[Any, Any]:
        if self.source.kind == ONNX:
            return self.model(x), None
        with torch.no_grad():
            if self.explains:
                out = self.model.explain(x)
                return out["logits"], out["frame_logits"]
            return self.model(x), None

    def _checked(self, output: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
        return check_model_output(output, shape, self.card, self.source.path, what)

    def explanation_maps(
        self,
        windows: np.ndarray,
        method: str,
        target_class: int,
        cancel: Cancel = never_cancelled,
        step: Callable[[], None] | None = None,
        *,
        fan_mask: np.ndarray | None = None,
        frame: int | None = None,
        lime: LimeSettings | None = None,
    ) -> np.ndarray:
        """float32 (W, T, H, W) maps in [0, 1] of where the model saw ``target_class``.

        ``gradcam``: Grad-CAM at the layer the model names; ``lime``: LIME on the superpixels of
        each window's frame ``frame`` (default its middle) inside ``fan_mask``, with ``lime``'s
        settings, the map shown on every frame of the window; ``cam``: its exact class
        activation maps; ``attention``: its spatial attention (attention models)."""
        import torch.nn.functional as F

        from lungus.models.explain import grad_cam
        from lungus.models.lime import lime_maps

        if not self.explains:
            raise LungUSError(
                "explanations need the model file (.pt), not an exported TorchScript/ONNX file",
                self.source.path,
            )
        maps = []
        for start in range(0, windows.shape[0], self.task.eval_batch):
            check_cancel(cancel)
            x = self.task.inputs(
                torch.from_numpy(np.ascontiguousarray(windows[start : start + self.task.eval_batch])),
                self.device,
            )
            if method == GRADCAM:
                cam, _ = grad_cam(self.model, x, target_class=target_class)
            elif method == LIME:
                cam = lime_maps(self.model, x, target_class, lime, fan_mask, frame)
            else:
                key = EXPLAIN_OUTPUTS[method]
                with torch.no_grad():
                    out = self.model.explain(x)
                if key not in out:
                    raise LungUSError(
                        f"{self.card.architecture['name']} gives no {key.replace('_', ' ')} for --explain {method}; "
                        "use --explain gradcam",
                        self.source.path,
                    )
                raw = out[key][:, :, target_class] if method == "cam" else out[key]
                b, t, h, w = raw.shape
                raw = F.interpolate(
                    raw.reshape(b * t, 1, h, w).float(),
                    size=tuple(x.shape[-2:]),
                    mode="bilinear",
                    align_corners=False,
                ).reshape(b, t, *x.shape[-2:])
                raw = raw.clamp(min=0) if method == "cam" else raw
                peak = raw.flatten(1).amax(dim=1).clamp(min=1e-12)
                cam = raw / peak[:, None, None, None]
            maps.append(cam.float().cpu().numpy())
            if step is not None:
                step()
        return np.concatenate(maps)


def explanation_methods(path: str | os.PathLike) -> tuple[str, ...]:
    """The explanation methods (``ClassifierRunner.explanation_maps``) the classifier in ``path``
    supports: Grad-CAM, then those of EXPLAIN_OUTPUTS whose map the model's ``explain()`` gives
    (the model is built and run once on a blank window to see). Exported TorchScript or ONNX
    files and segmenters support none. LungUSError for a file that is not a model."""
    from lungus.models.model_file import load_model_file

    if file_kind(path) != MODEL:
        return ()
    loaded = load_model_file(path)
    if loaded.card.kind != CLASSIFIER:
        return ()
    task = predictor_from_card(loaded.card)
    height, width = loaded.card.preprocessing["size"]
    blank = torch.zeros((1, task.window, height, width), dtype=torch.uint8)
    with torch.no_grad():
        given = loaded.model.explain(task.inputs(blank, torch.device("cpu")))
    return (*EVERY_MODEL_EXPLANATIONS, *(method for method, key in EXPLAIN_OUTPUTS.items() if key in given))


def check_cancel(cancel: Cancel) -> None:
    if cancel():
        raise Cancelled("inference cancelled")


class SegmenterRunner:
    """A frame segmenter: uint8 frames in, uint8 class masks out.

    ``runtime="auto"`` runs a model file through ONNX Runtime on the CPU (converted in memory
    once, at load: about twice as fast as eager PyTorch for the U-Nets here, see BENCHMARKS.md)
    and eagerly elsewhere; ``torch`` always runs it eagerly; ``onnx`` insists on ONNX Runtime.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        device: torch.device,
        threads: int | None = None,
        runtime: str = "auto",
        log: Callable[[str], None] | None = None,
        call_timeout_s: float | None = DEFAULT_MODEL_CALL_TIMEOUT_S,
    ) -> None:
        if runtime not in RUNTIMES:
            raise LungUSError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
        self.model, self.card, self.source = open_model(path, device, threads)
        _expect_kind(self.card, SEGMENTER, Path(path), "--segmenter")
        self.device = device
        self.normalisation = self.card.preprocessing["normalisation"]
        # Label classes and post-processing (small B-line specks dropped) as the card records them.
        self.task = predictor_from_card(self.card, eval_batch=SEG_BATCH)
        self.runtime = {MODEL: "torch", TORCHSCRIPT: "torchscript", ONNX: "onnx"}[self.source.kind]
        if self.source.kind == MODEL and (
            runtime == "onnx" or (runtime == "auto" and device.type == "cpu")
        ):
            session = onnx_session(self.model, self.card, threads)
            if session is not None:
                self.model, self.runtime = session, "onnx"
            elif runtime == "onnx":
                raise LungUSError(
                    "this segmenter cannot be converted for ONNX Runtime; use runtime torch", path
                )
            elif log is not None:
                log("segmenter: ONNX Runtime conversion failed; running it with PyTorch")
        self.call = ModelCallLimit(self.source.path, call_timeout_s, getattr(self.model, "stop", None))

    def predict(
        self,
        frames: np.ndarray,
        fan_mask: np.ndarray | None = None,
        cancel: Cancel = never_cancelled,
        step: Callable[[], None] | None = None,
    ) -> np.ndarray:
        """uint8 (T, H, W) frames -> uint8 (T, H, W) class ids, finished as the card says
        (``fan_mask``: the fan in the frames, which sets the size of a B-line speck)."""
        out = []
        for start in range(0, frames.shape[0], SEG_BATCH):
            check_cancel(cancel)
            chunk = torch.from_numpy(np.ascontiguousarray(frames[start : start + SEG_BATCH]))
            x = self.task.inputs(chunk, torch.device("cpu") if self.runtime == "onnx" else self.device)
            logits = check_model_output(
                self.call(lambda x=x: self._logits(x)),
                expected_logits_shape(self.card, x.shape),
                self.card,
                self.source.path,
                "logits",
            )
            out.append(self.task.masks_from_logits(logits).cpu().numpy())
            if step is not None:
                step()
        if not out:
            return np.zeros(frames.shape, np.uint8)
        return self.task.postprocess(np.concatenate(out), fan_mask)

    def _logits(self, x: torch.Tensor) -> Any:
        """The logits of a batch of frames (in the model-call thread)."""
        with torch.no_grad():
            return self.model(x)


def onnx_session(model: torch.nn.Module, card: ModelCard, threads: int | None):
    """An in-memory ONNX Runtime session for a segmenter (None if it cannot be converted).

    Uses the TorchScript-based exporter: about a second, against half a minute for the
    torch.export one that ``lungus export`` uses for files (which must stay loadable without
    the model's Python code); the result is checked against the model before it is used.
    """
    from lungus.models.torchscript_onnx import INPUT_NAME, OUTPUT_NAME, OnnxModel, session_options

    try:
        import onnxruntime

        buffer = io.BytesIO()
        example = torch.zeros(card.default_input_shape(batch=2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model.cpu().eval(),
                (example,),
                buffer,
                dynamo=False,
                opset_version=17,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={
                    INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                    OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                },
            )
        session = onnxruntime.InferenceSession(
            buffer.getvalue(), session_options(threads), providers=["CPUExecutionProvider"]
        )
        runner = OnnxModel(session=session, card=card, path=Path("<memory>"))
        probe = torch.randn(card.default_input_shape(batch=2), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            expected = model(probe).numpy()
        if not np.allclose(runner(probe), expected, atol=1e-3, rtol=1e-3):
            return None
        return runner
    except Exception:  # any exporter or runtime failure: fall back to eager PyTorch
        return None
