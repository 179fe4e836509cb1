"""Sizes a card asks for are checked before anything is allocated: an edited card with an absurd
width, input size or frame count is one clear error, not a multi-gigabyte allocation."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lungus.errors import LungUSError
from lungus.models import load_model_file, read_card

torch.set_num_threads(1)
# Virtual memory for a subprocess that imports torch and lungus and loads a tiny model (about
# 3.5 GB of address space here); the edited cards below would ask for terabytes.
ADDRESS_SPACE_CAP = 6 << 30


def edited_copy(source: Path, target: Path, edit) -> Path:
    """A copy of a model file whose card ``edit(card_dict)`` changed (weights untouched)."""
    payload = torch.load(source, weights_only=True)
    edit(payload["card"])
    torch.save(payload, target)
    return target


def infer_with_capped_memory(model: Path, clip: Path, out: Path) -> subprocess.CompletedProcess:
    """``lungus infer`` in a subprocess whose address space is capped at ADDRESS_SPACE_CAP."""
    program = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_CAP}, {ADDRESS_SPACE_CAP}))\n"
        "from lungus.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    command = [sys.executable, "-c", program, "infer", str(clip), "--model", str(model), "--out", str(out),
               "--device", "cpu", "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def set_width(width: int):
    def edit(card: dict) -> None:
        card["architecture"]["args"]["width"] = width

    return edit


def test_card_with_an_absurd_width_is_refused_before_allocation(tmp_path, tiny_models, tiny_clip_paths):
    model = edited_copy(tiny_models["classifier"], tmp_path / "wide.pt", set_width(10**6))
    done = infer_with_capped_memory(model, tiny_clip_paths[0], tmp_path / "out")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"lungus infer: error: {model}: card architecture: model frame_cnn: argument width=1000000 must be <= 256; "
        "base channels of the simple frame encoder (8-32; output 8*width)"
    )


def test_arguments_each_allowed_but_too_big_together_are_refused_by_the_parameter_count(
    tmp_path, tiny_models, tiny_clip_paths
):
    def huge_unet(card: dict) -> None:
        card["architecture"]["args"].update(width=256, levels=6)

    model = edited_copy(tiny_models["segmenter"], tmp_path / "huge.pt", huge_unet)
    with pytest.raises(LungUSError, match=r"huge\.pt: cannot rebuild the model: model unet_small .* would have "
                                          r"[\d,]+ parameters, more than the 500,000,000"):
        load_model_file(model)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"size": [100_000, 100_000]}, r"preprocessing\.size must be \[height, width\] in pixels \(1 to 2048\)"),
        ({"frames": 10**6}, r"preprocessing\.frames must be the frames per window \(1 to 256\)"),
        ({"size": [2048, 2048], "frames": 16}, r"windows of 16 x 2048 x 2048 pixels, more than 33,554,432"),
        ({"eval_stride": -3}, r"eval_stride must be a whole number of frames \(> 0\) or null"),
    ],
)
def test_card_input_sizes_beyond_the_limits_are_refused(tmp_path, tiny_models, changes, why):
    model = edited_copy(tiny_models["classifier"], tmp_path / "big.pt", lambda card: card["preprocessing"].update(changes))
    with pytest.raises(LungUSError, match=rf"big\.pt: card .*{why}"):
        read_card(model)


def test_the_memory_cap_of_these_tests_lets_a_sound_model_run(tmp_path, tiny_models, tiny_clip_paths):
    """The cap is not what refuses the edited cards: the unedited model runs under it."""
    done = infer_with_capped_memory(tiny_models["classifier"], tiny_clip_paths[0], tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert resource.getrlimit(resource.RLIMIT_AS)[0] != ADDRESS_SPACE_CAP  # only the subprocess is capped
