"""Losses: soft-target cross-entropy (crowd distributions), SORD for ordinal scores, Dice + CE, and the
contrastive NT-Xent of self-supervised pretraining."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lungus.data.labels.annotation_labels import IGNORE_INDEX
from lungus.data.labels.schemes import B_LINE, CONFLUENT


def sord_targets(labels: Tensor, n_classes: int, alpha: float = 2.0) -> Tensor:
    """Soft ordinal targets of Diaz & Marathe 2019 (SORD), as Roy et al. 2020 used for LUS scores.

    Each true score r gets the distribution softmax(-alpha * (k - r)^2) over classes k, so a
    prediction one grade off costs less than one three grades off.
    """
    grades = torch.arange(n_classes, device=labels.device, dtype=torch.float32)
    distance = (grades[None, :] - labels.float()[:, None]) ** 2
    return torch.softmax(-alpha * distance, dim=1)


def expected_grade_targets(targets: Tensor, alpha: float = 2.0) -> Tensor:
    """SORD targets from soft targets: the distribution around each target's expected grade."""
    n_classes = targets.shape[1]
    grades = torch.arange(n_classes, device=targets.device, dtype=torch.float32)
    expected = (targets * grades).sum(dim=1)
    return torch.softmax(-alpha * (grades[None, :] - expected[:, None]) ** 2, dim=1)


class ClipLoss(nn.Module):
    """Cross-entropy against (B, K) target distributions.

    Hard labels arrive one-hot, crowd-soft labels as opinion distributions; with
    ``ordinal=True`` targets become SORD distributions around their expected grade.
    ``class_weights`` counter class imbalance (torch weights each target class).
    """

    def __init__(self, class_weights: Tensor | None = None, ordinal: bool = False, sord_alpha: float = 2.0,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights if class_weights is not None else None)
        self.ordinal = ordinal
        self.sord_alpha = sord_alpha
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        if self.ordinal:
            targets = expected_grade_targets(targets, self.sord_alpha)
        return F.cross_entropy(logits.float(), targets, weight=self.class_weights,
                               label_smoothing=self.label_smoothing)


