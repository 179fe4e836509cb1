"""The end-to-end demo: does a model trained on crowd labels match one trained on an expert's?

1. Simulate a crowd-labelled collection (lungus.sim): truth, a crowd, and experts,
   one of them noisy.
2. Hold out a quarter of the patients for testing.
3. Train two small classifiers on CPU on the other patients: one on the crowd's soft
   labels, one on the noisy expert's labels.
4. Score both against simulator truth on the held-out patients and compare them
   (paired patient bootstrap), and report how the crowd consensus agrees with the
   experts (Duggan et al. 2023).
5. Write DIR/report.md (table and figures) and DIR/summary.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lungus.atomic import atomic_write_text
from lungus.data.labels.tasks import DEFAULT_TASK
from lungus.errors import LungUSError
from lungus.progress import Progress


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo (about 3 minutes on 2 CPU cores); ``quick()`` is the ~1-minute version.

    Both are sized so that the held-out comparison is not decided by chance: with fewer than
    about 150 training clips the two models' AUCs swing by 0.1 or more between seeds."""

    clips: int = 320
    patients: int = 120
    frames: int = 24
    sim_size: int = 128
    input_size: int = 80
    window: int = 8
    epochs: int = 24
    width: int = 12
    expert: str = "noisy"
    task: str = DEFAULT_TASK
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(clips=200, patients=80, epochs=16)


def _log_to(path: Path, echo: Callable[[str], None]) -> Callable[[str], None]:
    handle = open(path, "a", encoding="utf-8")

    def log(message: str) -> None:
        handle.write(message + "\n")
        handle.flush()
        echo(message)

    return log


