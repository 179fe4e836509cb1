"""Figures for `lungus labels`: confusion-matrix grids and the pairwise kappa matrix (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lungus.atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)
    return Path(path)


def confusion_grid(
    path: Path, panels: dict[str, dict], classes: list[str], reference_name: str, title: str
) -> Path:
    """One confusion matrix per source (rows = reference, columns = source), counts written in the cells.

    panels: panel title -> a comparison dict of lungus.data.manifests.agreement.compare.
    Colour is the row-normalised share, so panels with different n compare.
    """
    plt = _pyplot()
    n = len(panels)
    columns = min(n, 4)
    rows = (n + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 3.1 * rows + 0.6), squeeze=False)
    ticks = np.arange(len(classes))
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, comparison) in zip(axes.flat, panels.items()):
        counts = np.asarray(comparison["confusion"], dtype=float)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(
                    j,
                    i,
                    f"{int(counts[i, j])}",
                    ha="center",
                    va="center",
                    color="white" if share[i, j] > 0.6 else "black",
                    fontsize=9,
                )
        accuracy = comparison.get("accuracy")
        kappa = comparison.get("kappa")
        subtitle = (
            "n/a"
            if accuracy is None
            else f"{100 * accuracy:.1f}%" + ("" if kappa is None else f", κ {kappa:.2f}")
        )
        ax.set_title(f"{name}\n{subtitle} (n={comparison['n']})", fontsize=9)
        ax.set_xticks(ticks, classes, fontsize=8, rotation=30)
        ax.set_yticks(ticks, classes, fontsize=8)
        ax.set_ylabel(reference_name, fontsize=8)
    figure.suptitle(
        f"{title}\n(rows: {reference_name}; columns: the source named above each matrix)", fontsize=10
    )
    figure.tight_layout()
    return _save(figure, path)


def kappa_matrix(path: Path, names: list[str], kappa: np.ndarray, title: str) -> Path:
    """Symmetric matrix of pairwise Cohen's kappa between label sources."""
    plt = _pyplot()
    size = 1.0 + 0.6 * len(names)
    figure, ax = plt.subplots(figsize=(size + 1.2, size))
    shown = np.where(np.isnan(kappa), 0.0, kappa)
    image = ax.imshow(shown, cmap="viridis", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            text = "" if np.isnan(kappa[i, j]) else f"{kappa[i, j]:.2f}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                color="white" if shown[i, j] < 0.6 else "black",
                fontsize=8,
            )
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, names, fontsize=8)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Cohen's κ")
    ax.set_title(title, fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def report_figures(report: dict, sources: dict[str, np.ndarray], out_dir: Path) -> list[Path]:
    """All PNGs of a labels report: confusion_vs_truth, confusion_vs_panel, agreement_kappa."""
    from lungus.data.manifests.agreement import compare

    out_dir = Path(out_dir)
    classes = report["classes"]
    written = []
    if "vs_truth" in report:
        panels = {name: row for name, row in report["vs_truth"].items() if "confusion" in row}
        if panels:
            written.append(
                confusion_grid(
                    out_dir / "confusion_vs_truth.png",
                    panels,
                    classes,
                    "truth",
                    "Label sources against simulator truth",
                )
            )
    if "concordance" in report:
        c = report["concordance"]
        panels = {f"{name} vs panel": row for name, row in c["crowd_vs_panel"].items()}
        panels.update({f"expert {name} vs others": row for name, row in c["expert_vs_others"].items()})
        written.append(
            confusion_grid(
                out_dir / "confusion_vs_panel.png",
                panels,
                classes,
                "expert reference",
                f"Concordance with the expert panel ({', '.join(c['panel'])})",
            )
        )
    if len(sources) >= 2:
        names = list(sources)
        kappa = np.full((len(names), len(names)), np.nan)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                value = compare(sources[a], sources[b], len(classes))["kappa"]
                kappa[i, j] = np.nan if value is None else value
        written.append(
            kappa_matrix(out_dir / "agreement_kappa.png", names, kappa, "Pairwise agreement (Cohen's κ)")
        )
    return written
