"""Simulated raters: a crowd with spammers and uneven workloads, and a few biased experts.

Every rater answers in the bline3 scheme (none / discrete / confluent). Each one has a
3x3 confusion matrix ``C[true, given]`` whose errors fall mostly on the adjacent class
(none <-> discrete <-> confluent), the way real readers confuse "a few B-lines" with
"none" or with "white lung". Crowd workloads are heavy-tailed (a few raters label many
clips, most label few). Spammers answer at random or always give the same answer.
Experts make fewer mistakes but each leans a different way, so they disagree with each
other. Patients differ in how hard their clips are to read: a per-patient hardness pushes
every reader's answers toward the adjacent class on that patient's clips, so the errors
of different readers are correlated, as they are in practice.

The simulator calls :func:`simulate_raters` to fill the ``crowd_*`` and ``expert_<name>``
manifest columns and the long-format ``opinions.csv``; tests use the per-rater truth
(``rater_accuracy``, ``rater_confusion``) to check that Dawid-Skene recovers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lungus.data.labels.schemes import CROWD_COLUMNS, LABEL_SCHEMES, normalise_label

CLASSES: tuple[str, ...] = LABEL_SCHEMES["bline3"]
N_CLASSES = len(CLASSES)

# Where a reader's mistakes go: row = true class, columns = wrong answers (diagonal unused).
# none and confluent are mistaken almost only for discrete; discrete goes either way.
_ADJACENT_ERRORS = np.array(
    [
        [0.0, 0.92, 0.08],
        [0.5, 0.0, 0.5],
        [0.08, 0.92, 0.0],
    ]
)


@dataclass(frozen=True)
class ExpertSpec:
    """One simulated expert.

    ``accuracy`` is the chance of the right answer on an ordinary clip. ``over_calls``
    names the bline3 class this expert leans toward (None: no lean); ``lean`` is how
    much probability moves from the right answer of each adjacent class to that class.
    """

    name: str
    accuracy: float = 0.9
    over_calls: str | None = None
    lean: float = 0.06


DEFAULT_EXPERTS: tuple[ExpertSpec, ...] = (
    ExpertSpec("a", accuracy=0.95, over_calls="discrete"),
    ExpertSpec("b", accuracy=0.94, over_calls="none"),
    ExpertSpec("c", accuracy=0.95, over_calls="confluent"),
)


@dataclass(frozen=True)
class RaterConfig:
    """How the simulated crowd and experts behave.

    n_crowd: crowd raters, spammers included.
    opinions_per_clip: crowd opinions each clip gets, from distinct raters.
    spammer_share: fraction of the crowd that are spammers (half answer at random,
        half always give one answer of their own).
    skill_alpha, skill_beta: Beta distribution of a genuine crowd rater's accuracy
        (mean alpha / (alpha + beta)); drawn values are clipped to skill_range.
    class_skill_sd: per-class spread of a rater's accuracy around their own mean.
    workload_sigma: log-normal sigma of the rater workloads; 0 gives equal workloads,
        1 gives a few raters with many clips and a long tail with few.
    patient_hardness: each patient gets a hardness h ~ U(0, patient_hardness); on their
        clips every reader's answer moves to the adjacent class with extra chance h.
    experts: the expert panel.
    noisy_expert_accuracy: if not None, add an unbiased expert called ``noisy_expert_name``
        with this accuracy (the demo trains on it to compare with crowd labels).
    """

    n_crowd: int = 60
    opinions_per_clip: int = 10
    spammer_share: float = 0.1
    skill_alpha: float = 7.0
    skill_beta: float = 2.5
    skill_range: tuple[float, float] = (0.45, 0.97)
    class_skill_sd: float = 0.05
    workload_sigma: float = 1.0
    patient_hardness: float = 0.1
    experts: tuple[ExpertSpec, ...] = DEFAULT_EXPERTS
    noisy_expert_accuracy: float | None = 0.65
    noisy_expert_name: str = "noisy"

    def validate(self) -> None:
        """Raise ValueError naming the first parameter out of range and what it must be."""
        if self.n_crowd < 1:
            raise ValueError(f"n_crowd must be at least 1, got {self.n_crowd}")
        if not 1 <= self.opinions_per_clip <= self.n_crowd:
            raise ValueError(
                f"opinions_per_clip must be between 1 and n_crowd ({self.n_crowd}), got {self.opinions_per_clip}"
            )
        if not 0.0 <= self.spammer_share < 1.0:
            raise ValueError(f"spammer_share must be in [0, 1), got {self.spammer_share}")
        if self.skill_alpha <= 0 or self.skill_beta <= 0:
            raise ValueError("skill_alpha and skill_beta must be positive")
        low, high = self.skill_range
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"skill_range must satisfy 0 <= low <= high <= 1, got {self.skill_range}")
        if self.class_skill_sd < 0 or self.workload_sigma < 0:
            raise ValueError("class_skill_sd and workload_sigma must be >= 0")
        if not 0.0 <= self.patient_hardness < 1.0:
            raise ValueError(f"patient_hardness must be in [0, 1), got {self.patient_hardness}")
        names = [spec.name for spec in self.experts]
        if self.noisy_expert_accuracy is not None:
            names.append(self.noisy_expert_name)
        if len(set(names)) != len(names):
            raise ValueError(f"expert names must be unique, got {names}")
        for name in names:
            if not name or not all(ch.isalnum() or ch == "_" for ch in name):
                raise ValueError(
                    f"expert name {name!r} must be letters, digits or '_' (it becomes a column name)"
                )
        for spec in self.experts:
            if not 0.0 < spec.accuracy <= 1.0:
                raise ValueError(f"expert {spec.name!r}: accuracy must be in (0, 1], got {spec.accuracy}")
            if spec.over_calls is not None and spec.over_calls not in CLASSES:
                raise ValueError(f"expert {spec.name!r}: over_calls must be one of {CLASSES} or None")
            if not 0.0 <= spec.lean <= spec.accuracy:
                raise ValueError(f"expert {spec.name!r}: lean must be in [0, accuracy]")
        if self.noisy_expert_accuracy is not None and not 0.0 < self.noisy_expert_accuracy <= 1.0:
            raise ValueError(
                f"noisy_expert_accuracy must be in (0, 1] or None, got {self.noisy_expert_accuracy}"
            )


@dataclass
class RaterResult:
    """Simulated opinions and the truth about every simulated reader.

    opinions: (clip_index, rater_id, label) per crowd opinion, in clip order.
    crowd_counts: (N, 3) int, opinions per bline3 class (none, discrete, confluent).
    experts: expert name -> one bline3 label per clip.
    rater_kind: crowd rater id -> "crowd", "spammer-random" or "spammer-constant".
    rater_confusion / expert_confusion: the generating 3x3 matrices C[true, given]
        (before the per-patient hardness is applied).
    rater_accuracy / expert_accuracy: fraction of that reader's answers in this
        simulation that equal the truth (what an aggregation model should recover).
    rater_n_labels: crowd opinions given by each rater.
    """

    classes: tuple[str, ...]
    truth: np.ndarray
    opinions: list[tuple[int, str, str]]
    crowd_counts: np.ndarray
    experts: dict[str, list[str]]
    rater_ids: list[str]
    rater_kind: dict[str, str]
    rater_confusion: dict[str, np.ndarray]
    rater_accuracy: dict[str, float]
    rater_n_labels: dict[str, int]
    expert_confusion: dict[str, np.ndarray] = field(default_factory=dict)
    expert_accuracy: dict[str, float] = field(default_factory=dict)

    def manifest_columns(self) -> dict[str, list[str]]:
        """Manifest columns as strings: crowd_none/crowd_discrete/crowd_confluent and expert_<name>."""
        columns = {
            name: [str(int(v)) for v in self.crowd_counts[:, k]] for k, name in enumerate(CROWD_COLUMNS)
        }
        for name, labels in self.experts.items():
            columns[f"expert_{name}"] = list(labels)
        return columns

    def opinion_rows(self, clip_names: Sequence[str]) -> list[tuple[str, str, str]]:
        """Long-format opinions (clip, rater, label) with clip indices replaced by names."""
        if len(clip_names) != len(self.truth):
            raise ValueError(f"need {len(self.truth)} clip names, got {len(clip_names)}")
        return [(clip_names[i], rater, label) for i, rater, label in self.opinions]


def _reader_confusion(class_accuracy: np.ndarray) -> np.ndarray:
    """Confusion matrix with the given per-class accuracy, errors spread as _ADJACENT_ERRORS."""
    accuracy = np.clip(class_accuracy, 0.0, 1.0)
    return np.diag(accuracy) + (1.0 - accuracy)[:, None] * _ADJACENT_ERRORS


def _expert_confusion(spec: ExpertSpec) -> np.ndarray:
    confusion = _reader_confusion(np.full(N_CLASSES, spec.accuracy))
    if spec.over_calls is not None:
        target = CLASSES.index(spec.over_calls)
        for true in range(N_CLASSES):
            if abs(true - target) == 1:  # the lean moves answers one step toward the favourite class
                moved = min(spec.lean, confusion[true, true])
                confusion[true, true] -= moved
                confusion[true, target] += moved
    return confusion


def _sample_answers(rng: np.random.Generator, answer_probs: np.ndarray) -> np.ndarray:
    """One class index per row of an (M, 3) probability array."""
    cumulative = np.cumsum(answer_probs, axis=1)
    draws = rng.random(len(answer_probs))[:, None] * cumulative[:, -1:]
    return np.minimum((draws >= cumulative).sum(axis=1), N_CLASSES - 1)


def _answer_probs(confusions: np.ndarray, truth: np.ndarray, hardness: np.ndarray) -> np.ndarray:
    """(M, 3) answer distributions: each reader's row for the true class, blurred by hardness."""
    base = confusions[np.arange(len(truth)), truth] if confusions.ndim == 3 else confusions[truth]
    return (1.0 - hardness)[:, None] * base + hardness[:, None] * _ADJACENT_ERRORS[truth]


