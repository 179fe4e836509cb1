"""LungUSBLinesLib.tables: records as table nodes with typed columns, CSV in and out."""

from __future__ import annotations

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.errors import LungUSError  # noqa: E402
from LungUSBLinesLib.tables import (  # noqa: E402
    read_csv_table,
    records_to_table,
    table_columns,
    table_records,
    write_records_csv,
)

RECORDS = [
    {"clip": "a.mp4", "fps": 25.0, "pred": "present", "p_present": 0.91, "top_frame": 4, "error": ""},
    {"clip": "b.mp4", "fps": None, "pred": None, "p_present": None, "top_frame": None, "error": "truncated"},
]
COLUMNS = ["clip", "fps", "pred", "p_present", "top_frame", "error"]


def test_numeric_columns_are_numbers_and_text_columns_text(headless):
    table = records_to_table(headless.scene, COLUMNS, RECORDS, "scores")
    data = table.GetTable()
    kinds = {name: data.GetColumnByName(name).GetClassName() for name in COLUMNS}
    assert kinds == {
        "clip": "vtkStringArray",
        "fps": "vtkDoubleArray",
        "pred": "vtkStringArray",
        "p_present": "vtkDoubleArray",
        "top_frame": "vtkDoubleArray",
        "error": "vtkStringArray",
    }


def test_records_read_back_with_none_for_empty_cells(headless):
    table = records_to_table(headless.scene, COLUMNS, RECORDS, "scores")
    assert table_columns(table) == COLUMNS
    assert table_records(table) == [
        {"clip": "a.mp4", "fps": 25, "pred": "present", "p_present": 0.91, "top_frame": 4, "error": None},
        {
            "clip": "b.mp4",
            "fps": None,
            "pred": None,
            "p_present": None,
            "top_frame": None,
            "error": "truncated",
        },
    ]


def test_replacing_a_tables_content_keeps_the_node(headless):
    table = records_to_table(headless.scene, COLUMNS, RECORDS, "scores")
    same = records_to_table(headless.scene, ["clip"], [{"clip": "c.mp4"}], "ignored", table=table)
    assert same.GetID() == table.GetID() and table_records(same) == [{"clip": "c.mp4"}]


def test_csv_round_trip(headless, tmp_path):
    path = write_records_csv(tmp_path / "clips.csv", COLUMNS, RECORDS)
    table = read_csv_table(headless.scene, path)
    assert table.GetName() == "clips" and table_records(table)[1]["error"] == "truncated"
    assert table.GetTable().GetColumnByName("p_present").IsA("vtkDoubleArray")


def test_missing_or_empty_csv_is_refused(headless, tmp_path):
    with pytest.raises(LungUSError, match="no such file"):
        read_csv_table(headless.scene, tmp_path / "nothing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(LungUSError, match="no header row"):
        read_csv_table(headless.scene, tmp_path / "empty.csv")
