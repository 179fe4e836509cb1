"""Model files: a plain dict read with weights_only=True; clear one-line errors for anything else."""

from __future__ import annotations

import json

import pytest
import torch

from lungus.errors import LungUSError
from lungus.models import (
    IMAGENET_GRAY,
    ModelCard,
    architecture,
    build_model,
    load_model_file,
    read_card,
    save_model_file,
    task_class_names,
)

torch.set_num_threads(1)

ARGS = {"width": 4, "attention_hidden": 8}


def make_card(
    kind: str = "bline2", name: str = "frame_cnn", args: dict | None = None, **changes
) -> ModelCard:
    """A valid card for task ``kind``, then ``changes`` applied over it."""
    task = kind
    fields = {
        "task": task,
        "class_names": task_class_names(task),
        "architecture": architecture(name, **(ARGS if args is None else args)),
        "preprocessing": {
            "size": [32, 32],
            "frames": None if task == "seg" else 4,
            "target_fps": 10.0,
            "normalisation": dict(IMAGENET_GRAY),
            "fan_crop": True,
        },
        "label_source": "crowd-soft",
        "training_data": {"clips": 12, "patients": 4, "class_counts": {"absent": 6, "present": 6}},
        "validation_metrics": {"auc": 0.9, "auc_ci": [0.8, 0.97], "n_clips": 12, "n_patients": 4},
    }
    fields.update(changes)
    return ModelCard(**fields).validate()


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = build_model("frame_cnn", 2, **ARGS)
    # Move BatchNorm statistics off their defaults so a round trip that dropped buffers would show.
    m.train()
    with torch.no_grad():
        m(torch.randn(4, 1, 3, 32, 32))
    return m.eval()


@pytest.fixture
def model_path(tmp_path, model):
    return save_model_file(tmp_path / "model.pt", model, make_card().stamped())


def test_model_file_is_a_plain_dict_that_loads_with_weights_only(model_path):
    payload = torch.load(model_path, weights_only=True)
    assert set(payload) == {"format_version", "state_dict", "card"}
    assert payload["format_version"] == 1
    json.dumps(payload["card"])  # the card is plain JSON-able data


def test_round_trip_gives_identical_outputs(model_path, model):
    loaded = load_model_file(model_path)
    x = torch.randn(2, 1, 5, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    assert not loaded.model.training


def test_round_trip_keeps_the_card(model_path):
    card = load_model_file(model_path).card
    assert card.task == "bline2" and card.class_names == ["absent", "present"]
    assert card.architecture["args"]["width"] == 4 and card.preprocessing["frames"] == 4
    assert card.validation_metrics["auc_ci"] == [0.8, 0.97]


def test_stamped_card_records_software_and_utc_date(model_path):
    card = read_card(model_path)
    assert {"lungus", "torch", "torchvision", "numpy", "python"} <= set(card.software)
    assert card.created.endswith("Z") and card.created[:2] == "20"


def test_segmenter_round_trip(tmp_path):
    seg = build_model("unet_small", 6, width=4, levels=3).eval()
    card = make_card("seg", "unet_small", {"width": 4, "levels": 3}, label_source="truth")
    loaded = load_model_file(save_model_file(tmp_path / "seg.pt", seg, card))
    x = torch.randn(1, 1, 48, 40)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), seg(x))
    assert loaded.card.class_names[3] == "B-line"


def test_saving_replaces_atomically_and_leaves_no_temp_files(tmp_path, model):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")
    save_model_file(path, model, make_card())
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    load_model_file(path)


class Tampered:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_file_with_python_objects_is_refused(tmp_path, model_path):
    payload = torch.load(model_path, weights_only=True)
    payload["card"]["extra"] = {"hook": Tampered()}
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(LungUSError, match=r"evil\.pt: refused: the file holds Python objects") as error:
        load_model_file(tmp_path / "evil.pt")
    assert "\n" not in str(error.value)


