"""Tamper-evident model files: a digest of the weights in the card (and of the code and weights in
exports), checked on every load; a file changed after it was written is refused with one line."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import onnx
import pytest
import torch
from onnx import numpy_helper

from lungus.errors import LungUSError
from lungus.models import (
    IMAGENET_GRAY,
    ModelCard,
    architecture,
    build_model,
    export_onnx,
    export_torchscript,
    load_for_inference,
    load_model_file,
    load_torchscript,
    read_card,
    save_model_file,
    task_class_names,
)
from lungus.models.model_file import UnverifiedModelWarning, weights_digest

torch.set_num_threads(1)

ARGS = {"width": 4, "attention_hidden": 8}
REFUSED = "weights do not match the card's digest: the file was changed or damaged"


def small_card() -> ModelCard:
    return ModelCard(
        task="bline2",
        class_names=task_class_names("bline2"),
        architecture=architecture("frame_cnn", **ARGS),
        preprocessing={
            "size": [32, 32],
            "frames": 3,
            "target_fps": None,
            "normalisation": dict(IMAGENET_GRAY),
            "fan_crop": False,
        },
        label_source="truth",
    ).stamped()


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("frame_cnn", 2, **ARGS).eval()


def flip_bytes_in_largest_entry(path: Path, folder: str) -> str:
    """Invert 8 bytes in the middle of the largest zip entry under ``folder`` and rewrite the zip
    (with correct CRCs, as a careful forger or a damaged copy that was re-zipped would); returns the entry."""
    with zipfile.ZipFile(path) as archive:
        items = [(info, archive.read(info)) for info in archive.infolist()]
    target = max((info for info, _ in items if f"/{folder}/" in info.filename), key=lambda info: info.file_size)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for info, data in items:
            if info.filename == target.filename:
                middle = len(data) // 2
                data = data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 8]) + data[middle + 8 :]
            archive.writestr(info, data)
    return target.filename


def test_saved_card_records_the_digest_of_the_weights(tmp_path, model):
    card = read_card(save_model_file(tmp_path / "m.pt", model, small_card()))
    assert card.weights_sha256 == weights_digest(model.state_dict())
    assert len(card.weights_sha256) == 64


def test_pt_with_flipped_weight_bytes_is_refused_and_the_untouched_file_loads(tmp_path, model):
    original = save_model_file(tmp_path / "m.pt", model, small_card())
    tampered = shutil.copy(original, tmp_path / "tampered.pt")
    flip_bytes_in_largest_entry(Path(tampered), "data")
    assert load_model_file(original).card.task == "bline2"
    with pytest.raises(LungUSError) as refused:
        load_model_file(tampered)
    assert str(refused.value) == f"{tampered}: {REFUSED}"
    with pytest.raises(LungUSError, match=REFUSED):
        read_card(tampered)  # the card alone is not trusted from a changed file either


def test_pt_from_before_digests_loads_with_a_warning_naming_it(tmp_path, model):
    path = save_model_file(tmp_path / "old.pt", model, small_card())
    payload = torch.load(path, weights_only=True)
    del payload["card"]["weights_sha256"]
    torch.save(payload, path)
    with pytest.warns(UnverifiedModelWarning, match=rf"{path}: this model file records no weights digest"):
        loaded = load_model_file(path)
    assert loaded.card.weights_sha256 == ""


def test_the_cli_prints_an_unverified_model_warning_as_one_line(tmp_path, model, capsys):
    from lungus.cli import main

    path = save_model_file(tmp_path / "old.pt", model, small_card())
    payload = torch.load(path, weights_only=True)
    del payload["card"]["weights_sha256"]
    torch.save(payload, path)
    assert main(["export", "--model", str(path), "--format", "torchscript", "--out", str(tmp_path / "m.ts")]) == 0
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"warning: {path}: this model file records no weights digest")
    # One line per warning (the file is loaded to export it and again to check the export): no
    # "UnverifiedModelWarning" prefix and no Python source line under it.
    assert all(line.startswith(f"warning: {path}: ") for line in stderr.strip().splitlines())
    assert "UnverifiedModelWarning" not in stderr


def test_torchscript_with_flipped_constant_bytes_is_refused(tmp_path, model):
    original = export_torchscript(model, small_card(), tmp_path / "m.ts")
    tampered = Path(shutil.copy(original, tmp_path / "tampered.ts"))
    flip_bytes_in_largest_entry(tampered, "constants")
    assert load_torchscript(original).card.weights_sha256 == weights_digest(model.state_dict())
    with pytest.raises(LungUSError, match=rf"tampered\.ts: {REFUSED}"):
        load_for_inference(tampered)


def test_onnx_with_a_changed_weight_is_refused(tmp_path, model):
    original = export_onnx(model, small_card(), tmp_path / "m.onnx")
    proto = onnx.load(str(original))
    weight = max(proto.graph.initializer, key=lambda t: numpy_helper.to_array(t).size)
    changed = numpy_helper.to_array(weight).copy()
    changed.flat[0] += 1.0
    weight.CopyFrom(numpy_helper.from_array(changed, weight.name))
    onnx.save(proto, str(tmp_path / "tampered.onnx"))
    assert read_card(original).task == "bline2"
    with pytest.raises(LungUSError, match=rf"tampered\.onnx: {REFUSED}"):
        load_for_inference(tmp_path / "tampered.onnx")


def test_a_model_file_whose_zip_directory_is_damaged_is_refused_in_one_line(tmp_path):
    # Found by the fuzz harness: zipfile.is_zipfile accepts the file (its end record is intact),
    # then reading the damaged central directory raised BadZipFile out of read_card.
    from lungus.infer.recipes import random_model_file
    from lungus.models.model_files import read_card

    path = random_model_file(tmp_path / "m.pt", "bline2", "frame_cnn", size=32, frames=4, model_args={"width": 4})
    data = bytearray(path.read_bytes())
    directory = data.rfind(b"PK\x01\x02")  # the last central-directory entry
    data[directory : directory + 4] = b"XXXX"
    path.write_bytes(bytes(data))
    with pytest.raises(LungUSError, match=r"damaged model file: its zip directory cannot be read") as caught:
        read_card(path)
    assert "\n" not in str(caught.value)


def rewrite_entry(path: Path, suffix: str, data: bytes) -> None:
    """Replace the zip entry whose name ends with ``suffix`` (correct CRCs: only the content changes)."""
    with zipfile.ZipFile(path) as archive:
        items = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for info, content in items:
            archive.writestr(info, data if info.filename.endswith(suffix) else content)


def test_torchscript_code_that_is_not_the_exported_code_is_refused_before_torch_parses_it(tmp_path, model):
    """Fuzz finding (model #277): torch.jit.load of a damaged archive crashed the process. The
    digest is now checked from the zip first, so torch never sees code the export did not write."""
    path = export_torchscript(model, small_card(), tmp_path / "m.ts")
    with zipfile.ZipFile(path) as archive:
        code = next(name for name in archive.namelist() if name.endswith(".py") and "/code/" in name)
    rewrite_entry(path, code, b"def forward(self, x):\n    return \x00\x00 garbage\n")
    with pytest.raises(LungUSError, match=rf"m\.ts: {REFUSED}"):
        load_torchscript(path)


def test_an_export_whose_card_has_a_wrongly_typed_field_is_refused_in_one_line(tmp_path, model):
    """Fuzz finding (model #3694): class_names -1 in an embedded card escaped as a TypeError."""
    import json

    from lungus.models.torchscript_onnx import CARD_EXTRA_FILE

    path = export_torchscript(model, small_card(), tmp_path / "m.ts")
    with zipfile.ZipFile(path) as archive:
        name = next(name for name in archive.namelist() if name.endswith(f"extra/{CARD_EXTRA_FILE}"))
        payload = json.loads(archive.read(name))
    payload["card"]["class_names"] = -1
    rewrite_entry(path, name, json.dumps(payload).encode())
    with pytest.raises(LungUSError, match=r"m\.ts: card class_names -1 must be the bline2 classes"):
        read_card(path)


def test_an_export_whose_embedded_card_is_too_large_to_be_one_says_so(tmp_path, model):
    from lungus.models.torchscript_onnx import CARD_EXTRA_FILE, MAX_CARD_BYTES

    path = export_torchscript(model, small_card(), tmp_path / "m.ts")
    rewrite_entry(path, f"extra/{CARD_EXTRA_FILE}", b" " * (MAX_CARD_BYTES + 1))
    with pytest.raises(LungUSError, match=r"m\.ts: the embedded card is 1,048,577 bytes, more than a card can be"):
        read_card(path)


def test_a_zip_end_record_that_claims_several_disks_is_refused_in_one_line(tmp_path, model):
    """Fuzz finding (model #3267): zipfile.is_zipfile itself raised BadZipFile for such a file."""
    import struct

    path = save_model_file(tmp_path / "m.pt", model, small_card())
    data = path.read_bytes()
    end = data.rindex(b"PK\x05\x06")  # the end-of-central-directory record
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 2)  # a zip64 locator: 2 disks
    path.write_bytes(data[:end] + locator + data[end:])
    with pytest.raises(LungUSError, match=r"m\.pt: damaged model file: its zip directory cannot be read"):
        read_card(path)
