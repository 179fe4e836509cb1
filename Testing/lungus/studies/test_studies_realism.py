"""The realism study at a tiny size (12 simulated clips, one epoch of a tiny model), scored on the
tiny collection as its "real" manifest: what realism.json holds, that its AUC is `lungus evaluate`'s,
the simulator's fingerprint, and resuming. Not the outcome: docs/real-clips.md#realism."""

from __future__ import annotations

import json
import shutil

import pytest

from lungus.cli import main
from lungus.errors import LungUSError
from lungus.sim.fingerprint import SIM_SOURCE, simulator_fingerprint
from lungus.studies.realism import (
    DEFAULT_RECIPE,
    STEP_SETTINGS,
    RealismConfig,
    recipe_path,
    run_realism,
    run_realism_seeds,
    training_config,
)


@pytest.fixture(scope="module")
def tiny_recipe(tiny_bline2_recipe):
    return tiny_bline2_recipe


def tiny_config(real, recipe, **changes) -> RealismConfig:
    settings = {"clips": 12, "patients": 6, "frames": 8, "size": (64, 64), "seed": 1, "device": "cpu",
                "n_boot": 200, **changes}
    return RealismConfig(real=str(real), recipe=str(recipe), **settings)


@pytest.fixture(scope="module")
def study(tiny_collection, tiny_recipe, tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("realism") / "out"
    result = run_realism(out, tiny_config(tiny_collection, tiny_recipe), log=lambda _m: None)
    return out, result


def test_realism_json_holds_the_auc_the_real_set_and_the_simulation(study, tiny_collection, tiny_recipe):
    out, result = study
    written = json.loads((out / "realism.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert 0.0 <= written["auc"] <= 1.0 and written["auc_ci"][0] <= written["auc"] <= written["auc_ci"][1]
    assert written["real"] == {"manifest": str(tiny_collection.resolve()), "labels": "truth", "n_clips": 16,
                               "n_patients": 8, "n_positive": written["real"]["n_positive"], "skipped": 0}
    simulation = written["simulation"]
    assert (simulation["clips"], simulation["patients"], simulation["frames"], simulation["size"]) == (12, 6, 8, [64, 64])
    assert simulation["simulator"] == simulator_fingerprint()
    assert written["seeds"] == {"simulation": 1, "training": 1}
    assert written["recipe"]["path"] == str(tiny_recipe.resolve())
    assert written["training"]["label_source"] == "truth" and written["training"]["settings"]["task"] == "bline2"
    assert written["reused"] == {"simulation": False, "model": False}
    assert set(written["times"]) == {"started_utc", "finished_utc", "simulate_s", "train_s", "evaluate_s", "total_s"}


def test_the_model_saw_only_the_simulated_clips(study):
    out, _ = study
    from lungus.models.model_file import load_model_file

    card = load_model_file(out / "model" / "model.pt").card
    assert card.training_data["clips"] == 12


def test_the_auc_is_what_lungus_evaluate_gives_for_the_same_model(study, tiny_collection, tmp_path):
    out, result = study
    assert main(["evaluate", "--model", str(out / "model" / "model.pt"), "--manifest", str(tiny_collection),
                 "--out", str(tmp_path / "eval"), "--device", "cpu", "--n-boot", "200"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert (metrics["auc"], metrics["auc_ci"]) == (result["auc"], result["auc_ci"])


def test_the_fingerprint_changes_when_a_simulator_source_changes(tmp_path):
    copy = tmp_path / "sim"
    shutil.copytree(SIM_SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert simulator_fingerprint(copy) == simulator_fingerprint()
    render = copy / "render.py"
    render.write_text(render.read_text() + "\n# a changed renderer\n")
    assert simulator_fingerprint(copy)["source_sha256"] != simulator_fingerprint()["source_sha256"]


def test_resume_reuses_both_finished_steps(study, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(study[0], out)
    result = run_realism(out, tiny_config(study[1]["real"]["manifest"], study[1]["recipe"]["path"]), resume=True,
                         log=lambda _m: None)
    assert result["reused"] == {"simulation": True, "model": True}
    assert result["auc"] == study[1]["auc"]


def test_resume_continues_a_training_that_did_not_finish(tiny_collection, tiny_recipe, tmp_path):
    # In place: the checkpoint names the simulated manifest by its path, as `lungus train --resume` wants.
    out = tmp_path / "out"
    run_realism(out, tiny_config(tiny_collection, tiny_recipe), log=lambda _m: None)
    (out / "model" / "model.pt").unlink()  # as when training stopped after its last checkpoint
    result = run_realism(out, tiny_config(tiny_collection, tiny_recipe), resume=True, log=lambda _m: None)
    assert result["reused"] == {"simulation": True, "model": False}
    assert (out / "model" / "model.pt").is_file()


def test_resume_refuses_a_simulation_with_other_settings(study, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(study[0], out)
    config = tiny_config(study[1]["real"]["manifest"], study[1]["recipe"]["path"], clips=14)
    with pytest.raises(LungUSError, match=r"other settings \(clips: 12 then, 14 now\)"):
        run_realism(out, config, resume=True, log=lambda _m: None)


def test_resume_refuses_a_simulation_made_by_another_simulator(study, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(study[0], out)
    stamp = out / "sim" / STEP_SETTINGS
    earlier = json.loads(stamp.read_text())
    earlier["simulator"]["source_sha256"] = "0" * 64
    stamp.write_text(json.dumps(earlier))
    with pytest.raises(LungUSError, match=r"other settings \(simulator.source_sha256: "):
        run_realism(out, tiny_config(study[1]["real"]["manifest"], study[1]["recipe"]["path"]), resume=True,
                    log=lambda _m: None)


def test_without_resume_a_used_folder_is_refused(study, tiny_collection, tiny_recipe):
    with pytest.raises(LungUSError, match="pass --resume"):
        run_realism(study[0], tiny_config(tiny_collection, tiny_recipe), log=lambda _m: None)


def test_the_default_recipe_is_the_repository_covid_blues_one(tiny_collection, tmp_path):
    recipe = recipe_path(None)
    assert recipe.name == DEFAULT_RECIPE and recipe.parent.name == "recipes"
    training = training_config(RealismConfig(real=str(tiny_collection)), recipe, tmp_path / "m.csv", tmp_path / "run")
    assert (training.task, training.layout, training.folds, training.label_source) == ("bline2", "polar", 1, "truth")


def test_a_missing_simulator_fit_is_refused_before_any_work(tiny_collection, tiny_recipe, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(LungUSError, match="nowhere.json: simulator fit not found"):
        run_realism(out, tiny_config(tiny_collection, tiny_recipe, fit=str(tmp_path / "nowhere.json")))
    assert not out.exists()


def test_the_simulation_draws_from_the_given_fit(tiny_collection, tiny_recipe, tmp_path):
    from lungus.sim.fitted import SimulatorFit, write_fit

    path = write_fit(SimulatorFit.constant({"gain_db": 3.0}), tmp_path / "fit.json")
    simulation = tiny_config(tiny_collection, tiny_recipe, fit=str(path)).simulation()
    assert simulation.fit.settings == {"gain_db": (3.0,) * 21} and simulation.fit.path == str(path)


def test_several_seeds_each_run_into_their_folder_and_realism_json_holds_their_mean(tiny_collection, tiny_recipe,
                                                                                   tmp_path):
    out = tmp_path / "out"
    summary = run_realism_seeds(out, tiny_config(tiny_collection, tiny_recipe), 2, log=lambda _m: None)
    per_seed = [json.loads((out / f"seed_{seed}" / "realism.json").read_text()) for seed in (1, 2)]
    assert [run["seeds"] for run in per_seed] == [{"simulation": 1, "training": 1}, {"simulation": 2, "training": 2}]
    assert summary["runs"] == [{"seed": seed, "auc": run["auc"], "auc_ci": run["auc_ci"],
                                "file": str(out / f"seed_{seed}" / "realism.json")}
                               for seed, run in zip((1, 2), per_seed)]
    assert summary["auc_mean"] == pytest.approx((per_seed[0]["auc"] + per_seed[1]["auc"]) / 2)
    assert summary["auc_min"] == min(run["auc"] for run in per_seed)
    assert "seed" not in summary["simulation"] and summary["simulation"]["clips"] == 12
    assert json.loads((out / "realism.json").read_text()) == json.loads(json.dumps(summary))


def test_several_seeds_resume_reuses_every_finished_seed(tiny_collection, tiny_recipe, tmp_path):
    out = tmp_path / "out"
    first = run_realism_seeds(out, tiny_config(tiny_collection, tiny_recipe), 2, log=lambda _m: None)
    shutil.rmtree(out / "seed_2" / "model")  # as when the second seed's training had not started
    again = run_realism_seeds(out, tiny_config(tiny_collection, tiny_recipe), 2, resume=True, log=lambda _m: None)
    reused = [json.loads((out / f"seed_{seed}" / "realism.json").read_text())["reused"] for seed in (1, 2)]
    assert reused == [{"simulation": True, "model": True}, {"simulation": True, "model": False}]
    assert again["runs"][0] == first["runs"][0]


def test_seeds_below_one_are_refused_at_the_command_line(tiny_collection, tmp_path, capsys):
    code = main(["realism", "--real", str(tiny_collection), "--out", str(tmp_path / "out"), "--seeds", "0"])
    assert code == 2 and "seeds must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
