"""A frame classifier on fused deep features: the interstitial-syndrome study's method as a model file.

Each frame goes through one or more trained 2-D frame encoders (lungus.models.frame_encoder);
their globally averaged maps are concatenated ("fused"), standardised, and classified by a
classical classifier fitted with scikit-learn (lungus.train.fusion). The fitted classifier is
stored as tensors, never pickled, and evaluated here in float64 exactly as scikit-learn's
``predict_proba`` does (docs/frame-fusion.md#model):

- ``logreg``: logistic regression, its coefficients and intercepts;
- ``svm``: an RBF support-vector machine with Platt scaling (two-class tasks), its support
  vectors, dual coefficients, intercept, gamma and the sigmoid's two parameters;
- ``rf``: a random forest, and ``gbm``: gradient boosting, their trees as node arrays (feature,
  threshold, children, leaf values) walked level by level.

``forward`` takes the standard classifier input (B, 1, T, H, W): for a frame-level model T is 1
(card ``frames`` 1, ``eval_stride`` 1), so the predictor's windows are frames and the card's clip
rule (lungus.clip_rules) makes the clip's answer. Given T > 1 frames it returns the log of their
mean probability.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lungus.models.base import VideoClassifier, check_video_input
from lungus.models.frame_encoder import BACKBONES, build_frame_encoder
from lungus.models.normalisation import check_normalisation
from lungus.models.registry import CLASSIFIER, Arg, register_model

FUSION = "fusion"
CLASSIFIERS = ("logreg", "svm", "rf", "gbm")
#: The most trees and nodes per tree a card may ask for (far above scikit-learn's defaults: 100 trees).
MAX_TREES, MAX_NODES, MAX_DEPTH = 5000, 1 << 20, 200
#: Probabilities are floored here before their log is taken, so a tree's 0 stays a finite logit.
MIN_PROBABILITY = 1e-12


def frame_features(encoder: nn.Module, frames: Tensor) -> Tensor:
    """(N, 1, H, W) normalised frames -> (N, D) float32 features: the encoder's maps averaged over
    space, as frame_cnn embeds a frame. Feature extraction and the fusion model both call this."""
    return encoder(frames).float().mean(dim=(2, 3))


def backbone_problem(backbone: Any) -> str | None:
    """Why ``backbone`` is not ``{"name", "backbone", "width", "blocks", "norm", "normalisation"}``, or None."""
    if not isinstance(backbone, dict):
        return f"backbone {backbone!r} must be a mapping"
    if backbone.get("backbone") not in BACKBONES:
        return f"backbone {backbone.get('backbone')!r} is not one of {', '.join(BACKBONES)}"
    for key, low, high in (("width", 4, 256), ("blocks", 1, 4)):
        value = backbone.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"backbone {key} must be a whole number from {low} to {high}, got {value!r}"
    if backbone.get("norm") not in ("batch", "group", "none"):
        return f"backbone norm {backbone.get('norm')!r} is not batch, group or none"
    if not isinstance(backbone.get("name"), str):
        return "every backbone needs a name"
    try:
        check_normalisation(backbone.get("normalisation"))
    except ValueError as error:
        return f"backbone {backbone['name']}: {error}"
    return None


def head_problem(head: Any) -> str | None:
    """Why ``head`` is not a classifier description this module can rebuild, or None."""
    if not isinstance(head, dict) or head.get("kind") not in CLASSIFIERS:
        return f"head must be a mapping whose kind is one of {', '.join(CLASSIFIERS)}, got {head!r}"
    sizes = {"svm": (("support_vectors", 1, 1 << 20),),
             "rf": (("trees", 1, MAX_TREES), ("nodes", 1, MAX_NODES), ("depth", 0, MAX_DEPTH)),
             "gbm": (("trees", 1, MAX_TREES), ("nodes", 1, MAX_NODES), ("depth", 0, MAX_DEPTH))}
    for key, low, high in sizes.get(head["kind"], ()):
        value = head.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"head {key} must be a whole number from {low} to {high}, got {value!r}"
    return None


def _check_args(args: dict) -> str | None:
    backbones = args["backbones"]
    if not isinstance(backbones, list) or not 1 <= len(backbones) <= 8:
        return "backbones must list 1 to 8 frame encoders"
    for backbone in backbones:
        problem = backbone_problem(backbone)
        if problem:
            return problem
    return head_problem(args["head"])


def _outputs(kind: str, num_classes: int) -> int:
    """Columns of the fitted classifier's raw output: one for two-class linear and boosted models."""
    if kind == "rf":
        return num_classes
    return 1 if num_classes == 2 else num_classes