class DiceCELoss(nn.Module):
    """Cross-entropy plus soft multi-class Dice, for frame segmentation.

    CE alone under-weights thin structures (a B-line is a few percent of the pixels);
    the Dice term scores each class by overlap regardless of its size. Background is one of
    those classes by default: left out, nothing in the Dice term resists growing the
    foreground, and segmenters trained so drew confluent B-lines too wide (on held-out
    simulated patients the B-line count error fell by a quarter with background in).

    Pixels labelled ``ignore_index`` (255) count in neither term. ``label_classes`` are the
    classes the labels can show (default: all): a label source that never draws some classes
    (AnnotateUltrasound draws pleura and B-lines, no A-lines or rib shadows) would otherwise
    teach the model that they are background. The loss then sees only those classes' logits
    (softmax over the subset), so the other classes get no gradient at all.

    Pixels with a weak label (clip labels, lungus.data.labels.weak_masks) count in neither term
    but in :class:`WeakBLineLoss`, weighted ``weak_weight``.
    """

    def __init__(self, n_classes: int, dice_weight: float = 1.0, class_weights: Tensor | None = None,
                 ignore_background_in_dice: bool = False, ignore_index: int = IGNORE_INDEX,
                 label_classes: Sequence[int] | None = None, weak_weight: float = 1.0,
                 weak_class_weights: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.weak = (WeakBLineLoss(class_weights=weak_class_weights)
                     if weak_weight > 0 and n_classes > CONFLUENT else None)
        self.weak_weight = weak_weight
        classes = list(range(n_classes)) if label_classes is None else sorted({int(c) for c in label_classes})
        if not classes or classes[0] < 0 or classes[-1] >= n_classes or len(classes) < 2:
            raise ValueError(f"label_classes must be two or more class ids in 0..{n_classes - 1}, got {label_classes}")
        if not 0 <= ignore_index <= 255 or ignore_index in classes:
            raise ValueError(f"ignore_index must be a value in 0..255 that is not a class id, got {ignore_index}")
        self.n_classes = n_classes
        self.dice_weight = dice_weight
        self.ignore_index = ignore_index
        self.label_classes = tuple(classes)
        self.first_dice_class = 1 if (ignore_background_in_dice and classes[0] == 0) else 0
        # Mask value -> position among label_classes; every other value is ignored.
        lookup = torch.full((256,), ignore_index, dtype=torch.long)
        lookup[torch.tensor(classes)] = torch.arange(len(classes))
        self.register_buffer("lookup", lookup, persistent=False)
        self.register_buffer("subset", torch.tensor(classes), persistent=False)
        if class_weights is not None and class_weights.numel() == n_classes:
            class_weights = class_weights[self.subset]
        self.register_buffer("class_weights", class_weights if class_weights is not None else None)

    def forward(self, logits: Tensor, masks: Tensor) -> Tensor:
        logits = logits.float()
        weak = 0.0
        if self.weak is not None:
            weak = self.weak_weight * self.weak(logits, masks)  # over all classes: B-line vs the rest
        return weak + self.dense(logits, masks)

    def dense(self, logits: Tensor, masks: Tensor) -> Tensor:
        """Cross-entropy + Dice over the pixels labelled with a class."""
        if len(self.label_classes) < self.n_classes:
            logits = logits.index_select(1, self.subset)
        target = self.lookup[masks.long().clamp(0, 255)]
        valid = target != self.ignore_index
        if not bool(valid.any()):
            return logits.sum() * 0.0  # nothing labelled in this batch: no gradient, no NaN
        ce = F.cross_entropy(logits, target, weight=self.class_weights, ignore_index=self.ignore_index)
        k = logits.shape[1]
        probabilities = logits.softmax(dim=1) * valid.unsqueeze(1)
        one_hot = F.one_hot(torch.where(valid, target, 0), k).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
        dims = (0, 2, 3)
        overlap = (probabilities * one_hot).sum(dims)
        total = probabilities.sum(dims) + one_hot.sum(dims)
        dice = (2 * overlap + 1.0) / (total + 1.0)
        dice_loss = 1.0 - dice[self.first_dice_class:].mean()
        return ce + self.dice_weight * dice_loss


class WeakBLineLoss(nn.Module):
    """What clip labels say about a frame's pixels (lungus.data.labels.weak_masks), as a loss.

    With q the predicted probability of B-line (discrete or confluent) at each pixel:

    - a frame of a clip **without** B-lines (pixels NOT_BLINE) has none anywhere: the binary
      cross-entropy -log(1 - q) over its ``top_share`` most B-line-like such pixels (the hard
      negatives; the mean over all pixels would be dominated by the easy dark ones);
    - a frame of a clip **with** B-lines (pixels BLINES_SOMEWHERE) has some: multiple-instance
      learning, -log of the mean q over its ``top_share`` most B-line-like such pixels, so the
      model must put B-line probability somewhere, and is free to choose where.

    ``top_share`` (1 %) is about one thin B-line's share of a frame. The loss is the mean over
    the frames that carry weak labels, each frame weighted by ``class_weights`` (without B-lines,
    with B-lines; default equal); 0 without any. A frame's weak pixels are all of one kind.
    """

    def __init__(self, top_share: float = 0.01, eps: float = 1e-6,
                 class_weights: tuple[float, float] | None = None) -> None:
        super().__init__()
        if not 0 < top_share <= 1:
            raise ValueError(f"top_share must be in (0, 1], got {top_share}")
        weights = (1.0, 1.0) if class_weights is None else tuple(float(w) for w in class_weights)
        if len(weights) != 2 or min(weights) <= 0:
            raise ValueError(f"class_weights must be two weights > 0, got {class_weights}")
        self.top_share = top_share
        self.eps = eps
        self.class_weights = weights

    def forward(self, logits: Tensor, masks: Tensor) -> Tensor:
        from lungus.data.labels.weak_masks import BLINES_SOMEWHERE, NOT_BLINE

        masks = masks.to(logits.device)
        negative = masks == NOT_BLINE
        positive = masks == BLINES_SOMEWHERE
        frame_negative = negative.flatten(1).any(1)
        frame_positive = positive.flatten(1).any(1)
        if not bool((frame_negative | frame_positive).any()):
            return logits.sum() * 0.0
        q = logits.float().softmax(dim=1)[:, [B_LINE, CONFLUENT]].sum(dim=1)  # (B, H, W)
        weak = (negative | positive).flatten(1)
        k = max(1, int(round(self.top_share * weak.shape[1])))
        # Pixels without a weak label rank last (-1), so each frame's top k are its own weak pixels.
        top = torch.where(weak, q.flatten(1), torch.full_like(q.flatten(1), -1.0)).topk(k, dim=1).values
        counted = (top >= 0).float()
        top = top.clamp_min(0.0)
        n = counted.sum(1).clamp_min(1.0)
        negative_loss = -(torch.log1p(-top.clamp(max=1 - self.eps)) * counted).sum(1) / n
        positive_loss = -torch.log(((top * counted).sum(1) / n).clamp_min(self.eps))
        per_frame = torch.where(frame_negative, negative_loss, positive_loss)
        weight = torch.where(frame_negative, self.class_weights[0], self.class_weights[1])
        weak = frame_negative | frame_positive
        return (per_frame * weight)[weak].sum() / weight[weak].sum()


def balanced_weak_weights(labels: Sequence[int]) -> tuple[float, float] | None:
    """Inverse-frequency weights (without B-lines, with B-lines) of the weakly labelled clips'
    labels (1/0), as balanced_class_weights; None unless both occur."""
    counts = [sum(1 for y in labels if y == value) for value in (0, 1)]
    if min(counts) == 0:
        return None
    return tuple(sum(counts) / (2 * c) for c in counts)


def balanced_class_weights(targets: Tensor) -> Tensor:
    """Inverse-frequency weights (scikit-learn's 'balanced'): n / (K * count_k), from (N, K) targets."""
    counts = targets.float().sum(dim=0).clamp_min(1e-6)
    return counts.sum() / (targets.shape[1] * counts)


class NTXentLoss(nn.Module):
    """SimCLR's normalised-temperature cross-entropy (Chen et al. 2020) over two views of B items.

    ``first`` and ``second`` are (B, D) unit vectors, row i of each a view of item i. Each of the
    2B vectors must pick its partner among the other 2B - 1 at similarity / ``temperature``.
    ``groups`` (B,) ints: items of one group (one patient's clips) are not each other's negatives;
    they are left out of each other's denominator, neither pulled together nor pushed apart.
    """

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, first: Tensor, second: Tensor, groups: Tensor | None = None) -> Tensor:
        views = torch.cat([first, second]).float()
        batch = first.shape[0]
        logits = views @ views.T / self.temperature
        items = torch.arange(batch, device=views.device).repeat(2)
        owners = items if groups is None else groups.to(views.device).repeat(2)
        partner = torch.cat([items[batch:] + batch, items[:batch]])
        excluded = owners[:, None] == owners[None, :]  # itself and its group: not a negative
        excluded[torch.arange(2 * batch, device=views.device), partner] = False
        return F.cross_entropy(logits.masked_fill(excluded, float("-inf")), partner)