def _crowd_confusions(
    rng: np.random.Generator, config: RaterConfig, rater_ids: list[str]
) -> tuple[np.ndarray, dict[str, str]]:
    n_spammers = int(round(config.spammer_share * config.n_crowd))
    spammer_positions = set(rng.choice(config.n_crowd, size=n_spammers, replace=False).tolist())
    low, high = config.skill_range
    confusions = np.empty((config.n_crowd, N_CLASSES, N_CLASSES))
    kinds: dict[str, str] = {}
    constant_next = False
    for j, rater in enumerate(rater_ids):
        skill = float(np.clip(rng.beta(config.skill_alpha, config.skill_beta), low, high))
        class_skill = np.clip(skill + rng.normal(0.0, config.class_skill_sd, N_CLASSES), low, high)
        if j not in spammer_positions:
            confusions[j] = _reader_confusion(class_skill)
            kinds[rater] = "crowd"
        elif constant_next:  # alternate the two kinds of spammer
            favourite = int(rng.integers(N_CLASSES))
            confusions[j] = 0.0
            confusions[j][:, favourite] = 1.0
            kinds[rater] = "spammer-constant"
        else:
            confusions[j] = 1.0 / N_CLASSES
            kinds[rater] = "spammer-random"
        if j in spammer_positions:
            constant_next = not constant_next
    return confusions, kinds