class LinearHead(nn.Module):
    """Logistic regression: sigmoid of one score (two classes) or softmax of one per class."""

    def __init__(self, features: int, outputs: int) -> None:
        super().__init__()
        self.register_buffer("coef", torch.zeros(outputs, features, dtype=torch.float64))
        self.register_buffer("intercept", torch.zeros(outputs, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return _link(x @ self.coef.T + self.intercept)


class RbfSvmHead(nn.Module):
    """A two-class RBF SVM with Platt scaling (scikit-learn's CalibratedClassifierCV, sigmoid):
    P(second class) = 1 / (1 + exp(a f + b)) for the SVM's decision value f."""

    def __init__(self, features: int, support_vectors: int) -> None:
        super().__init__()
        self.register_buffer("support_vectors", torch.zeros(support_vectors, features, dtype=torch.float64))
        self.register_buffer("dual_coef", torch.zeros(support_vectors, dtype=torch.float64))
        self.register_buffer("intercept", torch.zeros((), dtype=torch.float64))
        self.register_buffer("gamma", torch.ones((), dtype=torch.float64))
        self.register_buffer("sigmoid_a", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sigmoid_b", torch.zeros((), dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        distance = ((x[:, None, :] - self.support_vectors[None]) ** 2).sum(dim=-1)
        decision = torch.exp(-self.gamma * distance) @ self.dual_coef + self.intercept
        positive = torch.sigmoid(-(self.sigmoid_a * decision + self.sigmoid_b))
        return torch.stack([1 - positive, positive], dim=1)


class TreeEnsembleHead(nn.Module):
    """Decision trees as padded node arrays. ``rf``: the mean of the trees' leaf class shares;
    ``gbm``: ``init`` plus the sum of the trees' (learning-rate-scaled) leaf values, through
    the sigmoid (two classes) or softmax. A leaf points to itself, so walking ``depth`` levels
    lands every sample on its leaf. Features are compared in float32, as scikit-learn does."""

    def __init__(self, kind: str, trees: int, nodes: int, depth: int, outputs: int) -> None:
        super().__init__()
        self.kind, self.depth = kind, depth
        self.register_buffer("feature", torch.zeros(trees, nodes, dtype=torch.int64))
        self.register_buffer("threshold", torch.zeros(trees, nodes, dtype=torch.float64))
        self.register_buffer("left", torch.zeros(trees, nodes, dtype=torch.int64))
        self.register_buffer("right", torch.zeros(trees, nodes, dtype=torch.int64))
        self.register_buffer("value", torch.zeros(trees, nodes, outputs, dtype=torch.float64))
        self.register_buffer("init", torch.zeros(outputs, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        x = x.float().double()
        trees = torch.arange(self.feature.shape[0], device=x.device)[None, :]
        node = torch.zeros((x.shape[0], self.feature.shape[0]), dtype=torch.int64, device=x.device)
        for _ in range(self.depth):
            go_left = torch.gather(x, 1, self.feature[trees, node]) <= self.threshold[trees, node]
            node = torch.where(go_left, self.left[trees, node], self.right[trees, node])
        leaves = self.value[trees, node]  # (N, trees, outputs)
        if self.kind == "rf":
            return leaves.sum(dim=1) / self.feature.shape[0]
        return _link(self.init + leaves.sum(dim=1))


def _link(scores: Tensor) -> Tensor:
    """Class probabilities from raw scores: one score -> [1 - sigmoid, sigmoid]; several -> softmax."""
    if scores.shape[1] == 1:
        positive = torch.sigmoid(scores[:, 0])
        return torch.stack([1 - positive, positive], dim=1)
    return scores.softmax(dim=1)


def build_head(head: dict[str, Any], features: int, num_classes: int) -> nn.Module:
    kind = head["kind"]
    if kind == "logreg":
        return LinearHead(features, _outputs(kind, num_classes))
    if kind == "svm":
        if num_classes != 2:
            raise ValueError("the svm classifier is for two-class tasks (bline2); use logreg, rf or gbm")
        return RbfSvmHead(features, head["support_vectors"])
    return TreeEnsembleHead(kind, head["trees"], head["nodes"], head["depth"], _outputs(kind, num_classes))


class FusedFrameClassifier(VideoClassifier):
    """Frame encoders -> concatenated features -> standardised -> a fitted classical classifier."""

    def __init__(self, num_classes: int, backbones: list[dict[str, Any]], head: dict[str, Any],
                 input_normalisation: dict[str, float] | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.encoders = nn.ModuleList(
            build_frame_encoder(b["backbone"], b["width"], b["blocks"], b["norm"]) for b in backbones
        )
        self.normalisations = [check_normalisation(b["normalisation"]) for b in backbones]
        # The model's input is normalised as the card says (the first backbone's normalisation);
        # each other backbone sees its frames re-normalised to what it was trained with.
        self.input_normalisation = check_normalisation(input_normalisation or backbones[0]["normalisation"])
        features = sum(encoder.out_channels for encoder in self.encoders)
        self.register_buffer("feature_mean", torch.zeros(features, dtype=torch.float64))
        self.register_buffer("feature_scale", torch.ones(features, dtype=torch.float64))
        self.head = build_head(head, features, num_classes)

    def _backbone_input(self, frames: Tensor, index: int) -> Tensor:
        own, given = self.normalisations[index], self.input_normalisation
        if own == given:
            return frames
        return (frames * given["std"] + given["mean"] - own["mean"]) / own["std"]

    def fused_features(self, frames: Tensor) -> Tensor:
        """(N, 1, H, W) normalised frames -> (N, D) float32 fused features (before standardising)."""
        return torch.cat([frame_features(encoder, self._backbone_input(frames, i))
                          for i, encoder in enumerate(self.encoders)], dim=1)

    def classify_features(self, features: Tensor) -> Tensor:
        """(N, D) fused features -> (N, K) float64 class probabilities, as scikit-learn's predict_proba."""
        return self.head((features.double() - self.feature_mean) / self.feature_scale)

    def _frame_probabilities(self, x: Tensor) -> Tensor:
        check_video_input(x)
        b, _, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, 1, h, w)
        return self.classify_features(self.fused_features(frames)).reshape(b, t, -1)

    def forward(self, x: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        if frame_mask is not None:
            raise ValueError("the fusion model scores frames one by one; pass no frame_mask")
        probabilities = self._frame_probabilities(x).mean(dim=1)
        return probabilities.clamp_min(MIN_PROBABILITY).log().float()

    def explain(self, x: Tensor, frame_mask: Tensor | None = None) -> dict[str, Tensor]:
        frame_probabilities = self._frame_probabilities(x)
        t = frame_probabilities.shape[1]
        return {
            "logits": frame_probabilities.mean(dim=1).clamp_min(MIN_PROBABILITY).log().float(),
            "frame_logits": frame_probabilities.clamp_min(MIN_PROBABILITY).log().float(),
            "frame_weights": torch.full(frame_probabilities.shape[:2], 1.0 / t, device=x.device),
        }

    def gradcam_layer(self) -> nn.Module:
        # Grad-CAM needs a gradient: the linear and SVM heads give one; trees give none (blank maps).
        return self.encoders[0].cam_layer()


@register_model(
    FUSION,
    kind=CLASSIFIER,
    summary="frame classifier on fused deep features of trained frame encoders, classified by logistic "
    "regression, an SVM, a random forest or gradient boosting (lungus train --model fusion)",
    args=(
        Arg("backbones", [], "the frame encoders: {name, backbone, width, blocks, norm, normalisation} each", list),
        Arg("head", {"kind": "logreg"}, "the fitted classifier: {kind, and its sizes}", dict),
    ),
    recommended_input={"size": [96, 96], "frames": 1},
    cross_check=_check_args,
    trainable=False,
)
def build_fusion(num_classes: int, backbones: list[dict[str, Any]], head: dict[str, Any]) -> FusedFrameClassifier:
    """The registry's factory: encoders and classifier of these shapes, weights to be loaded."""
    return FusedFrameClassifier(num_classes, backbones, head)
