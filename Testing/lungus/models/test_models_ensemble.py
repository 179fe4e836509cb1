"""Ensembles: trained classifiers averaged into one model file that runs like any other."""

from __future__ import annotations

import pytest
import torch

from lungus.cli import main
from lungus.errors import LungUSError
from lungus.infer.recipes import random_model_file
from lungus.models import available_models, build_model, load_model_file
from lungus.models.ensemble import ClipEnsemble, write_ensemble_file
from lungus.train.config import TrainConfig
from lungus.train.setup import prepare_run

torch.set_num_threads(1)

TINY = {"size": 32, "frames": 4, "model_args": {"width": 4}}


def _clip(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 1, 4, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("members")
    return [random_model_file(folder / f"m{seed}.pt", "bline2", "frame_cnn", seed=seed, name=f"m{seed}", **TINY)
            for seed in (1, 2, 3)]


@pytest.fixture(scope="module")
def ensemble_path(members, tmp_path_factory):
    return write_ensemble_file(tmp_path_factory.mktemp("ensemble") / "ensemble.pt", members)


def test_the_ensemble_probability_is_the_members_mean():
    torch.manual_seed(0)
    parts = [build_model("frame_cnn", 3, width=4).eval() for _ in range(3)]
    x = _clip()
    with torch.no_grad():
        expected = torch.stack([m(x).softmax(dim=1) for m in parts]).mean(dim=0)
        got = ClipEnsemble(parts).eval()(x).softmax(dim=1)
    torch.testing.assert_close(got, expected)


def test_an_ensemble_file_loads_with_weights_only_and_scores_as_its_members(members, ensemble_path):
    loaded = load_model_file(ensemble_path)
    assert loaded.card.architecture["name"] == "ensemble"
    assert loaded.card.extra["member_names"] == ["m1", "m2", "m3"]
    x = _clip(1)
    with torch.no_grad():
        expected = torch.stack([load_model_file(m).model(x).softmax(dim=1) for m in members]).mean(dim=0)
        torch.testing.assert_close(loaded.model(x).softmax(dim=1), expected)


def test_explain_averages_the_members(ensemble_path):
    model = load_model_file(ensemble_path).model
    with torch.no_grad():
        out = model.explain(_clip(2))
        torch.testing.assert_close(out["logits"], model(_clip(2)))
    assert out["frame_logits"].shape == (2, 4, 2)
    torch.testing.assert_close(out["frame_weights"].sum(dim=1), torch.ones(2))
    assert out["class_maps"].shape[:3] == (2, 4, 2)


def test_members_fed_differently_are_refused(members, tmp_path):
    other = random_model_file(tmp_path / "other.pt", "bline2", "frame_cnn", size=48, frames=4,
                              model_args={"width": 4})
    with pytest.raises(LungUSError, match=r"other\.pt.*preprocessing differs"):
        write_ensemble_file(tmp_path / "e.pt", [members[0], other])


def test_an_ensemble_is_not_a_member(members, ensemble_path, tmp_path):
    with pytest.raises(LungUSError, match="already an ensemble"):
        write_ensemble_file(tmp_path / "e.pt", [members[0], ensemble_path])


def test_an_ensemble_is_not_trained_by_name(tiny_collection, tmp_path):
    assert "ensemble" not in available_models()
    config = TrainConfig(manifest=str(tiny_collection), out=str(tmp_path / "run"), model="ensemble")
    with pytest.raises(LungUSError, match="assembled from trained model files"):
        prepare_run(config, log=lambda _m: None)


def test_the_command_writes_an_ensemble_that_exports_to_both_formats(members, tmp_path, capsys):
    out = tmp_path / "e.pt"
    assert main(["ensemble", *map(str, members[:2]), "--out", str(out)]) == 0
    assert "2 models averaged" in capsys.readouterr().out
    for fmt in ("onnx", "torchscript"):
        assert main(["export", "--model", str(out), "--format", fmt]) == 0
        assert "checked:" in capsys.readouterr().out


def test_the_command_needs_two_models(members, tmp_path, capsys):
    assert main(["ensemble", str(members[0]), "--out", str(tmp_path / "e.pt")]) == 2
    assert "needs at least 2 model files" in capsys.readouterr().err


def test_infer_scores_and_explains_clips_with_an_ensemble(ensemble_path, tiny_collection, tmp_path):
    import csv

    out = tmp_path / "results"
    assert main(["infer", str(tiny_collection), "--model", str(ensemble_path), "--out", str(out), "--explain",
                 "--device", "cpu"]) == 0
    with open(out / "clips.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 16 and not any(row["error"] for row in rows)
    assert all(abs(float(r["p_absent"]) + float(r["p_present"]) - 1) < 1e-3 for r in rows)
    assert len(list((out / "explain").glob("*.png"))) == 16


def test_segmenters_are_not_ensembled(members, tiny_models, tmp_path):
    with pytest.raises(LungUSError, match="only clip classifiers can be ensembled"):
        write_ensemble_file(tmp_path / "e.pt", [tiny_models["segmenter"], members[0]])
    assert not (tmp_path / "e.pt").exists()
