"""A classifier's operating point (docs/evaluation.md#operating-points): how its clip
probabilities become a decision, as its model card records it.

A model trained with class weights on a balanced loss ranks clips well, but p = 0.5 is rarely
the right place to cut: on COVID-BLUES it called most clips without B-lines positive. So the
card carries a threshold chosen on clips the model did not train on (its validation split, or
the out-of-fold predictions of a cross-validation; :mod:`lungus.evaluate.operating_points`
chooses it), and optionally a recalibration of the probabilities fitted on the same clips.

The threshold applies to the B-line score, P(B-lines) = 1 - P(first class): every label scheme
puts "no B-lines" first. At or above it the decision is the likeliest B-line class, below it
the first class. A card without an operating point (older files, or a run with no held-out
clips) decides by the largest probability, as before. Pure numpy: Slicer's console and the
bridges read it without torch.

Threshold rules (``lungus train --threshold-rule``; chosen by lungus.evaluate.operating_points):

- ``youden``: the threshold that maximises Youden's J = sensitivity + specificity - 1 (the
  default: it weighs a missed B-line clip and a false alarm alike, as balanced accuracy does);
- ``sensitivity:0.9``: the highest threshold that still finds 90 % of the B-line clips;
- ``specificity:0.9``: the lowest threshold that still clears 90 % of the clips without;
- ``fixed:0.5``: a threshold the user sets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: How probabilities may be recalibrated: not at all, one temperature on their logarithms (keeps
#: every ranking inside a model), or an isotonic (monotone, piecewise-linear) map of the B-line score.
CALIBRATIONS = ("none", "temperature", "isotonic")
#: How a threshold may be chosen (F: a fraction in (0, 1)); see the module's docstring.
THRESHOLD_RULES = ("youden", "sensitivity:F", "specificity:F", "fixed:F")
DEFAULT_THRESHOLD_RULE = "youden"


def parse_threshold_rule(rule: str) -> tuple[str, float | None]:
    """("youden", None), ("sensitivity", 0.9), ...; ValueError saying how to write a rule."""
    name, _, value = str(rule).strip().partition(":")
    if name == "youden" and not value:
        return name, None
    if name in ("sensitivity", "specificity", "fixed") and value:
        try:
            number = float(value)
        except ValueError:
            number = float("nan")  # not a number: refused below, with how to write one
        if 0 < number < 1:
            return name, number
    raise ValueError(f"threshold rule {rule!r} must be youden, sensitivity:F, specificity:F or fixed:F "
                     "with F in (0, 1), e.g. sensitivity:0.9")


def threshold_rule_problem(rule: str) -> str | None:
    """What is wrong with a rule (for TrainConfig's check), or None."""
    try:
        parse_threshold_rule(rule)
    except ValueError as error:
        return str(error).removeprefix(f"threshold rule {rule!r} ")
    return None


#: The most isotonic breakpoints a card may hold (one per distinct fitted score at most; a few
#: hundred in practice): a bound, so a damaged card cannot ask for gigabytes.
MAX_BREAKPOINTS = 10_000


def _probability(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1 or math.isnan(value):
        raise ValueError(f"card operating_point.{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class OperatingPoint:
    """Where a classifier cuts its B-line score, and how its probabilities are recalibrated first.

    - ``threshold``: the decision threshold on the (recalibrated) B-line score;
    - ``calibration``: ``none``, ``temperature`` (``temperature``: log-probabilities divided by it,
      then renormalised) or ``isotonic`` (the B-line score mapped through the piecewise-linear
      ``isotonic_x`` -> ``isotonic_y``; the B-line classes keep their shares of it);
    - ``rule``: how the threshold was chosen (``youden``, ``sensitivity:0.9``, ``specificity:0.9``,
      ``fixed:0.5``), and ``chosen_on``: on which clips (for people reading the card);
    - ``fitted``: what the choice saw on those clips (clips, sensitivity, specificity, ECE before
      and after recalibration).
    """

    threshold: float = 0.5
    calibration: str = "none"
    temperature: float = 1.0
    isotonic_x: tuple[float, ...] = ()
    isotonic_y: tuple[float, ...] = ()
    rule: str = ""
    chosen_on: str = ""
    fitted: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _probability(self.threshold, "threshold")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"card operating_point.calibration {self.calibration!r} is not one of "
                             f"{', '.join(CALIBRATIONS)}")
        if (isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float))
                or not 1e-3 <= self.temperature <= 1e3):
            raise ValueError(f"card operating_point.temperature must be a number in [0.001, 1000], "
                             f"got {self.temperature!r}")
        x, y = self.isotonic_x, self.isotonic_y
        if self.calibration == "isotonic":
            if not (2 <= len(x) == len(y) <= MAX_BREAKPOINTS):
                raise ValueError("card operating_point isotonic_x and isotonic_y must be lists of the same length "
                                 f"(2 to {MAX_BREAKPOINTS:,} breakpoints)")
            xs = [_probability(v, "isotonic_x") for v in x]
            ys = [_probability(v, "isotonic_y") for v in y]
            if any(b < a for a, b in zip(xs, xs[1:])) or any(b < a for a, b in zip(ys, ys[1:])):
                raise ValueError("card operating_point isotonic_x and isotonic_y must both be non-decreasing")
            object.__setattr__(self, "isotonic_x", tuple(xs))
            object.__setattr__(self, "isotonic_y", tuple(ys))
        for name in ("rule", "chosen_on"):
            if not isinstance(getattr(self, name), str) or len(getattr(self, name)) > 500:
                raise ValueError(f"card operating_point.{name} must be a short text")
        if self.fitted is not None and not isinstance(self.fitted, Mapping):
            raise ValueError("card operating_point.fitted must be a mapping")
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "temperature", float(self.temperature))

    # ------------------------------------------------------------------ card
    @classmethod
    def from_card_field(cls, data: Any) -> OperatingPoint | None:
        """The operating point a card's ``operating_point`` field holds; None for an empty field
        (decide by the largest probability). ValueError saying what is wrong."""
        if data in (None, {}):
            return None
        if not isinstance(data, Mapping):
            raise ValueError(f"card operating_point must be a mapping, got {type(data).__name__}")
        known = {name for name in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"card operating_point has unknown field {unknown[0]!r}; its fields are "
                             f"{', '.join(sorted(known))}")
        values = dict(data)
        for name in ("isotonic_x", "isotonic_y"):
            if name in values:
                if not isinstance(values[name], (list, tuple)):
                    raise ValueError(f"card operating_point.{name} must be a list")
                values[name] = tuple(values[name])
        return cls(**values)

    def to_card_field(self) -> dict[str, Any]:
        data = asdict(self)
        data["isotonic_x"], data["isotonic_y"] = list(self.isotonic_x), list(self.isotonic_y)
        data["fitted"] = dict(self.fitted or {})
        return data

    def describe(self) -> str:
        """One line for people: "threshold 0.62 on P(B-lines) (youden, on 36 validation clips)"."""
        how = ", ".join(part for part in (self.rule, self.chosen_on) if part)
        calibrated = "" if self.calibration == "none" else f", {self.calibration}-recalibrated"
        return f"threshold {self.threshold:.3g} on P(B-lines){calibrated}" + (f" ({how})" if how else "")

    # ------------------------------------------------------------------ use
    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """(N, K) or (K,) class probabilities, recalibrated as the card says (a copy)."""
        p = np.asarray(probabilities, dtype=np.float64)
        if self.calibration == "temperature" and self.temperature != 1.0:
            logp = np.log(np.clip(p, 1e-12, 1.0)) / self.temperature
            logp -= logp.max(axis=-1, keepdims=True)
            scaled = np.exp(logp)
            return scaled / scaled.sum(axis=-1, keepdims=True)
        if self.calibration == "isotonic":
            score = bline_score(p)
            mapped = np.interp(score, self.isotonic_x, self.isotonic_y)
            return with_bline_score(p, mapped)
        return p.copy()

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Class index per row of (already recalibrated) (N, K) probabilities: the likeliest
        B-line class where the B-line score reaches the threshold, else the first class."""
        p = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
        positive = bline_score(p) >= self.threshold
        return np.where(positive, 1 + np.argmax(p[:, 1:], axis=1), 0)


def bline_score(probabilities: np.ndarray) -> np.ndarray:
    """P(B-lines) = 1 - P(first class) of (..., K) probabilities."""
    return 1.0 - np.asarray(probabilities, dtype=np.float64)[..., 0]


def with_bline_score(probabilities: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``probabilities`` with their B-line score set to ``score``: the first class takes 1 - score,
    the B-line classes keep their shares of it (equal shares where they had none)."""
    p = np.asarray(probabilities, dtype=np.float64)
    out = np.empty_like(p)
    out[..., 0] = 1.0 - score
    rest = p[..., 1:]
    total = rest.sum(axis=-1, keepdims=True)
    shares = np.divide(rest, total, out=np.full_like(rest, 1.0 / rest.shape[-1]), where=total > 0)
    out[..., 1:] = shares * np.asarray(score)[..., None]
    return out


def decide(probabilities: np.ndarray, operating_point: OperatingPoint | None) -> np.ndarray:
    """Class index per row: by ``operating_point``, or the largest probability without one."""
    p = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    return p.argmax(axis=1) if operating_point is None else operating_point.decide(p)
