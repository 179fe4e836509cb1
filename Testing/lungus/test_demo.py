import json

import pytest

from lungus.demo import DemoConfig, run_demo
from lungus.errors import LungUSError

TINY = DemoConfig(clips=24, patients=12, frames=8, sim_size=64, input_size=32, window=4, epochs=2, width=4)


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    run_demo(out, TINY, log=lambda _m: None)
    return out


def test_demo_writes_summary_with_both_models_and_a_comparison(demo_out):
    summary = json.loads((demo_out / "summary.json").read_text())
    for name in ("crowd", "expert"):
        assert 0.0 <= summary[name]["auc"] <= 1.0
        assert summary[name]["n_patients"] >= 2
        low, high = summary[name]["auc_ci"]
        assert low <= summary[name]["auc"] <= high
    comparison = summary["comparison"]
    assert comparison["auc_diff"] == pytest.approx(summary["crowd"]["auc"] - summary["expert"]["auc"])
    assert 0 < comparison["p_value"] <= 1
    assert "crowd-majority" in summary["label_agreement"]["accuracy_vs_truth"]


def test_demo_report_links_figures_that_exist(demo_out):
    report = (demo_out / "report.md").read_text()
    assert "crowd-trained" in report
    for link in ("compare/roc_compare.png", "eval/crowd/confusion.png", "eval/expert/confusion.png"):
        assert link in report
        assert (demo_out / link).is_file()


def test_demo_refuses_to_overwrite_without_asking(demo_out):
    with pytest.raises(LungUSError, match="--overwrite"):
        run_demo(demo_out, TINY, log=lambda _m: None)


def test_the_comparison_names_the_crowd_and_the_expert_trained_models(demo_out):
    comparison = json.loads((demo_out / "summary.json").read_text())["comparison"]
    assert (comparison["name_a"], comparison["name_b"]) == ("crowd-trained", "expert-trained (noisy)")