def _assign_raters(rng: np.random.Generator, config: RaterConfig, n_clips: int) -> np.ndarray:
    """(N, opinions_per_clip) distinct rater indices per clip, drawn in proportion to workload.

    Gumbel top-k: adding Gumbel noise to log-weights and keeping the k largest is
    sampling k raters without replacement with probability proportional to weight.
    """
    log_workload = rng.normal(0.0, config.workload_sigma, config.n_crowd)
    keys = log_workload[None, :] + rng.gumbel(size=(n_clips, config.n_crowd))
    chosen = np.argpartition(-keys, config.opinions_per_clip - 1, axis=1)[:, : config.opinions_per_clip]
    return np.sort(chosen, axis=1)


def simulate_raters(
    truth_bline3: Sequence[str],
    patients: Sequence[str],
    seed: int,
    config: RaterConfig | None = None,
) -> RaterResult:
    """Simulate crowd opinions and expert labels for clips with known bline3 truth.

    truth_bline3: the true class of each clip (none / discrete / confluent).
    patients: the patient of each clip (clips of one patient share a reading hardness).
    seed: everything is deterministic per seed.
    """
    config = config or RaterConfig()
    config.validate()
    if len(truth_bline3) != len(patients):
        raise ValueError(f"truth_bline3 has {len(truth_bline3)} clips but patients has {len(patients)}")
    truth_names = []
    for value in truth_bline3:
        name = normalise_label("bline3", value)
        if name is None:
            raise ValueError("truth_bline3 has a blank label; every clip needs its true class")
        truth_names.append(name)
    truth = np.array([CLASSES.index(name) for name in truth_names], dtype=np.int64)
    n_clips = len(truth)
    rng = np.random.default_rng(seed)

    patient_names = sorted(set(map(str, patients)))
    patient_hardness = dict(
        zip(patient_names, rng.uniform(0.0, config.patient_hardness, len(patient_names)).tolist())
    )
    hardness = np.array([patient_hardness[str(p)] for p in patients], dtype=float)

    width = len(str(config.n_crowd - 1))
    rater_ids = [f"r{j:0{width}d}" for j in range(config.n_crowd)]
    confusions, kinds = _crowd_confusions(rng, config, rater_ids)

    assigned = (
        _assign_raters(rng, config, n_clips) if n_clips else np.zeros((0, config.opinions_per_clip), int)
    )
    clip_index = np.repeat(np.arange(n_clips), config.opinions_per_clip)
    rater_index = assigned.reshape(-1)
    clip_truth = truth[clip_index]
    answers = _sample_answers(rng, _answer_probs(confusions[rater_index], clip_truth, hardness[clip_index]))

    crowd_counts = np.zeros((n_clips, N_CLASSES), dtype=np.int64)
    np.add.at(crowd_counts, (clip_index, answers), 1)
    opinions = [
        (int(i), rater_ids[j], CLASSES[a])
        for i, j, a in zip(clip_index.tolist(), rater_index.tolist(), answers.tolist())
    ]
    n_labels = np.bincount(rater_index, minlength=config.n_crowd)
    n_correct = np.bincount(rater_index, weights=(answers == clip_truth), minlength=config.n_crowd)
    rater_accuracy = {
        rater: float(n_correct[j] / n_labels[j]) if n_labels[j] else float("nan")
        for j, rater in enumerate(rater_ids)
    }

    specs = list(config.experts)
    if config.noisy_expert_accuracy is not None:
        specs.append(ExpertSpec(config.noisy_expert_name, accuracy=config.noisy_expert_accuracy))
    experts: dict[str, list[str]] = {}
    expert_confusion: dict[str, np.ndarray] = {}
    expert_accuracy: dict[str, float] = {}
    for spec in specs:
        confusion = _expert_confusion(spec)
        answers_e = _sample_answers(rng, _answer_probs(confusion, truth, hardness)) if n_clips else truth
        experts[spec.name] = [CLASSES[a] for a in answers_e.tolist()]
        expert_confusion[spec.name] = confusion
        expert_accuracy[spec.name] = float(np.mean(answers_e == truth)) if n_clips else float("nan")

    return RaterResult(
        classes=CLASSES,
        truth=truth,
        opinions=opinions,
        crowd_counts=crowd_counts,
        experts=experts,
        rater_ids=rater_ids,
        rater_kind=kinds,
        rater_confusion={rater: confusions[j] for j, rater in enumerate(rater_ids)},
        rater_accuracy=rater_accuracy,
        rater_n_labels={rater: int(n_labels[j]) for j, rater in enumerate(rater_ids)},
        expert_confusion=expert_confusion,
        expert_accuracy=expert_accuracy,
    )
