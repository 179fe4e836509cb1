"""Clip classifiers and frame segmenters by name, model files with cards, and export.

>>> from lungus.models import build_model, available_models
>>> model = build_model("frame_cnn", num_classes=2, width=16)

Classifiers take (B, 1, T, H, W) normalised grayscale clips and return logits (B, K);
segmenters take (B, 1, H, W) frames and return logits (B, 6, H, W). Normalisation is
``(uint8 / 255 - mean) / std`` with mean/std from the model card (``normalise_frames``).
"""

from lungus.models.base import Segmenter, VideoClassifier
from lungus.models.explain import grad_cam
from lungus.models.export import (
    InferenceModel,
    OnnxModel,
    export_onnx,
    export_torchscript,
    load_for_inference,
    load_onnx,
    load_torchscript,
    read_onnx_card,
    read_torchscript_card,
)
from lungus.models.model_file import (
    FORMAT_VERSION,
    TASKS,
    LoadedModel,
    ModelCard,
    load_model_file,
    read_card,
    save_model_file,
    software_versions,
    task_class_names,
    utc_now,
)
from lungus.models.preprocessing import IMAGENET_GRAY, KINETICS_GRAY, normalise_frames
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
    "ModelSpec",
    "OnnxModel",
    "Segmenter",
    "VideoClassifier",
    "architecture",
    "available_models",
    "build_from_architecture",
    "build_model",
    "describe_model",
    "export_onnx",
    "export_torchscript",
    "get_spec",
    "grad_cam",
    "load_init_weights",
    "load_model_file",
    "load_for_inference",
    "load_onnx",
    "load_pretrained",
    "load_torchscript",
    "normalise_frames",
    "parse_arch_args",
    "read_card",
    "read_onnx_card",
    "read_torchscript_card",
    "save_model_file",
    "software_versions",
    "task_class_names",
    "utc_now",
]
