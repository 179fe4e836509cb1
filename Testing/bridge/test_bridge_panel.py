"""LungUSBLinesLib.panel: the choices the panels offer, saved with the scene, and fresh output folders."""

from __future__ import annotations

import datetime

import pytest

from lungus.errors import LungUSError
from LungUSBLinesLib import panel

TINY_FRAME_MODEL = {"size": 32, "frames": 4, "model_args": {"width": 4}}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Real tiny model files of each kind the explanation list must tell apart."""
    pytest.importorskip("torch")
    from lungus.infer.recipes import random_model_file
    from lungus.models.export import export_torchscript
    from lungus.models.model_file import load_model_file

    folder = tmp_path_factory.mktemp("models")
    files = {
        "frame_cnn": random_model_file(folder / "frame_cnn.pt", "bline2", "frame_cnn", **TINY_FRAME_MODEL),
        "cnn_lstm": random_model_file(
            folder / "cnn_lstm.pt",
            "bline2",
            "cnn_lstm",
            size=32,
            frames=4,
            model_args={"width": 4, "hidden": 8, "attention_hidden": 4},
        ),
        "segmenter": random_model_file(
            folder / "seg.pt", "seg", "unet_small", size=32, model_args={"width": 4, "levels": 2}
        ),
    }
    loaded = load_model_file(files["frame_cnn"])
    files["torchscript"] = export_torchscript(loaded.model, loaded.card, folder / "frame_cnn.ts.pt")
    return files


def test_frame_cnn_offers_gradcam_and_class_maps_but_not_attention(model_files):
    assert panel.explanation_methods(model_files["frame_cnn"]) == ("gradcam", "cam")


def test_attention_model_offers_attention_but_not_class_maps(model_files):
    assert panel.explanation_methods(model_files["cnn_lstm"]) == ("gradcam", "attention")


@pytest.mark.parametrize("kind", ["segmenter", "torchscript"])
def test_segmenters_and_exported_files_offer_no_explanation(model_files, kind):
    assert panel.explanation_methods(model_files[kind]) == ()


def test_choices_always_start_with_none(model_files):
    assert panel.explanation_choices(model_files["frame_cnn"]) == (
        ("None", ""),
        ("Grad-CAM", "gradcam"),
        ("Class activation map", "cam"),
    )


@pytest.mark.parametrize("path", [None, "", "  "])
def test_no_classifier_offers_only_none(path):
    assert panel.explanation_choices(path) == (("None", ""),)


def test_a_file_that_is_not_a_model_offers_only_none(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    assert panel.explanation_choices(text) == (("None", ""),)


@pytest.mark.parametrize(
    "choices, default",
    [
        (panel.DEVICE_CHOICES, panel.DEFAULT_DEVICE),
        (panel.EXPLANATION_CHOICES, panel.DEFAULT_EXPLANATION),
        (panel.TASK_CHOICES, panel.DEFAULT_TASK),
    ],
)
def test_each_default_is_one_of_its_choices(choices, default):
    assert panel.check_choice("value", default, choices) == default


def test_explanation_choices_are_what_the_engine_accepts():
    from lungus.infer.analyzer import EXPLAIN_METHODS

    assert panel.choice_values(panel.EXPLANATION_CHOICES) == (panel.NO_EXPLANATION, *EXPLAIN_METHODS)


def test_task_choices_are_the_label_schemes():
    from LungUSTrainLib.training_set import LABEL_SCHEMES

    assert set(panel.choice_values(panel.TASK_CHOICES)) == set(LABEL_SCHEMES)


def test_a_value_not_offered_is_refused_with_the_choices():
    with pytest.raises(LungUSError, match=r"device must be one of 'auto', 'cpu', 'cuda', got 'tpu'"):
        panel.check_choice("device", "tpu", panel.DEVICE_CHOICES)


def test_new_output_folder_is_timestamped_under_the_base(tmp_path):
    now = datetime.datetime(2026, 12, 3, 15, 4, 5)
    assert panel.new_output_folder(tmp_path, "bline2", now) == tmp_path / "bline2-20261203-150405"


def test_new_output_folder_never_names_an_existing_one(tmp_path):
    now = datetime.datetime(2026, 12, 3, 15, 4, 5)
    first = panel.new_output_folder(tmp_path, "bline2", now)
    first.mkdir()
    second = panel.new_output_folder(tmp_path, "bline2", now)
    second.mkdir()
    third = panel.new_output_folder(tmp_path, "bline2", now)
    assert len({first, second, third}) == 3 and not third.exists()


def test_self_tests_run_when_the_engine_packages_are_installed():
    from LungUSBLinesLib.dependencies import missing_requirements
    from LungUSBLinesLib.selftest import self_test_skip_reason

    assert missing_requirements() == []  # this test environment has them all
    assert self_test_skip_reason() is None
    assert self_test_skip_reason(with_torch=True) is None


def test_train_numbers_match_the_spin_boxes_of_the_train_panel():
    import xml.etree.ElementTree as ET
    from pathlib import Path

    ui = ET.parse(Path(__file__).resolve().parents[2] / "LungUSTrain/Resources/UI/LungUSTrain.ui").getroot()
    found = {}
    for widget in ui.iter("widget"):
        if widget.get("class") == "QSpinBox":
            numbers = {
                p.get("name"): int(p.findtext("number"))
                for p in widget.iter("property")
                if p.find("number") is not None
            }
            found[widget.get("name").removesuffix("SpinBox")] = (
                numbers["minimum"],
                numbers["maximum"],
                numbers["value"],
            )
    assert found == panel.TRAIN_NUMBERS


def test_the_default_export_format_is_one_the_train_panel_offers():
    from LungUSTrainLib.export import EXPORT_FORMATS

    assert panel.DEFAULT_EXPORT_FORMAT in EXPORT_FORMATS


def test_self_tests_say_what_is_missing_and_skip_in_a_bare_python(tmp_path):
    """A Python with no site-packages (only `packaging`, which Slicer bundles): every engine
    package is missing, and the self-tests are told to skip rather than install."""
    import subprocess
    import sys
    from pathlib import Path

    import packaging

    (tmp_path / "packaging").symlink_to(Path(packaging.__file__).parent)
    bridge = Path(__file__).resolve().parents[2] / "LungUSBLines"
    code = (
        f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {str(bridge)!r}]\n"
        "from LungUSBLinesLib.selftest import self_test_skip_reason\n"
        "print(self_test_skip_reason(with_torch=True))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    reason = done.stdout.strip()
    assert reason.startswith("Skipped: the engine's Python packages are missing")
    assert "opencv-python-headless" in reason and "torch (install the PyTorch extension)" in reason
