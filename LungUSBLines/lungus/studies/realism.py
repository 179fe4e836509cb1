"""How much does the simulator teach about real clips? One number: a B-line classifier trained on
simulated clips only, scored on a real labelled manifest (`lungus realism`;
docs/real-clips.md#realism). Report it for each change of the simulator.

Three steps, each into its own folder of the output DIR:

1. ``sim/``: a simulated, labelled collection (lungus.sim.dataset.write_dataset, what
   `lungus simulate` writes).
2. ``model/``: a bline2 classifier trained on it alone with a training recipe and the simulator's
   labels (``truth`` by default), by the code `lungus train` runs (lungus.train.seeds.fit_seeds).
3. ``eval/``: that model scored on the real manifest by the code `lungus evaluate` runs
   (lungus.evaluate.model_eval.evaluate_model): pooled AUC with its 95 % patient-bootstrap interval.

DIR/realism.json then holds the AUC and interval, the real manifest's clips and patients, the
simulation's settings and the simulator's fingerprint (lungus.sim.fingerprint: the lungus version
and a hash of the lungus/sim sources, so each simulator change is told apart), the recipe, the
seeds and the times.

One seed's AUC moves by about 0.05 with the seed (docs/real-clips.md#realism), more than many a
simulator change: ``run_realism_seeds`` repeats the study for several seeds, each into
``DIR/seed_S/`` as above, and DIR/realism.json then holds each seed's AUC and their mean.

Each step first writes its settings (``STEP_SETTINGS`` in its folder). With ``resume`` a step whose
settings match is reused when it finished (sim/manifest.csv, model/model.pt) and continued when it
did not (an interrupted training from its checkpoint); a step made with other settings, another
simulator included, is refused. The real manifest and the recipe are checked before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lungus.errors import LungUSError

TASK = "bline2"
#: The recipe used without --config, from the source repository's Resources/recipes (not installed
#: with the package: there --config is required).
DEFAULT_RECIPE = "covid_blues_bline2.yaml"
PROBES = ("convex", "linear", "mixed")
STEP_SETTINGS = "realism_settings.json"
RESULT_NAME = "realism.json"
#: Training settings a resumed model step may change: paths inside DIR, and where it runs.
WHERE_SETTINGS = frozenset({"manifest", "out", "cache_dir", "device"})


@dataclass(frozen=True)
class RealismConfig:
    """``real``: the real labelled manifest; ``labels``: its reference labels (default as
    `lungus evaluate`: truth, else bline2, else bline3). ``recipe``: the training YAML (None: the
    repository's covid_blues_bline2.yaml). ``clips`` of ``patients``, ``frames`` per clip of ``size``
    (H, W), ``probe`` and ``fit`` (a `lungus sim-fit` FIT.json, or None): the simulation; ``seed`` seeds the simulation and the training;
    ``label_source``: the simulated labels trained on."""

    real: str
    recipe: str | None = None
    labels: str | None = None
    clips: int = 200
    patients: int = 80
    seed: int = 0
    frames: int = 40
    size: tuple[int, int] = (256, 256)
    probe: str = "mixed"
    fit: str | None = None
    label_source: str = "truth"
    device: str = "auto"
    n_boot: int = 1000

    def __post_init__(self) -> None:
        if self.clips < 1:
            raise LungUSError(f"realism: clips must be at least 1, got {self.clips}")
        if not 1 <= self.patients <= self.clips:
            raise LungUSError(f"realism: patients must be from 1 to clips ({self.clips}), got {self.patients}")
        if self.probe not in PROBES:
            raise LungUSError(f"realism: probe must be one of {', '.join(PROBES)}, got {self.probe!r}")
        if self.n_boot < 1:
            raise LungUSError(f"realism: n_boot must be at least 1, got {self.n_boot}")

    def simulation(self):
        """The lungus.sim.generator.SimulationConfig of step 1."""
        from lungus.sim.fitted import read_fit
        from lungus.sim.generator import SimulationConfig

        fit = read_fit(self.fit) if self.fit is not None else None
        try:
            simulation = SimulationConfig(n_frames=self.frames, height=self.size[0], width=self.size[1],
                                          probe=self.probe, fit=fit)
        except ValueError as error:
            raise LungUSError(f"realism: invalid frames/size: {error}") from None
        if fit is not None and (doubt := fit.size_warning(self.size[0], self.size[1], self.probe)):
            import warnings

            warnings.warn(doubt, stacklevel=2)
        return simulation


@dataclass(frozen=True)
class RealManifest:
    """The real manifest as checked before any work: its reference labels, labelled clips and patients."""

    path: Path
    labels: str
    n_clips: int
    n_patients: int
    n_positive: int


def check_real_manifest(path: str | os.PathLike, labels: str | None = None) -> RealManifest:
    """LungUSError unless ``path`` is a manifest whose ``labels`` (default as `lungus evaluate`) give
    bline2 labels with clips of both classes (an AUC needs both) and every labelled clip exists."""
    import numpy as np

    from lungus.data.manifests.label_sources import labels_of
    from lungus.data.manifests.manifest import Manifest
    from lungus.evaluate.model_eval import default_eval_labels

    manifest = Manifest.load(path)
    source = labels or default_eval_labels(manifest, TASK)
    hard = labels_of(manifest, source, TASK).hard
    rows = [int(r) for r in np.flatnonzero(hard >= 0)]
    if not rows:
        raise LungUSError(f"no clip has a {source} label for {TASK}", path)
    positive = int((hard[rows] == 1).sum())
    if positive in (0, len(rows)):
        raise LungUSError(f"an AUC needs clips with and without B-lines; all {len(rows)} {source} labels are "
                          f"{'with' if positive else 'without'}", path)
    missing = [manifest.clip_path(r) for r in rows if not manifest.clip_path(r).is_file()]
    if missing:
        raise LungUSError(f"{len(missing)} of its {len(rows)} labelled clips are missing, e.g. {missing[0]}", path)
    patients = manifest.patients
    return RealManifest(Path(path), source, len(rows), len({patients[r] for r in rows}), positive)


def recipe_path(recipe: str | os.PathLike | None) -> Path:
    """``recipe``, else the repository's default recipe; LungUSError when neither is there."""
    from lungus.train.config import repository_recipe

    if recipe is not None:
        path = Path(recipe)
        if not path.is_file():
            raise LungUSError("recipe not found", path)
        return path
    found = repository_recipe(DEFAULT_RECIPE)
    if found is None:
        raise LungUSError(f"no recipe: pass --config (Resources/recipes/{DEFAULT_RECIPE} of the source repository "
                          "is not installed with the package)")
    return found


def training_config(config: RealismConfig, recipe: Path, manifest: Path, out: Path):
    """The TrainConfig of step 2: the recipe's settings, trained on ``manifest`` (the simulated set)
    as one bline2 model with the study's labels, seed and device."""
    from lungus.train.config import FUSION_MODEL, TrainConfig, read_yaml_config

    task = read_yaml_config(recipe).get("task", TASK)
    if task != TASK:
        raise LungUSError(f"realism trains a {TASK} classifier; this recipe trains {task}", recipe)
    training = TrainConfig.from_sources(recipe, manifest=str(manifest), out=str(out), task=TASK,
                                        label_source=config.label_source, seed=config.seed, device=config.device,
                                        cache_dir=str(out.parent / ".cache"))
    if training.folds > 1 or training.model == FUSION_MODEL:
        raise LungUSError("realism trains one clip classifier on every simulated clip; this recipe sets "
                          + ("folds" if training.folds > 1 else "model: fusion"), recipe)
    return training


# ---------------------------------------------------------------------------------------- resumable steps


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def _first_difference(earlier: Any, now: Any, where: str = "") -> str:
    if isinstance(earlier, dict) and isinstance(now, dict):
        for key in sorted(set(earlier) | set(now)):
            if earlier.get(key) != now.get(key):
                return _first_difference(earlier.get(key), now.get(key), f"{where}.{key}" if where else key)
    return f"{where or 'settings'}: {json.dumps(earlier)} then, {json.dumps(now)} now"


def _step(folder: Path, settings: dict[str, Any], product: Path, run: Callable[[bool], None]) -> bool:
    """Run a step into ``folder`` unless it finished with these ``settings``; True when reused.
    ``run(continuing)``: ``continuing`` when an earlier try with these settings was interrupted."""
    from lungus.atomic import atomic_write_text

    settings = _plain(settings)
    stamp = folder / STEP_SETTINGS
    continuing = stamp.is_file()
    if continuing:
        earlier = json.loads(stamp.read_text(encoding="utf-8"))
        if earlier != settings:
            raise LungUSError(f"was made with other settings ({_first_difference(earlier, settings)}); "
                              "choose another --out", folder)
        if product.is_file():
            return True
    else:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(stamp, json.dumps(settings, indent=2) + "\n")
    run(continuing)
    return False


def _prepare(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise LungUSError("exists and is not a folder; choose another --out", out)
    if not resume and out.exists() and any(out.iterdir()):
        raise LungUSError("is not empty: pass --resume to continue a realism study there, or choose another --out",
                          out)
    out.mkdir(parents=True, exist_ok=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------- the study


def run_realism(out: str | os.PathLike, config: RealismConfig, *, resume: bool = False,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the study into ``out`` (module docstring); returns what DIR/realism.json holds."""
    from lungus.evaluate.model_eval import evaluate_model
    from lungus.evaluate.report import write_json
    from lungus.sim.dataset import write_dataset
    from lungus.sim.fingerprint import simulator_fingerprint
    from lungus.timestamps import utc_now
    from lungus.train.checkpoint import CHECKPOINT_NAME
    from lungus.train.loop import MODEL_NAME
    from lungus.train.seeds import fit_seeds

    out = Path(out)
    # Everything that can be wrong with the input is found before minutes of simulation and training.
    real = check_real_manifest(config.real, config.labels)
    recipe = recipe_path(config.recipe)
    simulation = config.simulation()
    sim_folder, model_folder = out / "sim", out / "model"
    training = training_config(config, recipe, sim_folder / "manifest.csv", model_folder)
    _prepare(out, resume)
    started, started_utc = time.time(), utc_now()

    simulated = {"clips": config.clips, "patients": config.patients, "seed": config.seed, "frames": config.frames,
                 "size": list(config.size), "probe": config.probe, "fps": simulation.fps,
                 "simulator": simulator_fingerprint()}
    if simulation.fit is not None:
        simulated["fit"] = simulation.fit.identity()
    log(f"simulating {config.clips} clips of {config.patients} patients into {sim_folder}")
    sim_reused = _step(sim_folder, simulated, sim_folder / "manifest.csv", lambda _continuing: write_dataset(
        sim_folder, config.clips, config.patients, seed=config.seed, config=simulation))
    if sim_reused:
        log(f"reused the finished simulation in {sim_folder}")
    simulate_s = time.time() - started

    recipe_record = {"path": str(recipe.resolve()), "sha256": _sha256(recipe)}
    # What the model depends on; where the folders are and which device ran it may change between tries.
    trained = {"simulation": simulated, "recipe_sha256": recipe_record["sha256"],
               "training": {k: v for k, v in training.to_dict().items() if k not in WHERE_SETTINGS}}
    log(f"training a {TASK} classifier on the simulated clips ({config.label_source} labels, recipe {recipe})")
    model_reused = _step(model_folder, trained, model_folder / MODEL_NAME,
                         lambda continuing: fit_seeds(training, log=log, resume=continuing and (
                             model_folder / CHECKPOINT_NAME).is_file()))
    if model_reused:
        log(f"reused the finished model {model_folder / MODEL_NAME}")
    train_s = time.time() - started - simulate_s

    log(f"scoring it on {real.n_clips} real clips of {real.n_patients} patients ({real.path})")
    evaluation = evaluate_model(model_folder / MODEL_NAME, real.path, out / "eval", labels=real.labels,
                                device=config.device, n_boot=config.n_boot, cache_dir=out / ".cache", log=log)
    metrics = evaluation.metrics
    evaluate_s = time.time() - started - simulate_s - train_s
    result = {
        "auc": metrics.get("auc"),
        "auc_ci": metrics.get("auc_ci"),
        "real": {"manifest": str(real.path.resolve()), "labels": real.labels, "n_clips": metrics.get("n_clips"),
                 "n_patients": metrics.get("n_patients"), "n_positive": real.n_positive,
                 "skipped": len(evaluation.skipped)},
        "simulation": simulated,
        "recipe": recipe_record,
        "training": {"label_source": config.label_source, "seed": config.seed, "settings": training.to_dict()},
        "seeds": {"simulation": config.seed, "training": training.seed},
        "n_boot": config.n_boot,
        "reused": {"simulation": sim_reused, "model": model_reused},
        "times": {"started_utc": started_utc, "finished_utc": utc_now(), "simulate_s": round(simulate_s, 1),
                  "train_s": round(train_s, 1), "evaluate_s": round(evaluate_s, 1),
                  "total_s": round(time.time() - started, 1)},
        "files": {"model": str(model_folder / MODEL_NAME), "evaluation": str(out / "eval" / "metrics.json"),
                  "simulation": str(sim_folder / "manifest.csv")},
    }
    write_json(out / RESULT_NAME, result)
    return result


def run_realism_seeds(out: str | os.PathLike, config: RealismConfig, seeds: int, *, resume: bool = False,
                      log: Callable[[str], None] = print) -> dict[str, Any]:
    """The study for ``seeds`` seeds from ``config.seed`` on (simulation and training both), each
    into ``out/seed_S`` as :func:`run_realism`; ``out/realism.json`` holds ``runs`` (per seed its
    ``seed``, ``auc``, ``auc_ci``, ``file``), ``auc_mean``, ``auc_min``, ``auc_max``, ``auc_sd``
    and what the seeds share (``real``, ``simulation`` less its seed, ``recipe``, ``files``). One seed is
    :func:`run_realism` itself, its layout unchanged."""
    from dataclasses import replace

    import numpy as np

    from lungus.evaluate.report import write_json

    if seeds < 1:
        raise LungUSError(f"realism: seeds must be at least 1, got {seeds}")
    if seeds == 1:
        return run_realism(out, config, resume=resume, log=log)
    out = Path(out)
    check_real_manifest(config.real, config.labels)  # before the first seed's minutes of work
    _prepare(out, resume)
    runs, result = [], {}
    for seed in range(config.seed, config.seed + seeds):
        log(f"seed {seed} ({seed - config.seed + 1} of {seeds})")
        result = run_realism(out / f"seed_{seed}", replace(config, seed=seed), resume=resume, log=log)
        runs.append({"seed": seed, "auc": result["auc"], "auc_ci": result["auc_ci"],
                     "file": str(out / f"seed_{seed}" / RESULT_NAME)})
    aucs = np.array([run["auc"] for run in runs if run["auc"] is not None], dtype=float)
    summary = {
        "runs": runs,
        "auc_mean": float(aucs.mean()) if aucs.size else None,
        "auc_min": float(aucs.min()) if aucs.size else None,
        "auc_max": float(aucs.max()) if aucs.size else None,
        "auc_sd": float(aucs.std(ddof=1)) if aucs.size > 1 else None,
        "real": result["real"],
        "simulation": {key: value for key, value in result["simulation"].items() if key != "seed"},
        "recipe": result["recipe"],
        "seeds": [run["seed"] for run in runs],
        # Every seed scores the same real clips, so they skip the same ones.
        "files": {"evaluation": result["files"]["evaluation"]},
    }
    write_json(out / RESULT_NAME, summary)
    return summary


def summary_line(result: dict[str, Any], out: str | os.PathLike) -> str:
    """'realism: AUC 0.622 [0.495, 0.748] on 185 real clips of 32 patients; ...' for the terminal;
    for several seeds 'realism: mean AUC 0.758 over seeds 0, 1, 2 (0.735 to 0.802) on ...'."""
    if "runs" in result:
        mean, seeds = result["auc_mean"], ", ".join(str(seed) for seed in result["seeds"])
        score = ("mean AUC n/a" if mean is None else
                 f"mean AUC {mean:.3f} over seeds {seeds} ({result['auc_min']:.3f} to {result['auc_max']:.3f})")
    else:
        auc, ci = result["auc"], result["auc_ci"]
        score = "AUC n/a" if auc is None else f"AUC {auc:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
    simulation = result["simulation"]
    return (f"realism: {score} on {result['real']['n_clips']} real clips of {result['real']['n_patients']} patients; "
            f"trained on {simulation['clips']} simulated clips (simulator {simulation['simulator']['lungus_version']} "
            f"{simulation['simulator']['source_sha256'][:12]}, recipe {Path(result['recipe']['path']).name}) "
            f"-> {Path(out) / RESULT_NAME}")
