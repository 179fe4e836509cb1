"""LungUSBLinesLib.analysis_job: a clip of a real scene analysed by a real `lungus analyse`
subprocess, as the review panel runs it so Slicer's window stays live."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.errors import LungUSError  # noqa: E402
from lungus.io import read_clip  # noqa: E402
from LungUSBLinesLib.analysis import AnalyzerCache, analyse_sequence  # noqa: E402
from LungUSBLinesLib.analysis_job import AnalysisJob, AnalysisRequest, parse_progress_line  # noqa: E402
from LungUSBLinesLib.clips import load_clip  # noqa: E402
from LungUSBLinesLib.processes import JobProgress  # noqa: E402
from LungUSBLinesLib.results import add_analysis_to_scene  # noqa: E402
from LungUSBLinesLib.sequences import clip_to_sequence  # noqa: E402
from LungUSBLinesLib.tables import table_records  # noqa: E402

JOB_TIMEOUT_S = 300
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def request_(tiny_models):
    # One CPU thread in the job, as in this process (tiny_models sets it): the same arithmetic.
    return AnalysisRequest(
        str(tiny_models["classifier"]),
        str(tiny_models["segmenter"]),
        device="cpu",
        explain="gradcam",
        threads=1,
    )


@pytest.fixture
def loaded(headless, tiny_clip_paths):
    return load_clip(headless.scene, tiny_clip_paths[0])


def scene_values(nodes):
    """What an analysis put in the scene: the clip's record, the curves, every mask and heat map."""

    def frames(sequence):
        return np.stack(
            [
                slicer.util.arrayFromVolume(sequence.GetNthDataNode(i))
                for i in range(sequence.GetNumberOfDataNodes())
            ]
        )

    return {
        "record": nodes.record,
        "curves": table_records(nodes.frames_table),
        "charts": sorted(nodes.charts),
        "masks": None if nodes.mask_sequence is None else frames(nodes.mask_sequence),
        "heat": frames(nodes.heatmap_sequence),
    }


def assert_same_values(found, expected):
    assert found["record"] == expected["record"]
    assert found["curves"] == expected["curves"] and found["charts"] == expected["charts"]
    np.testing.assert_array_equal(found["masks"], expected["masks"])
    np.testing.assert_array_equal(found["heat"], expected["heat"])


def in_process_values(scene, browser, request, clip=None):
    analyzer = AnalyzerCache().get(request.classifier, request.segmenter, device=request.device)
    analysis = analyse_sequence(analyzer, browser.GetMasterSequenceNode(), clip=clip, explain=request.explain)
    return scene_values(add_analysis_to_scene(scene, browser, analysis))


def run_to_end(job):
    """Poll as the panel's timer does; the progress seen on the way."""
    seen = []
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while job.poll():
        if job.progress is not None and (not seen or seen[-1] != job.progress):
            seen.append(job.progress)
        assert time.monotonic() < deadline, "the analysis job did not end"
        time.sleep(0.05)
    if job.progress is not None and (not seen or seen[-1] != job.progress):
        seen.append(job.progress)
    return seen


def node_ids(scene):
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def test_the_jobs_results_equal_an_in_process_analysis(headless, loaded, request_):
    browser = loaded.nodes.browser
    expected = in_process_values(headless.scene, browser, request_, clip=loaded.clip)
    job = AnalysisJob(headless.scene, browser, request_, clip=loaded.clip).start()
    assert job.process.arguments[job.process.arguments.index("analyse") + 1] == str(loaded.clip.source)
    run_to_end(job)
    nodes = job.finish()
    assert nodes.browser is browser and browser.IsSynchronizedSequenceNodeID(nodes.mask_sequence.GetID())
    assert_same_values(scene_values(nodes), expected)
    assert nodes.record["clip"] == str(loaded.clip.source)
    assert not job.folder.exists()


