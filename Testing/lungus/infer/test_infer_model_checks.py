"""Wrong answers are not accepted silently: NaN or infinite logits and logits shaped unlike the card
fail the clip with one line naming the model (a batch records it and goes on), and a model call
that never returns fails the clip after the model call time limit."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from lungus.cli import main
from lungus.errors import LungUSError
from lungus.evaluate.model_eval import evaluate_model
from lungus.infer import Analyzer
from lungus.infer.recipes import recipe_card
from lungus.model_calls import ModelCallLimit
from lungus.models import export_torchscript, load_model_file, save_model_file
from lungus.models.model_file import FORMAT_VERSION
from lungus.models.torchscript_onnx import CARD_EXTRA_FILE, CONTENT_DIGEST, torchscript_digest

NON_FINITE = "the model gave NaN or infinite logits"


def nan_copy(source: Path, target: Path) -> Path:
    """A real model file of the same model and card whose weights are all NaN (digest recomputed)."""
    loaded = load_model_file(source)
    with torch.no_grad():
        for parameter in loaded.model.parameters():
            parameter.fill_(math.nan)
    return save_model_file(target, loaded.model, loaded.card)


def two_clips(tmp_path: Path, clip_paths: list[Path]) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for path in clip_paths[:2]:
        shutil.copy(path, folder / path.name)
    return folder


def clip_rows(out: Path) -> list[dict]:
    with open(out / "clips.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_nan_classifier_fails_the_clip_with_one_line(tmp_path, tiny_models, tiny_clip_paths):
    model = nan_copy(tiny_models["classifier"], tmp_path / "nan.pt")
    analyzer = Analyzer(model, device="cpu")
    with pytest.raises(LungUSError, match=rf"nan\.pt: {NON_FINITE} \(\d+ of \d+ values\)"):
        analyzer.analyse(tiny_clip_paths[0])


def test_nan_segmenter_in_a_batch_records_each_clip_and_goes_on(tmp_path, tiny_models, tiny_clip_paths, capsys):
    model = nan_copy(tiny_models["segmenter"], tmp_path / "nan-seg.pt")
    folder = two_clips(tmp_path, tiny_clip_paths)
    out = tmp_path / "out"
    code = main(["infer", str(folder), "--segmenter", str(model), "--out", str(out), "--device", "cpu",
                 "--runtime", "torch", "--quiet"])
    assert code == 1
    rows = clip_rows(out)
    assert len(rows) == 2
    assert all(f"nan-seg.pt: {NON_FINITE}" in row["error"] for row in rows)


def test_torchscript_whose_card_names_fewer_classes_than_it_outputs_is_refused(
    tmp_path, tiny_models, tiny_clip_paths
):
    """A bline3 model exported, then its embedded card edited to say bline2 (2 classes)."""
    loaded = load_model_file(tiny_models["bline3"])
    path = export_torchscript(loaded.model, loaded.card, tmp_path / "relabelled.ts")
    with zipfile.ZipFile(path) as archive:
        items = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for info, data in items:
            if info.filename.endswith(f"/extra/{CARD_EXTRA_FILE}"):
                payload = json.loads(data)
                payload["card"].update(task="bline2", class_names=["absent", "present"])
                data = json.dumps(payload).encode()
            archive.writestr(info, data)
    analyzer = Analyzer(path, device="cpu")
    assert analyzer.classifier.card.num_classes == 2
    with pytest.raises(LungUSError, match=r"relabelled\.ts: the model's logits have shape \(\d+, 3\), not the "
                                          r"\(\d+, 2\) its card implies \(2 bline2 classes: absent, present\)"):
        analyzer.analyse(tiny_clip_paths[0])


def test_evaluate_refuses_a_nan_model(tmp_path, tiny_models, tiny_collection):
    model = nan_copy(tiny_models["classifier"], tmp_path / "nan.pt")
    with pytest.raises(LungUSError, match=rf"nan\.pt: {NON_FINITE}"):
        evaluate_model(model, tiny_collection, tmp_path / "eval", n_boot=0, log=lambda _: None)


def test_a_call_over_the_limit_fails_and_the_model_is_not_called_again(tmp_path):
    release = threading.Event()
    limit = ModelCallLimit(tmp_path / "slow.ts", seconds=0.2)
    started = time.monotonic()
    with pytest.raises(LungUSError, match=r"slow\.ts: the model did not return within 0\.2 s"):
        limit(lambda: release.wait(30))
    assert time.monotonic() - started < 5
    with pytest.raises(LungUSError, match=r"slow\.ts: an earlier call of this model did not return within 0\.2 s"):
        limit(lambda: "never called")
    release.set()
    assert ModelCallLimit(tmp_path / "quick.ts", seconds=5)(lambda: 42) == 42


class NeverReturns(nn.Module):
    """A forward that loops on a tensor condition that stays true (y grows to inf; inf == inf)."""

    def forward(self, x: Tensor) -> Tensor:
        y = x.sum()
        while bool(y == y):
            y = y + 1.0
        return x


def looping_torchscript(path: Path) -> Path:
    """A TorchScript file lungus loads (a valid card, its content digest) whose forward never ends."""
    card = recipe_card("bline2", "frame_cnn", size=32, frames=4, model_args={"width": 4})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(NeverReturns())
        unsigned = io.BytesIO()
        torch.jit.save(scripted, unsigned)
        payload = {"format_version": FORMAT_VERSION, "card": card.to_dict(), CONTENT_DIGEST: torchscript_digest(unsigned)}
        torch.jit.save(scripted, str(path), _extra_files={CARD_EXTRA_FILE: json.dumps(payload)})
    return path


def test_torchscript_forward_that_never_returns_fails_each_clip_and_the_run_ends(tmp_path, tiny_clip_paths):
    """In a subprocess: the stuck call keeps running until the process ends, which it must do
    cleanly (exit 1: clips failed; not an abort in torch's teardown)."""
    model = looping_torchscript(tmp_path / "loop.ts")
    folder, out = two_clips(tmp_path, tiny_clip_paths), tmp_path / "out"
    command = [sys.executable, "-m", "lungus", "infer", str(folder), "--model", str(model), "--out", str(out),
               "--device", "cpu", "--quiet", "--model-call-timeout", "2", "--workers", "0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 1, done.stderr
    assert "terminate called" not in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 200
    errors = sorted(row["error"] for row in clip_rows(out))
    assert "loop.ts: an earlier call of this model did not return within 2 s" in errors[0]
    assert "loop.ts: the model did not return within 2 s (the model call time limit)" in errors[1]


def looping_onnx(path: Path) -> Path:
    """An ONNX file lungus loads (card, digest) whose Loop has no trip count and a condition that stays true."""
    import onnx
    from onnx import TensorProto, helper

    from lungus.models.torchscript_onnx import (
        INPUT_NAME,
        ONNX_CARD_KEY,
        ONNX_DIGEST_KEY,
        ONNX_VERSION_KEY,
        OUTPUT_NAME,
        onnx_digest,
    )

    card = recipe_card("bline2", "frame_cnn", size=32, frames=4, model_args={"width": 4})
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", [INPUT_NAME], ["start"], keepdims=0),
         helper.make_node("Loop", ["", "always", "start"], [OUTPUT_NAME], body=body)],
        "never_returns",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["b", 1, "t", "h", "w"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [])],
        [helper.make_tensor("always", TensorProto.BOOL, [], [True])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    for key, value in ((ONNX_CARD_KEY, json.dumps(card.to_dict())), (ONNX_VERSION_KEY, str(FORMAT_VERSION)),
                       (ONNX_DIGEST_KEY, onnx_digest(proto))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save_model(proto, str(path))
    return path


def test_onnx_loop_that_never_ends_is_stopped_at_the_limit(tmp_path, tiny_clip_paths):
    """ONNX Runtime can be told to stop: the clip fails and no call is left running."""
    from lungus.model_calls import model_calls_running

    analyzer = Analyzer(looping_onnx(tmp_path / "loop.onnx"), device="cpu", model_call_timeout_s=1.0)
    with pytest.raises(LungUSError, match=r"loop\.onnx: the model did not return within 1 s"):
        analyzer.analyse(tiny_clip_paths[0])
    deadline = time.monotonic() + 20
    while model_calls_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not model_calls_running()


def test_analyse_stops_a_model_call_at_its_model_call_timeout(tmp_path, tiny_clip_paths):
    """`lungus analyse` (Slicer's background job) takes the same limit as infer: one line, exit 2, no results file."""
    model, out = looping_torchscript(tmp_path / "loop.ts"), tmp_path / "clip.npz"
    command = [sys.executable, "-m", "lungus", "analyse", str(tiny_clip_paths[0]), "--model", str(model),
               "--out", str(out), "--device", "cpu", "--model-call-timeout", "2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 2, done.stderr
    assert "the model did not return within 2 s" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()