def run_demo(out: str | Path, config: DemoConfig | None = None, *, log: Callable[[str], None] = print,
             progress: Progress | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run the demo into ``out``; returns the summary (also written to out/summary.json).
    ``progress(done, 4, what)`` (lungus.progress) hears of its four steps.

    ``overwrite`` replaces an earlier demo in ``out`` (only a folder holding a demo's
    summary.json is ever deleted).
    """
    import numpy as np
    import torch

    from lungus.data.manifests.label_sources import labels_of
    from lungus.data.manifests.manifest import Manifest
    from lungus.data.manifests.split import assign_folds
    from lungus.evaluate.compare_runs import compare_runs
    from lungus.evaluate.model_eval import evaluate_model
    from lungus.evaluate.report import write_json
    from lungus.sim.dataset import write_dataset
    from lungus.sim.generator import SimulationConfig
    from lungus.train.config import TrainConfig
    from lungus.train.loop import fit

    config = config or DemoConfig()
    out = Path(out)
    if (out / "summary.json").exists():
        if not overwrite:
            raise LungUSError("already holds a demo; pass --overwrite or choose another --out", out)
        import shutil

        shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()):
        raise LungUSError("exists and is not empty; choose another --out", out)
    out.mkdir(parents=True, exist_ok=True)
    log = _log_to(out / "demo.log", log)
    started = time.time()
    # Four steps: simulating, training each of the two models, evaluating.
    step = lambda done, what: progress and progress(done, 4, what)  # noqa: E731

    # 1. Data.
    step(0, "simulating")
    data = out / "data"
    summary = write_dataset(data, config.clips, config.patients, seed=config.seed,
                            config=SimulationConfig(n_frames=config.frames, height=config.sim_size,
                                                    width=config.sim_size))
    log(f"simulated {summary.n_clips} clips of {summary.n_patients} patients in {time.time() - started:.0f} s")

    # 2. Hold out a quarter of the patients, stratified by truth.
    manifest = Manifest.load(summary.manifest)
    truth = labels_of(manifest, "truth", config.task).hard
    fold = assign_folds(manifest.patients, truth, 4, seed=config.seed)
    test_rows = [int(r) for r in np.flatnonzero(fold == 0)]
    test_manifest = data / "test.csv"
    Manifest.from_rows(test_manifest, [manifest.rows[r] for r in test_rows]).save(test_manifest)

    # 3. Two classifiers, same recipe, different labels.
    torch.set_num_threads(max(1, torch.get_num_threads()))
    runs = {"crowd": "crowd-soft", "expert": f"expert:{config.expert}"}
    for k, (name, source) in enumerate(runs.items()):
        step(1 + k, f"training on {source} labels")
        log(f"training the {name} model on {source} labels")
        fit(TrainConfig(manifest=str(summary.manifest), out=str(out / name), task=config.task, model="frame_cnn",
                        model_args={"width": config.width}, label_source=source,
                        size=(config.input_size, config.input_size), frames=config.window, epochs=config.epochs,
                        batch_size=8, lr=3e-3, val_fraction=0.2, seed=config.seed, augment=True,
                        cache_dir=str(out / ".cache")),
            test_rows=test_rows, log=log)

    # 4. Held-out evaluation against truth, comparison, crowd-vs-expert agreement.
    step(3, "evaluating")
    metrics = {}
    for name in runs:
        evaluation = evaluate_model(out / name / "model.pt", test_manifest, out / "eval" / name, labels="truth",
                                    cache_dir=out / ".cache", log=log)
        metrics[name] = evaluation.metrics
    comparison = compare_runs(out / "eval" / "crowd", out / "eval" / "expert", manifest=None, out=out / "compare",
                              names=("crowd-trained", f"expert-trained ({config.expert})"))
    agreement = _label_agreement(summary.manifest, config, out / "labels")
    result = {
        "crowd": _headline(metrics["crowd"]),
        "expert": _headline(metrics["expert"]),
        "comparison": comparison,
        "label_agreement": agreement,
        "config": {**config.__dict__},
        "seconds": round(time.time() - started, 1),
    }
    write_json(out / "summary.json", result)
    atomic_write_text(out / "report.md", _report(result, config))
    step(4, "done")
    log(f"demo finished in {result['seconds']:.0f} s: report {out / 'report.md'}")
    return result


HEADLINE_KEYS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1_macro", "kappa", "ece")


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    keep = {k: metrics[k] for k in HEADLINE_KEYS if k in metrics}
    keep.update({f"{k}_ci": metrics[f"{k}_ci"] for k in HEADLINE_KEYS if f"{k}_ci" in metrics})
    keep.update(n_clips=metrics["n_clips"], n_patients=metrics["n_patients"])
    return keep


def _label_agreement(manifest_path: Path, config: DemoConfig, out: Path) -> dict[str, Any]:
    """Crowd consensus and each expert against truth (accuracy of bline3 labels)."""
    from lungus.data.manifests.label_sources import labels_of
    from lungus.data.manifests.manifest import Manifest

    manifest = Manifest.load(manifest_path)
    truth = labels_of(manifest, "truth", "bline3").hard
    sources = ["crowd-majority", "crowd-ds", *[f"expert:{n}" for n in manifest.expert_names]]
    agreement = {}
    for source in sources:
        try:
            hard = labels_of(manifest, source, "bline3").hard
        except LungUSError:
            continue
        rated = hard >= 0
        agreement[source] = round(float((hard[rated] == truth[rated]).mean()), 4)
    return {"scheme": "bline3", "accuracy_vs_truth": agreement}


def _fmt(metrics: dict[str, Any], key: str) -> str:
    value = metrics.get(key)
    if value is None:
        return "n/a"
    ci = metrics.get(f"{key}_ci")
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _report(result: dict[str, Any], config: DemoConfig) -> str:
    crowd, expert, comparison = result["crowd"], result["expert"], result["comparison"]
    rows = "\n".join(
        f"| {key} | {_fmt(crowd, key)} | {_fmt(expert, key)} |" for key in HEADLINE_KEYS if key in crowd
    )
    agreement = "\n".join(f"| {source} | {value:.3f} |"
                          for source, value in result["label_agreement"]["accuracy_vs_truth"].items())
    low, high = comparison["auc_diff_ci"] or (float("nan"), float("nan"))
    verdict = ("the crowd-trained model is at least as good as the expert-trained one"
               if comparison["auc_diff"] >= 0 else "the expert-trained model scored higher")
    return f"""# LungUS B-lines demo: crowd-trained vs expert-trained

Simulated {config.clips} clips of {config.patients} patients (seed {config.seed}); a quarter of the patients
held out. Both models are the same `frame_cnn` (width {config.width}, {config.input_size}x{config.input_size},
{config.window}-frame windows, {config.epochs} epochs, CPU), trained on the same clips; only the labels differ:
**crowd** = the crowd's opinion distributions (crowd-soft), **expert** = expert `{config.expert}`.
Both are scored against simulator truth ({config.task}) on the held-out patients;
brackets are 95 % patient-bootstrap intervals.

| metric | crowd-trained | expert-trained |
|---|---|---|
{rows}
| clips / patients | {crowd['n_clips']} / {crowd['n_patients']} | {expert['n_clips']} / {expert['n_patients']} |

**Paired comparison** (AUC crowd - expert): {comparison['auc_diff']:+.3f} [{low:+.3f}, {high:+.3f}],
p = {comparison['p_value']:.3g} ({comparison['method']}, {comparison['n_clips']} clips): {verdict}.

![ROC of both models](compare/roc_compare.png)

| crowd-trained confusion | expert-trained confusion |
|---|---|
| ![](eval/crowd/confusion.png) | ![](eval/expert/confusion.png) |

## How good are the labels themselves? (bline3, all clips, against truth)

| label source | accuracy |
|---|---|
{agreement}

Finished in {result['seconds']:.0f} s. Reproduce: `lungus demo --out DIR` (seed {config.seed}).
"""
