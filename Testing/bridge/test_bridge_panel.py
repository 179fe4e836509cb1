"""LungUSBLinesLib.panel: the choices the panels offer, saved with the scene, and fresh output folders."""

from __future__ import annotations

import datetime

import pytest

from lungus.errors import LungUSError
from LungUSBLinesLib import panel


def test_explanation_choices_start_with_none_in_the_panels_order():
    assert panel.explanation_choices(("attention", "gradcam")) == (
        ("None", ""),
        ("Grad-CAM", "gradcam"),
        ("Attention", "attention"),
    )


def test_lime_is_offered_under_its_title_after_grad_cam():
    assert panel.explanation_choices(("cam", "lime", "gradcam")) == (
        ("None", ""),
        ("Grad-CAM", "gradcam"),
        ("LIME (superpixels)", "lime"),
        ("Class activation map", "cam"),
    )


def test_no_supported_method_offers_only_none():
    assert panel.explanation_choices(()) == (("None", ""),)


def test_an_unknown_method_is_never_offered():
    assert panel.explanation_choices(("gradcam", "saliency", "")) == (("None", ""), ("Grad-CAM", "gradcam"))


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


def test_explanation_choices_are_the_engines_methods_in_its_order():
    from lungus.explanations import EXPLAIN_METHODS

    assert panel.choice_values(panel.EXPLANATION_CHOICES) == (panel.NO_EXPLANATION, *EXPLAIN_METHODS)


def test_the_bridge_accepts_exactly_the_engines_explanation_methods():
    from lungus.explanations import EXPLAIN_METHODS
    from LungUSBLinesLib.analysis import checked_explain

    assert [checked_explain(method, classifier="model") for method in EXPLAIN_METHODS] == list(EXPLAIN_METHODS)
    with pytest.raises(LungUSError, match="explain must be one of gradcam, lime, cam, attention, got 'saliency'"):
        checked_explain("saliency", classifier="model")


@pytest.mark.torch
def test_the_analyzer_accepts_exactly_the_engines_explanation_methods():
    from lungus.explanations import EXPLAIN_METHODS
    from lungus.infer import analyzer

    assert analyzer.EXPLAIN_METHODS is EXPLAIN_METHODS


def test_task_choices_are_the_engines_classification_tasks_in_its_order():
    from lungus.data.labels.tasks import CLASSIFICATION_TASKS, DEFAULT_TASK

    assert panel.choice_values(panel.TASK_CHOICES) == CLASSIFICATION_TASKS and panel.DEFAULT_TASK == DEFAULT_TASK


def test_device_choices_are_engine_device_names():
    from lungus.device import DEFAULT_DEVICE, DEVICE_NAMES

    assert set(panel.choice_values(panel.DEVICE_CHOICES)) <= set(DEVICE_NAMES)
    assert panel.DEFAULT_DEVICE == DEFAULT_DEVICE


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


@pytest.mark.torch
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
    from LungUSTrainLib.sequence_export import EXPORT_FORMATS

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
