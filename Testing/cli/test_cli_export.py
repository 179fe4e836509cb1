"""End to end: `lungus export` embeds the card, and `lungus infer` runs the exported files."""

from __future__ import annotations

import csv

import pytest
import torch

from lungus.cli import main
from lungus.models import read_card
from lungus.models.model_file import read_model_file_card

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_files(tiny_models):
    return tiny_models["classifier"], tiny_models["segmenter"]


def probabilities(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            (row["clip"], float(row["p_present"]), row["bline_count_max"]) for row in csv.DictReader(handle)
        ]


def test_exported_models_carry_the_card_and_score_clips_like_the_model_files(
    model_files, tiny_collection, tmp_path, capsys
):
    cls, seg = model_files
    assert (
        main(["export", "--model", str(cls), "--format", "torchscript", "--out", str(tmp_path / "cls.ts")])
        == 0
    )
    assert main(["export", "--model", str(seg), "--format", "onnx", "--out", str(tmp_path / "seg.onnx")]) == 0
    printed = capsys.readouterr().out
    assert printed.count("card embedded") == 2 and printed.count("checked:") == 2
    assert read_card(tmp_path / "cls.ts").to_dict() == read_model_file_card(cls).to_dict()
    assert read_card(tmp_path / "seg.onnx").to_dict() == read_model_file_card(seg).to_dict()

    common = ["--device", "cpu", "--quiet", "--runtime", "torch"]
    assert (
        main(
            [
                "infer",
                str(tiny_collection),
                "--model",
                str(cls),
                "--segmenter",
                str(seg),
                "--out",
                str(tmp_path / "pt"),
                *common,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "infer",
                str(tiny_collection),
                "--model",
                str(tmp_path / "cls.ts"),
                "--segmenter",
                str(tmp_path / "seg.onnx"),
                "--out",
                str(tmp_path / "exported"),
                *common,
            ]
        )
        == 0
    )
    original, exported = (
        probabilities(tmp_path / "pt" / "clips.csv"),
        probabilities(tmp_path / "exported" / "clips.csv"),
    )
    assert [row[0] for row in exported] == [row[0] for row in original]
    assert [row[1] for row in exported] == pytest.approx([row[1] for row in original], abs=2e-4)
    assert sum(a[2] == b[2] for a, b in zip(original, exported)) >= len(original) - 1


def test_export_refuses_to_overwrite_its_model_file(model_files, capsys):
    cls, _ = model_files
    assert main(["export", "--model", str(cls), "--format", "torchscript", "--out", str(cls)]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_export_of_a_missing_file_is_one_line(tmp_path, capsys):
    assert main(["export", "--model", str(tmp_path / "none.pt"), "--format", "onnx"]) == 2
    assert "no such model file" in capsys.readouterr().err