def test_a_lime_job_shows_the_heat_map_an_in_process_analysis_gives(headless, loaded, request_):
    """The review panel's LIME choice: the job's seeded LIME maps are the in-process ones, recorded as
    the clip's heat-map sequence named for the method."""
    lime = dataclasses.replace(request_, segmenter=None, explain="lime")
    browser = loaded.nodes.browser
    expected = in_process_values(headless.scene, browser, lime, clip=loaded.clip)
    job = AnalysisJob(headless.scene, browser, lime, clip=loaded.clip).start()
    arguments = job.process.arguments
    assert arguments[arguments.index("--explain") + 1] == "lime"
    run_to_end(job)
    nodes = job.finish()
    assert nodes.heatmap_sequence.GetName().endswith(" lime")
    assert browser.IsSynchronizedSequenceNodeID(nodes.heatmap_sequence.GetID())
    assert expected["heat"].max() > 0
    np.testing.assert_array_equal(scene_values(nodes)["heat"], expected["heat"])


def test_a_fusion_model_is_analysed_like_any_classifier(headless, loaded, request_, tiny_fusion_run):
    """A `lungus train --model fusion` model file in the review panel: its job's scores, decision and
    Grad-CAM maps are the in-process ones, and the clip's record carries its card-threshold decision."""
    fusion = dataclasses.replace(request_, classifier=str(tiny_fusion_run / "model.pt"), segmenter=None)
    browser = loaded.nodes.browser
    expected = in_process_values(headless.scene, browser, fusion, clip=loaded.clip)
    job = AnalysisJob(headless.scene, browser, fusion, clip=loaded.clip).start()
    run_to_end(job)
    found = scene_values(job.finish())
    assert found["record"] == expected["record"] and found["curves"] == expected["curves"]
    np.testing.assert_array_equal(found["heat"], expected["heat"])
    from lungus.models.model_file import load_model_file

    card = load_model_file(tiny_fusion_run / "model.pt").card
    assert found["record"]["threshold"] == round(card.decision.threshold, 6)
    assert found["record"]["pred"] == ("present" if found["record"]["p_present"] >= card.decision.threshold
                                       else "absent")


def test_a_sequence_lungus_did_not_read_is_exported_and_gives_the_same_results(
    headless, tiny_clip_paths, request_
):
    clip = read_clip(tiny_clip_paths[1])
    # A name argparse would take for an option, were it passed as a separate argument.
    nodes = clip_to_sequence(headless.scene, dataclasses.replace(clip, source=None), "--from-Slicer")
    expected = in_process_values(headless.scene, nodes.browser, request_)
    job = AnalysisJob(headless.scene, nodes.browser, request_).start()
    exported = job.process.arguments[job.process.arguments.index("analyse") + 1]
    assert exported == str(job.folder / "clip.seq.nrrd")
    run_to_end(job)
    found = job.finish()
    assert_same_values(scene_values(found), expected)
    assert found.record["clip"] == "--from-Slicer" and not job.folder.exists()


def test_progress_rises_from_loading_the_models_to_1(headless, loaded, tiny_models):
    request = AnalysisRequest(None, str(tiny_models["segmenter"]), device="cpu", threads=1)
    job = AnalysisJob(headless.scene, loaded.nodes.browser, request, clip=loaded.clip).start()
    run_to_end(job)
    assert job.progress == JobProgress(1.0, "done")
    seen = [p for p in map(parse_progress_line, job.process.lines) if p is not None]
    assert seen[0] == JobProgress(0.0, "loading PyTorch and the models")
    assert [p.fraction for p in seen] == sorted(p.fraction for p in seen)
    assert "segmenting frames" in [p.message for p in seen]
    assert job.finish().mask_sequence is not None


def test_progress_lines_are_read_as_fractions_and_steps():
    assert parse_progress_line("progress 3/4 classify") == JobProgress(0.75, "classifying windows")
    assert parse_progress_line("progress 0/0 done") == JobProgress(1.0, "done")
    assert parse_progress_line("loaded the models") is None


