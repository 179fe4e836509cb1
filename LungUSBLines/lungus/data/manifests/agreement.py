"""Crowd consensus against experts and truth: the analysis of Duggan et al. 2023.

Duggan et al. found crowd consensus labels agreed with the expert consensus more
often (87.9 %) than individual experts agreed with it (85.0 %). The same question
is asked here of any manifest:

- each label source (crowd majority vote, crowd Dawid-Skene, the manifest's own
  bline2/bline3/lus4 column, each expert, the expert majority) against simulator truth,
  when the manifest has it;
- the crowd consensus against each expert;
- concordance, Duggan style: the crowd consensus against the expert panel's majority,
  next to each expert against the majority of the *other* experts (an expert is never
  compared with a panel that contains themself). A panel label needs a strict
  majority; clips where the panel ties are left out (``n`` says how many clips count);
- expert against expert, pairwise.

Each comparison gives accuracy (= concordance), Cohen's kappa (scikit-learn), the
quadratic-weighted kappa (the classes are ordered) and the confusion matrix with rows
= the reference and columns = the source being judged.
"""

from __future__ import annotations

import itertools
import os
import warnings

import numpy as np

from lungus.data.labels.crowd import majority_vote
from lungus.data.labels.opinions import Opinions
from lungus.data.labels.schemes import scheme_classes
from lungus.data.manifests.label_sources import (
    crowd_opinion_counts,
    fit_dawid_skene,
    labels_of,
    load_opinions,
)
from lungus.data.manifests.manifest import TRUTH_PREFIX, Manifest
from lungus.errors import LungUSError


