"""Clip classifiers and frame segmenters by name, model files with cards, and export.

Architectures register themselves where they are defined (``register_model``); any model file
(``.pt``, TorchScript, ONNX) opens through ``open_model`` (``lungus.models.model_files``).

>>> from lungus.models import build_model, available_models
>>> model = build_model("frame_cnn", num_classes=2, width=16)

Classifiers take (B, 1, T, H, W) normalised grayscale clips and return logits (B, K);
segmenters take (B, 1, H, W) frames and return logits (B, 6, H, W). Normalisation is
``(uint8 / 255 - mean) / std`` with mean/std from the model card (``normalise_frames``).
"""

# isort: off
# Importing the architecture modules registers their models (``registry.register_model``), in the
# order the registry lists them: video ResNets, frame classifiers, segmenters, ensembles, fused-feature frame classifiers.
from lungus.models import video_resnet, frame_cnn, cnn_lstm, unet, ensemble, fusion  # noqa: F401
# isort: on
from lungus.models.base import Segmenter, VideoClassifier
from lungus.models.explain import grad_cam
from lungus.models.model_file import (
    FORMAT_VERSION,
    TASKS,
    LoadedModel,
    ModelCard,
    load_model_file,
    save_model_file,
    software_versions,
    task_class_names,
    utc_now,
)
from lungus.models.model_files import (
    InferenceModel,
    ModelSource,
    OpenedModel,
    file_kind,
    load_for_inference,
    open_model,
    read_card,
)
from lungus.models.normalisation import IMAGENET_GRAY, KINETICS_GRAY, normalise_frames
from lungus.models.registry import (
    CLASSIFIER,
    MODEL_REGISTRY,
    SEGMENTER,
    ModelSpec,
    architecture,
    available_models,
    build_from_architecture,
    build_model,
    describe_model,
    get_spec,
    parse_arch_args,
    register_model,
)
from lungus.models.torchscript_onnx import (
    OnnxModel,
    export_onnx,
    export_torchscript,
    load_onnx,
    load_torchscript,
    read_onnx_card,
    read_torchscript_card,
)
from lungus.models.weights import InitReport, load_init_weights, load_pretrained

__all__ = [
    "CLASSIFIER",
    "FORMAT_VERSION",
    "IMAGENET_GRAY",
    "KINETICS_GRAY",
    "MODEL_REGISTRY",
    "SEGMENTER",
    "TASKS",
    "InferenceModel",
    "InitReport",
    "LoadedModel",
    "ModelCard",
    "ModelSource",
    "ModelSpec",
    "OnnxModel",
    "OpenedModel",
    "Segmenter",
    "VideoClassifier",
    "architecture",
    "available_models",
    "build_from_architecture",
    "build_model",
    "describe_model",
    "export_onnx",
    "export_torchscript",
    "file_kind",
    "get_spec",
    "grad_cam",
    "load_init_weights",
    "load_model_file",
    "load_for_inference",
    "load_onnx",
    "load_pretrained",
    "load_torchscript",
    "normalise_frames",
    "open_model",
    "parse_arch_args",
    "read_card",
    "register_model",
    "read_onnx_card",
    "read_torchscript_card",
    "save_model_file",
    "software_versions",
    "task_class_names",
    "utc_now",
]
