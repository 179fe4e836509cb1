"""`lungus train` options are made from TrainConfig's fields: every setting, its help and its default."""

from __future__ import annotations

import dataclasses

import pytest

from lungus.cli import build_parser, main
from lungus.commands.train import setting_overrides
from lungus.train.config import TrainConfig, default_text, option_flag


def _help_entries(capsys, monkeypatch) -> dict[str, str]:
    """`lungus train --help` as {option as shown ("--lr LR", "--augment, --no-augment"): its help}."""
    monkeypatch.setenv("COLUMNS", "1000")  # help on one line; a long option still puts it on the next
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    entries: dict[str, str] = {}
    option = None
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("  -"):
            option, _, text = line.strip().partition("  ")
            entries[option] = text.strip()
        elif option and line.startswith("    "):
            entries[option] = (entries[option] + " " + line.strip()).strip()
        else:
            option = None
    return entries


def _config(arguments: list[str]) -> TrainConfig:
    args = build_parser().parse_args(["train", *arguments])
    return TrainConfig.from_sources(args.config, **setting_overrides(args))


def test_help_lists_every_setting_with_its_help_and_default(capsys, monkeypatch):
    entries = _help_entries(capsys, monkeypatch)
    for item in dataclasses.fields(TrainConfig):
        flag = option_flag(item)
        (text,) = [text for option, text in entries.items() if option == flag or option.startswith((flag + " ",
                                                                                                    flag + ","))]
        suffix = f"(default: {default_text(item)})"
        assert text.endswith(suffix) and len(text) > len(suffix) + 10, f"{flag}: {text!r}"


@pytest.mark.parametrize("option, default", [("--epochs EPOCHS", "30"), ("--batch-size BATCH_SIZE", "8"),
                                             ("--lr LR", "0.003"), ("--augment, --no-augment", "on")])
def test_the_common_options_say_what_they_do_and_their_default(capsys, monkeypatch, option, default):
    text = _help_entries(capsys, monkeypatch)[option]
    assert text.endswith(f"(default: {default})") and len(text) > len(f"(default: {default})") + 10


def test_a_setting_once_only_in_yaml_is_set_on_the_command_line(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("manifest: m.csv\nout: run\nweight_decay: 0.1\nschedule: cosine\nepochs: 7\n")
    config = _config(["--config", str(recipe), "--weight-decay", "0.05", "--no-class-weights", "--eval-flip",
                      "--fallback-sector", "0", "0.5", "35", "0.1", "0.9"])
    assert (config.weight_decay, config.class_weights, config.eval_flip) == (0.05, False, True)
    assert config.fallback_sector == (0.0, 0.5, 35.0, 0.1, 0.9)
    assert (config.schedule, config.epochs, config.lr) == ("cosine", 7, 3e-3)  # from the file, and the default


def test_options_given_override_the_yaml_file_and_the_others_keep_it(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("augment:\n  gain: [0.9, 1.1]\nepochs: 7\nbatch_size: 4\npretrained: true\n")
    config = _config(["--config", str(recipe), "--manifest", "m.csv", "--out", "run", "--epochs", "3",
                      "--size", "64x80"])
    assert (config.epochs, config.batch_size, config.size, config.pretrained) == (3, 4, (64, 80), True)
    assert config.augment == {"gain": [0.9, 1.1]}
    assert _config(["--config", str(recipe), "--manifest", "m.csv", "--out", "run", "--no-augment",
                    "--no-pretrained"]).augment is False


@pytest.mark.parametrize("arguments, message", [
    (["--size", "16"], "size must be at least 32x32, got 16x16"),
    (["--threads", "0"], "threads must be >= 1, got 0"),
    (["--val-fraction", "1"], "val_fraction must be in [0, 1), got 1.0"),
])
def test_a_bad_setting_is_one_line_and_exit_2(tmp_path, capsys, arguments, message):
    code = main(["train", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "run"), *arguments])
    error = capsys.readouterr().err
    assert code == 2 and error == f"lungus train: error: training config: {message}\n"
    assert not (tmp_path / "run").exists()


def test_a_yaml_value_of_the_wrong_kind_is_named(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("manifest: m.csv\nout: run\nepochs: many\n")
    with pytest.raises(Exception, match="epochs must be a number, got 'many'"):
        _config(["--config", str(recipe)])


@pytest.mark.torch
def test_model_arguments_become_a_mapping():
    assert _config(["--manifest", "m.csv", "--out", "run", "--model-arg", "width=4", "--model-arg",
                    "pooling=max"]).model_args == {"width": "4", "pooling": "max"}


def test_the_settings_and_their_options_load_without_torch():
    """Slicer's Python reads TrainConfig's fields (LungUSTrainLib.training) before PyTorch is installed."""
    import subprocess
    import sys

    code = ("import sys\nsys.modules['torch'] = None\nfrom lungus.cli import build_parser\n"
            "build_parser().parse_args(['train', '--manifest', 'm.csv', '--out', 'run', '--epochs', '2'])\n"
            "import lungus.train.config\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