def test_garbage_bytes_are_not_a_model_file(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x00\x01not a zip or pickle" * 10)
    with pytest.raises(LungUSError, match=r"junk\.pt: not a readable model file"):
        load_model_file(tmp_path / "junk.pt")


def test_truncated_file_is_not_a_model_file(tmp_path, model_path):
    data = model_path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(LungUSError, match=r"cut\.pt: not a readable model file"):
        load_model_file(tmp_path / "cut.pt")


def test_bare_state_dict_is_not_a_model_file(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(LungUSError, match="not a lungus model file \\(no format_version\\)"):
        load_model_file(tmp_path / "weights.pt")


def test_missing_card_is_reported(tmp_path, model_path):
    payload = torch.load(model_path, weights_only=True)
    del payload["card"]
    torch.save(payload, tmp_path / "nocard.pt")
    with pytest.raises(LungUSError, match="damaged model file: 'card' is missing"):
        load_model_file(tmp_path / "nocard.pt")


@pytest.mark.parametrize(
    "version, advice",
    [(99, "update lungus to load it"), (0, "re-save the model with this lungus"), ("1", "re-save")],
)
def test_wrong_format_version_says_which_are_supported(tmp_path, model_path, version, advice):
    payload = torch.load(model_path, weights_only=True)
    payload["format_version"] = version
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(
        LungUSError,
        match=f"format_version {version!r} is not supported; this lungus reads format_version 1; {advice}",
    ):
        load_model_file(tmp_path / "other.pt")


def test_weights_that_do_not_fit_the_architecture_are_reported(tmp_path, model_path):
    payload = torch.load(model_path, weights_only=True)
    payload["card"]["architecture"]["args"]["width"] = 8
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(LungUSError, match="its weights do not fit frame_cnn"):
        load_model_file(tmp_path / "mismatch.pt")


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(LungUSError, match=r"nothere\.pt: no such model file"):
        load_model_file(tmp_path / "nothere.pt")


def test_card_for_another_architecture_is_refused(tmp_path, model):
    card = make_card(args={"width": 8})
    with pytest.raises(LungUSError, match="is not the model's"):
        save_model_file(tmp_path / "m.pt", model, card)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"task": "bline9"}, "task 'bline9' is not one of bline2, bline3, lus4, seg"),
        ({"class_names": ["no", "yes"]}, "must be the bline2 classes"),
        ({"label_source": ""}, "label_source '' must name where the labels came from, e.g. crowd-soft"),
        (
            {"architecture": {"name": "unet_small", "args": {}}},
            "needs a classifier, but unet_small is a segmenter",
        ),
        ({"architecture": {"name": "frame_cnn", "args": {"width": -1}}}, "width=-1 must be >= 4"),
        (
            {"preprocessing": {"size": [32], "frames": 4, "normalisation": IMAGENET_GRAY, "fan_crop": True}},
            r"size must be \[height, width\]",
        ),
        (
            {
                "preprocessing": {
                    "size": [32, 32],
                    "frames": 0,
                    "normalisation": IMAGENET_GRAY,
                    "fan_crop": True,
                }
            },
            "frames must be the frames per window",
        ),
        (
            {
                "preprocessing": {
                    "size": [32, 32],
                    "frames": 4,
                    "normalisation": {"mean": 0.5},
                    "fan_crop": True,
                }
            },
            "normalisation must be a mapping with numeric 'mean' and 'std'",
        ),
        ({"validation_metrics": {"auc": object()}}, "validation_metrics must be JSON-serialisable"),
    ],
)
def test_invalid_cards_say_what_to_fix(changes, message):
    with pytest.raises(ValueError, match=message):
        make_card(**changes)


def test_card_missing_fields_are_named():
    with pytest.raises(ValueError, match="model card lacks .*label_source"):
        ModelCard.from_dict(
            {
                "task": "bline2",
                "class_names": ["absent", "present"],
                "architecture": {"name": "frame_cnn"},
                "preprocessing": {},
            }
        )


def test_card_keeps_fields_from_newer_versions_under_extra():
    data = make_card().to_dict()
    data["calibration"] = {"temperature": 1.3}
    card = ModelCard.from_dict(data)
    assert card.extra["calibration"] == {"temperature": 1.3}


def test_card_fills_architecture_defaults():
    card = make_card(args={"width": 4})
    assert card.architecture["args"]["pooling"] == "attention" and card.architecture["args"]["width"] == 4


def test_a_segmenter_card_has_no_operating_point():
    with pytest.raises(ValueError, match="segmenter's card has no operating_point"):
        make_card("seg", "unet_small", {"width": 4, "levels": 2}, operating_point={"threshold": 0.5})


def test_a_damaged_operating_point_is_refused():
    with pytest.raises(ValueError, match="operating_point.threshold must be a probability"):
        make_card(operating_point={"threshold": 7})


def test_update_card_changes_the_card_and_keeps_the_weights(model_path, model):
    from lungus.models.model_file import update_card

    update_card(model_path, operating_point={"threshold": 0.3, "rule": "fixed:0.3"})
    loaded = load_model_file(model_path)
    assert loaded.card.decision.threshold == 0.3 and loaded.card.decision.rule == "fixed:0.3"
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], tensor)
