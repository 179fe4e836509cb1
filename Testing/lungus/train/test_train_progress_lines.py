"""`lungus train --progress-lines`: one fraction over the whole run, also inside an epoch."""

from __future__ import annotations

from lungus.cli import main as lungus_main
from lungus.progress_lines import ProgressLine


def _train(tiny_collection, out, capsys, *options):
    arguments = ["train", "--manifest", str(tiny_collection), "--out", str(out), "--size", "32", "--frames", "4",
                 "--batch-size", "2", "--threads", "1", "--model-arg", "width=4", "--progress-lines", *options]
    assert lungus_main(arguments) == 0
    output = capsys.readouterr().out.splitlines()
    return output, [p for p in map(ProgressLine.parse, output) if p is not None]


def test_progress_counts_epochs_and_batches_inside_them(tiny_collection, tmp_path, capsys):
    output, progress = _train(tiny_collection, tmp_path / "run", capsys, "--epochs", "2")
    assert {p.total for p in progress} == {2}
    done = [p.done for p in progress]
    assert done == sorted(done) and done[-1] == 2
    inside = [p for p in progress if 0 < p.done < 1]
    assert inside and all(p.what.startswith("epoch 1/2: batch ") for p in inside)
    assert any(p.done == 1 and p.what.startswith("epoch 1/2  loss ") for p in progress)
    assert any(line.startswith("epoch 2/2  loss ") for line in output)  # the human lines stay


def test_an_early_stop_still_ends_at_the_whole(tiny_collection, tmp_path, capsys):
    _, progress = _train(tiny_collection, tmp_path / "run", capsys, "--epochs", "30", "--patience", "0",
                         "--lr", "1e-9")
    assert progress[-1].done == progress[-1].total == 30 and progress[-1].what.startswith("saved model.pt")
    assert sum(p.what.startswith("epoch ") and "loss" in p.what for p in progress) < 30


def test_without_the_flag_there_are_no_progress_lines(tiny_collection, tmp_path, capsys):
    arguments = ["train", "--manifest", str(tiny_collection), "--out", str(tmp_path / "run"), "--size", "32",
                 "--frames", "4", "--epochs", "1", "--batch-size", "4", "--threads", "1", "--model-arg", "width=4"]
    assert lungus_main(arguments) == 0
    output = capsys.readouterr().out.splitlines()
    assert not any(ProgressLine.parse(line) for line in output) and any(line.startswith("epoch 1/1") for line in output)
