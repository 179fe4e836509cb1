"""LungUSBLinesLib.explanation_check: which explanation methods a classifier file supports, asked
of a real `lungus analyse --list-explanations` subprocess, as the review panel asks it so that
torch never loads in Slicer's process and the window never waits for a model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from LungUSBLinesLib.explanation_check import ExplanationCheck, parse_explanations
from LungUSBLinesLib.processes import popen_launcher

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECK_TIMEOUT_S = 300
NONE, GRADCAM, LIME = ("None", ""), ("Grad-CAM", "gradcam"), ("LIME (superpixels)", "lime")
CAM, ATTENTION = ("Class activation map", "cam"), ("Attention", "attention")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Real tiny model files of each kind the explanation list must tell apart, and a file that
    is not a model."""
    pytest.importorskip("torch")
    from lungus.infer.recipes import random_model_file
    from lungus.models.model_file import load_model_file
    from lungus.models.torchscript_onnx import export_torchscript

    folder = tmp_path_factory.mktemp("models")
    frame = {"size": 32, "frames": 4}
    files = {
        "frame_cnn": random_model_file(folder / "frame_cnn.pt", "bline2", "frame_cnn", **frame, model_args={"width": 4}),
        "cnn_lstm": random_model_file(
            folder / "cnn_lstm.pt", "bline2", "cnn_lstm", **frame,
            model_args={"width": 4, "hidden": 8, "attention_hidden": 4},
        ),
        "segmenter": random_model_file(
            folder / "seg.pt", "seg", "unet_small", size=32, model_args={"width": 4, "levels": 2}
        ),
    }
    loaded = load_model_file(files["frame_cnn"])
    files["torchscript"] = export_torchscript(loaded.model, loaded.card, folder / "frame_cnn.ts.pt")
    files["notes"] = folder / "notes.pt"
    files["notes"].write_text("not a model")
    return files


@pytest.fixture(scope="module")
def answered(model_files):
    """One check per file, all run at once (real subprocesses), each waited for."""
    checks = {kind: ExplanationCheck(path).start() for kind, path in model_files.items()}
    return {kind: check.wait(CHECK_TIMEOUT_S) for kind, check in checks.items()}


@pytest.mark.torch
def test_frame_cnn_offers_gradcam_lime_and_class_maps_but_not_attention(answered):
    assert answered["frame_cnn"].methods == ("gradcam", "lime", "cam")
    assert answered["frame_cnn"].choices() == (NONE, GRADCAM, LIME, CAM)


@pytest.mark.torch
def test_attention_model_offers_attention_but_not_class_maps(answered):
    assert answered["cnn_lstm"].methods == ("gradcam", "lime", "attention")
    assert answered["cnn_lstm"].choices() == (NONE, GRADCAM, LIME, ATTENTION)


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["segmenter", "torchscript"])
def test_segmenters_and_exported_files_offer_no_explanation(answered, kind):
    assert answered[kind].methods == ()
    assert answered[kind].choices() == (NONE,)


@pytest.mark.torch
def test_a_file_that_is_not_a_model_offers_only_none(answered):
    assert answered["notes"].process.returncode == 2
    assert answered["notes"].choices("cam") == (NONE,)


@pytest.mark.torch
def test_a_choice_the_model_lacks_is_dropped_once_it_answers(answered):
    assert answered["frame_cnn"].choices("attention") == (NONE, GRADCAM, LIME, CAM)


@pytest.mark.parametrize("path", [None, "", "  ", "/no/such/model.pt"])
def test_no_classifier_file_offers_only_none_without_a_process(path):
    check = ExplanationCheck(path).start()
    assert check.process is None and not check.poll()
    assert check.choices("gradcam") == (NONE,)


@pytest.mark.torch
def test_until_it_answers_none_what_every_model_file_has_and_the_current_choice_are_offered(model_files):
    check = ExplanationCheck(model_files["cnn_lstm"]).start()
    try:
        assert check.poll()  # importing torch alone takes longer than this
        assert check.choices() == (NONE, GRADCAM, LIME)
        # A choice saved with the scene stays until the engine says whether the model has it.
        assert check.choices("cam") == (NONE, GRADCAM, LIME, CAM)
    finally:
        check.cancel(wait=True)


@pytest.mark.torch
def test_a_cancelled_check_ends_and_decides_nothing(model_files):
    check = ExplanationCheck(model_files["cnn_lstm"]).start()
    check.cancel(wait=True)  # the panel's path changed
    assert not check.poll() and not check.process.running
    assert check.methods is None and check.choices() == (NONE, GRADCAM, LIME)


def _torchless_launcher(arguments, environment, cwd):
    """Runs ``python -m lungus ...`` in a Python where torch cannot be imported, as in a fresh
    Slicer before the PyTorch extension has installed it."""
    python, _m, _lungus, *rest = arguments
    code = (
        "import runpy, sys\nsys.modules['torch'] = None\n"
        "runpy.run_module('lungus', run_name='__main__', alter_sys=True)"
    )
    return popen_launcher([python, "-c", code, *rest], environment, cwd)


@pytest.mark.torch
def test_without_pytorch_the_check_offers_none_gradcam_and_lime(model_files):
    check = ExplanationCheck(model_files["frame_cnn"], launch=_torchless_launcher).start()
    check.wait(CHECK_TIMEOUT_S)
    assert check.process.returncode not in (0, 2)  # it could not read the file
    assert check.choices() == (NONE, GRADCAM, LIME)


def test_the_answer_line_is_read_and_other_lines_are_not():
    assert parse_explanations('{"model": "/m.pt", "explanations": ["gradcam", "cam"]}') == ("gradcam", "cam")
    for line in ("progress 0/1 load", "[1, 2]", '{"model": "/m.pt"}', ""):
        assert parse_explanations(line) is None


@pytest.mark.torch
def test_the_calling_process_never_imports_torch(model_files):
    """What froze the window: torch imported and a model loaded in Slicer's own process. A fresh
    process (standing in for Slicer's) asks as the panel does; torch stays out of it."""
    script = f"""
import sys
sys.path[:0] = {[str(REPO_ROOT / "LungUSBLines")]!r}
from LungUSBLinesLib.explanation_check import ExplanationCheck
check = ExplanationCheck({str(model_files["cnn_lstm"])!r}).start().wait({CHECK_TIMEOUT_S})
print(",".join(value for _title, value in check.choices()), "torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == [",gradcam,lime,attention", "False"]