@pytest.mark.parametrize("when", ["while it runs", "after it ended"])
def test_removing_the_clip_stops_the_job_and_adds_nothing(headless, loaded, request_, when):
    scene, browser = headless.scene, loaded.nodes.browser
    job = AnalysisJob(scene, browser, request_, clip=loaded.clip).start()
    if when == "after it ended":
        job.wait(JOB_TIMEOUT_S)
    else:
        assert job.poll()  # importing torch alone takes longer than this
    scene.RemoveNode(browser)
    before = node_ids(scene)
    run_to_end(job)
    assert job.process.returncode is not None
    if when == "while it runs":
        assert job.clip_closed and job.process.returncode != 0
    with pytest.raises(LungUSError, match=r"was closed during the analysis; no results were added"):
        job.finish()
    assert node_ids(scene) == before and not job.folder.exists()


def test_clearing_the_scene_stops_the_job_and_adds_nothing(headless, loaded, request_):
    scene = headless.scene
    job = AnalysisJob(scene, loaded.nodes.browser, request_, clip=loaded.clip).start()
    assert job.poll()
    scene.Clear(False)
    before = node_ids(scene)
    run_to_end(job)
    assert job.clip_closed and job.process.returncode is not None
    with pytest.raises(LungUSError, match="was closed during the analysis"):
        job.finish()
    assert node_ids(scene) == before


def test_cancelling_ends_the_process_and_adds_nothing(headless, loaded, request_):
    scene = headless.scene
    job = AnalysisJob(scene, loaded.nodes.browser, request_, clip=loaded.clip).start()
    before = node_ids(scene)
    assert job.poll()
    job.cancel()
    assert job.process.returncode is not None  # cancel returns once the process has ended
    run_to_end(job)
    assert job.finish() is None
    assert node_ids(scene) == before and not job.folder.exists()


@pytest.mark.torch
def test_a_failing_job_says_why_in_one_line(headless, loaded, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a model")
    job = AnalysisJob(
        headless.scene, loaded.nodes.browser, AnalysisRequest(str(broken), device="cpu")
    ).start()
    run_to_end(job)
    with pytest.raises(
        LungUSError, match=r"^the analysis failed: lungus analyse: error: .*broken\.pt"
    ) as caught:
        job.finish()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "request_arguments, message",
    [
        ({}, "choose a classifier model file, a segmenter model file, or both"),
        ({"classifier": "/no/such/model.pt"}, "no such classifier model file"),
        ({"segmenter": "SEG", "device": "gpu"}, "device must be one of"),
        ({"segmenter": "SEG", "explain": "shap"}, "explain must be one of"),
    ],
)
def test_bad_choices_are_refused_before_anything_starts(
    headless, loaded, tiny_models, request_arguments, message
):
    request_arguments = {
        k: str(tiny_models["segmenter"]) if v == "SEG" else v for k, v in request_arguments.items()
    }
    job = AnalysisJob(headless.scene, loaded.nodes.browser, AnalysisRequest(**request_arguments))
    with pytest.raises(LungUSError, match=message):
        job.start()
    assert job.process is None and job.folder is None


def test_slicers_process_never_imports_torch_for_an_analysis(tiny_models, tiny_clip_paths, tmp_path):
    """What froze the window: torch and the models loaded in Slicer's own process. A fresh
    process (standing in for Slicer's) runs the whole job as the panel does and records the
    results; torch stays out of it."""
    script = f"""
import sys, time
sys.path[:0] = {[str(REPO_ROOT / "LungUSBLines")]!r}
from LungUSBLinesLib.analysis_job import AnalysisJob, AnalysisRequest
from LungUSBLinesLib.clips import load_clip
from LungUSBLinesLib.scene import new_headless_scene

with new_headless_scene({str(tmp_path / "scene")!r}) as headless:
    loaded = load_clip(headless.scene, {str(tiny_clip_paths[0])!r})
    request = AnalysisRequest({str(tiny_models["classifier"])!r}, {str(tiny_models["segmenter"])!r},
                              device="cpu", explain="gradcam", threads=1)
    job = AnalysisJob(headless.scene, loaded.nodes.browser, request, clip=loaded.clip).start()
    while job.poll():
        time.sleep(0.05)
    nodes = job.finish()
    print("recorded", nodes.mask_sequence.GetNumberOfDataNodes(), "torch" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=JOB_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["recorded", "8", "False"]