def compare(reference: np.ndarray, source: np.ndarray, n_classes: int) -> dict:
    """Agreement of ``source`` with ``reference`` (class indices, -1 = no label) on clips both label."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    both = (reference >= 0) & (source >= 0)
    n = int(both.sum())
    result: dict = {"n": n, "accuracy": None, "kappa": None, "kappa_quadratic": None}
    labels = list(range(n_classes))
    result["confusion"] = (
        confusion_matrix(reference[both], source[both], labels=labels).tolist()
        if n
        else np.zeros((n_classes, n_classes), dtype=int).tolist()
    )
    if n == 0:
        return result
    result["accuracy"] = float(np.mean(reference[both] == source[both]))
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # kappa is undefined when both are constant
        for key, weights in (("kappa", None), ("kappa_quadratic", "quadratic")):
            value = cohen_kappa_score(reference[both], source[both], labels=labels, weights=weights)
            result[key] = float(value) if np.isfinite(value) else None
    return result


def strict_majority(hard_labels: list[np.ndarray], n_classes: int) -> np.ndarray:
    """Class with strictly the most votes per clip across label arrays; -1 on a tie or no vote."""
    votes = _votes(hard_labels, n_classes)
    top = votes.max(axis=1)
    winners = (votes == top[:, None]).sum(axis=1)
    return np.where((top > 0) & (winners == 1), votes.argmax(axis=1), -1)


def _expert_labels(manifest: Manifest, scheme: str) -> dict[str, np.ndarray]:
    """Expert name -> labels in ``scheme``, for the expert columns that can give that scheme."""
    experts = {}
    for name in manifest.expert_names:
        try:
            experts[name] = labels_of(manifest, f"expert:{name}", scheme).hard
        except LungUSError:
            continue  # an expert column in another scheme (e.g. lus4 when asking bline3)
    return experts


def labels_report(
    manifest: Manifest,
    opinions: str | os.PathLike | Opinions | None = None,
    scheme: str = "bline3",
    panel: list[str] | None = None,
) -> dict:
    """The whole comparison as a JSON-able dict (see the module docstring).

    panel: the experts whose majority is the reference for concordance (default: all).
    """
    return build_labels_report(manifest, opinions, scheme, panel)[0]


def build_labels_report(
    manifest: Manifest,
    opinions: str | os.PathLike | Opinions | None = None,
    scheme: str = "bline3",
    panel: list[str] | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """labels_report and the hard labels of every source compared (truth included, if any)."""
    classes = scheme_classes(scheme)
    n_classes = len(classes)
    loaded = load_opinions(manifest, opinions)
    report: dict = {
        "manifest": str(manifest.path),
        "opinions": None if loaded is None or loaded.path is None else str(loaded.path),
        "scheme": scheme,
        "classes": list(classes),
        "n_clips": len(manifest),
        "n_patients": len(set(manifest.patients)),
    }

    sources: dict[str, np.ndarray] = {}
    soft: np.ndarray | None = None
    crowd_possible = scheme in ("bline3", "bline2") and (manifest.has_crowd_counts or loaded is not None)
    if crowd_possible:
        counts = crowd_opinion_counts(manifest, loaded)
        report["crowd"] = {
            "n_opinions": int(counts.sum()),
            "opinions_per_clip_mean": float(counts.sum(axis=1).mean()) if len(counts) else 0.0,
            "clips_without_opinions": int((counts.sum(axis=1) == 0).sum()),
        }
        sources["crowd-majority"] = labels_of(manifest, "crowd-majority", scheme, loaded).hard
        soft = labels_of(manifest, "crowd-soft", scheme, loaded).soft
    if loaded is not None and scheme in ("bline3", "bline2"):
        ds_labels = labels_of(manifest, "crowd-ds", scheme, loaded)
        sources["crowd-ds"] = ds_labels.hard
        result, encoded = fit_dawid_skene(manifest, loaded)
        vote = labels_of(manifest, "crowd-majority", "bline3", loaded).hard
        agrees = np.bincount(
            encoded.raters,
            weights=(vote[encoded.clips] == encoded.labels),
            minlength=len(encoded.rater_ids),
        ) / np.maximum(result.n_labels, 1)
        report["crowd"]["n_raters"] = len(encoded.rater_ids)
        report["dawid_skene"] = {
            "converged": result.converged,
            "iterations": result.n_iter,
            "class_prior": dict(zip(scheme_classes("bline3"), result.class_prior.round(4).tolist())),
            "raters": [
                {
                    "rater": rater,
                    "n_labels": int(result.n_labels[j]),
                    "accuracy": float(result.accuracy[j]),
                    "agreement_with_majority": float(agrees[j]),
                    "confusion": result.confusion[j].round(4).tolist(),
                }
                for j, rater in enumerate(encoded.rater_ids)
            ],
        }
    reference_column = scheme if scheme in manifest.columns else None
    if reference_column is None and scheme == "bline2" and "bline3" in manifest.columns:
        reference_column = "bline3"
    if reference_column is not None:  # the manifest's own reference labels (e.g. a consensus read)
        sources[reference_column] = labels_of(manifest, reference_column, scheme).hard
    experts = _expert_labels(manifest, scheme)
    for name, hard in experts.items():
        sources[f"expert:{name}"] = hard
    if len(experts) >= 2:
        sources["expert-majority"] = majority_vote(_votes(list(experts.values()), n_classes))
    has_truth = TRUTH_PREFIX + scheme in manifest.columns or (
        scheme == "bline2" and TRUTH_PREFIX + "bline3" in manifest.columns
    )
    if not sources or (len(sources) == 1 and not has_truth):
        found = ", ".join(sources) or "none"
        raise LungUSError(
            f"nothing to compare in {scheme}: label sources found: {found}; need crowd opinions (bline3/bline2), "
            "expert_<name> columns or truth_<scheme>",
            manifest.path,
        )
    report["sources"] = {name: _class_counts(hard, n_classes) for name, hard in sources.items()}
    all_labels = dict(sources)

    if has_truth:
        truth = labels_of(manifest, "truth", scheme).hard
        all_labels = {**sources, "truth": truth}
        report["vs_truth"] = {name: compare(truth, hard, n_classes) for name, hard in sources.items()}
        if soft is not None:
            rows = (truth >= 0) & (soft.sum(axis=1) > 0)
            report["vs_truth"]["crowd-soft"] = {
                "n": int(rows.sum()),
                "mean_probability_of_truth": float(soft[rows, truth[rows]].mean()) if rows.any() else None,
            }

    crowd_sources = [name for name in ("crowd-majority", "crowd-ds") if name in sources]
    report["vs_experts"] = {
        crowd: {name: compare(hard, sources[crowd], n_classes) for name, hard in experts.items()}
        for crowd in crowd_sources
    }
    panel_experts = experts
    if panel is not None:
        unknown = [name for name in panel if name not in experts]
        if unknown:
            raise LungUSError(
                f"panel expert {', '.join(unknown)} has no expert_<name> column in {scheme}; "
                f"experts: {', '.join(experts) or 'none'}",
                manifest.path,
            )
        panel_experts = {name: experts[name] for name in panel}
    if len(panel_experts) >= 2:
        report["concordance"] = _concordance(sources, panel_experts, crowd_sources, n_classes)
    if len(experts) >= 2:
        report["expert_pairs"] = [
            {"experts": [a, b], **compare(experts[a], experts[b], n_classes)}
            for a, b in itertools.combinations(experts, 2)
        ]
    return report, all_labels


def _votes(hard_labels: list[np.ndarray], n_classes: int) -> np.ndarray:
    votes = np.zeros((len(hard_labels[0]), n_classes))
    for hard in hard_labels:
        rows = np.flatnonzero(hard >= 0)
        votes[rows, hard[rows]] += 1
    return votes


def _class_counts(hard: np.ndarray, n_classes: int) -> dict:
    return {
        "labelled": int((hard >= 0).sum()),
        "per_class": np.bincount(hard[hard >= 0], minlength=n_classes).tolist(),
    }


def _concordance(
    sources: dict[str, np.ndarray], experts: dict[str, np.ndarray], crowd_sources: list[str], n_classes: int
) -> dict:
    """Duggan-style concordance: crowd vs the expert panel, each expert vs the other experts."""
    panel = strict_majority(list(experts.values()), n_classes)
    result: dict = {
        "panel": sorted(experts),
        "crowd_vs_panel": {name: compare(panel, sources[name], n_classes) for name in crowd_sources},
        "expert_vs_others": {},
        "crowd_vs_others": {name: {} for name in crowd_sources},
    }
    for name, hard in experts.items():
        others = strict_majority([h for other, h in experts.items() if other != name], n_classes)
        result["expert_vs_others"][name] = compare(others, hard, n_classes)
        for crowd in crowd_sources:  # the crowd judged by exactly the panels each expert faced
            result["crowd_vs_others"][crowd][name] = compare(others, sources[crowd], n_classes)
    accuracies = [v["accuracy"] for v in result["expert_vs_others"].values() if v["accuracy"] is not None]
    result["expert_vs_others_mean"] = float(np.mean(accuracies)) if accuracies else None
    for crowd in crowd_sources:
        values = [
            v["accuracy"] for v in result["crowd_vs_others"][crowd].values() if v["accuracy"] is not None
        ]
        result["crowd_vs_others"][crowd]["mean"] = float(np.mean(values)) if values else None
    return result


MIN_LABELS_SHOWN = 10  # the text table skips raters with fewer opinions: their estimates are mostly prior


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


def _num(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.2f}"


def format_report(report: dict) -> str:
    """Plain-text tables of a labels_report."""
    lines = [
        f"{report['manifest']}: {report['n_clips']} clips, {report['n_patients']} patients, scheme {report['scheme']} "
        f"({', '.join(report['classes'])})"
    ]
    crowd = report.get("crowd")
    if crowd:
        raters = f", {crowd['n_raters']} raters" if "n_raters" in crowd else ""
        lines.append(
            f"crowd: {crowd['n_opinions']} opinions{raters}, {crowd['opinions_per_clip_mean']:.1f} per clip"
            + (f"; opinions file {report['opinions']}" if report.get("opinions") else "")
        )
    if "dawid_skene" in report:
        ds = report["dawid_skene"]
        state = "converged" if ds["converged"] else "did NOT converge"
        lines.append(
            f"Dawid-Skene: {state} in {ds['iterations']} iterations; class prior {ds['class_prior']}"
        )
    if "vs_truth" in report:
        lines += [
            "",
            "Against simulator truth:",
            f"  {'source':<18} {'n':>5} {'accuracy':>9} {'kappa':>6} {'kappa_q':>7}",
        ]
        for name, row in report["vs_truth"].items():
            if "accuracy" in row:
                lines.append(
                    f"  {name:<18} {row['n']:>5} {_pct(row['accuracy']):>9} {_num(row['kappa']):>6} "
                    f"{_num(row['kappa_quadratic']):>7}"
                )
            else:
                lines.append(
                    f"  {name:<18} {row['n']:>5}  mean probability on the true class "
                    f"{_pct(row['mean_probability_of_truth'])}"
                )
    if report.get("vs_experts") and any(report["vs_experts"].values()):
        lines += ["", "Crowd consensus against each expert (accuracy / kappa):"]
        for crowd_name, per_expert in report["vs_experts"].items():
            cells = ", ".join(
                f"{e} {_pct(v['accuracy']).strip()} / {_num(v['kappa']).strip()}"
                for e, v in per_expert.items()
            )
            lines.append(f"  {crowd_name:<16} {cells}")
    if "concordance" in report:
        c = report["concordance"]
        rows = [(f"{name} vs the panel majority", row) for name, row in c["crowd_vs_panel"].items()]
        rows += [(f"expert {name} vs the other experts", row) for name, row in c["expert_vs_others"].items()]
        width = max(len(label) for label, _ in rows + [("mean expert vs the other experts", None)]) + 2
        lines += ["", f"Concordance (Duggan 2023 style), expert panel {', '.join(c['panel'])}:"]
        for label, row in rows:
            lines.append(f"  {label:<{width}} {_pct(row['accuracy'])} (n={row['n']})")
        lines.append(f"  {'mean expert vs the other experts':<{width}} {_pct(c['expert_vs_others_mean'])}")
        for name, per_panel in c["crowd_vs_others"].items():
            lines.append(f"  {name + ' vs those same panels':<{width}} {_pct(per_panel['mean'])} (mean)")
        lines.append("  (Duggan et al. 2023: crowd 87.9 % vs individual experts 85.0 %)")
    if report.get("expert_pairs"):
        lines += ["", "Expert against expert (accuracy / kappa):"]
        for pair in report["expert_pairs"]:
            a, b = pair["experts"]
            lines.append(f"  {a} - {b}: {_pct(pair['accuracy'])} / {_num(pair['kappa'])} (n={pair['n']})")
    if "dawid_skene" in report:
        every = report["dawid_skene"]["raters"]
        raters = sorted((r for r in every if r["n_labels"] >= MIN_LABELS_SHOWN), key=lambda r: r["accuracy"])
        lines += [
            "",
            f"Dawid-Skene rater accuracy, least reliable first ({len(raters)} of {len(every)} raters with "
            f">= {MIN_LABELS_SHOWN} opinions; labels.json lists all):",
        ]
        shown = raters if len(raters) <= 12 else raters[:6] + [None] + raters[-6:]
        for rater in shown:
            if rater is None:
                lines.append(f"  ... {len(raters) - 12} more")
                continue
            lines.append(
                f"  {rater['rater']:<12} n={rater['n_labels']:<5} accuracy {_pct(rater['accuracy'])}  "
                f"agrees with the majority {_pct(rater['agreement_with_majority'])}"
            )
    return "\n".join(lines)
