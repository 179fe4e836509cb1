"""Result records (clips.csv / frames.csv rows) as Slicer table nodes, and back.

A column whose filled cells are all numbers becomes a numeric (double) column, with NaN for
empty cells, so Slicer can sort and plot it; any other column stays text. Reading a table
back gives the same records, with None for empty cells.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import vtk

from lungus.data.csvfile import csv_cell, write_records_csv  # noqa: F401  (the module's CSVs are the engine's)
from lungus.errors import LungUSError


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return value.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity")
    return False


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())



def _column_array(name: str, values: list[Any]) -> vtk.vtkAbstractArray:
    filled = [v for v in values if not _is_blank(v)]
    if filled and all(_is_number(v) for v in filled):
        array = vtk.vtkDoubleArray()
        for value in values:
            array.InsertNextValue(math.nan if _is_blank(value) else float(value))
    else:
        array = vtk.vtkStringArray()
        for value in values:
            array.InsertNextValue(csv_cell(value))
    array.SetName(name)
    return array


def records_to_table(
    scene: Any,
    columns: Sequence[str],
    records: Iterable[dict[str, Any]],
    name: str,
    *,
    table: Any | None = None,
) -> Any:
    """A vtkMRMLTableNode with ``columns`` (in order) and one row per record.

    Values missing from a record, or None, are empty cells. With ``table`` its content is
    replaced (the node keeps its ID, so plots and views that show it stay attached).
    """
    records = list(records)
    if len(set(columns)) != len(columns):
        raise ValueError(f"duplicate column names in {list(columns)}")
    if table is None:
        table = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    data = vtk.vtkTable()
    for column in columns:
        data.AddColumn(_column_array(column, [record.get(column) for record in records]))
    table.SetAndObserveTable(data)
    table.SetLocked(True)  # results: the table view must not edit them
    return table


def table_columns(table: Any) -> list[str]:
    data = table.GetTable()
    return [data.GetColumnName(i) for i in range(data.GetNumberOfColumns())]


def table_records(table: Any) -> list[dict[str, Any]]:
    """The rows of a table node as dicts: floats (None for NaN) in numeric columns, str (None for
    empty) in text columns. Whole numbers in numeric columns come back as int."""
    data = table.GetTable()
    columns = []
    for i in range(data.GetNumberOfColumns()):
        array = data.GetColumn(i)
        columns.append((array.GetName(), array.IsA("vtkDataArray")))
    records = []
    for row in range(data.GetNumberOfRows()):
        record: dict[str, Any] = {}
        for i, (name, numeric) in enumerate(columns):
            array = data.GetColumn(i)
            if numeric:
                value = array.GetValue(row)
                if math.isnan(value):
                    record[name] = None
                else:
                    record[name] = int(value) if float(value).is_integer() else float(value)
            else:
                text = array.GetValue(row)
                record[name] = text if text else None
        records.append(record)
    return records


def read_csv_table(
    scene: Any, path: str | os.PathLike, name: str | None = None, *, table: Any | None = None
) -> Any:
    """A table node from a CSV file with a header row (e.g. a `lungus infer` clips.csv); with
    ``table``, that node's content is replaced instead (see records_to_table)."""
    path = Path(path)
    if not path.is_file():
        raise LungUSError("no such file", path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            records = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LungUSError(f"not a readable CSV file ({error})", path) from None
    if not columns:
        raise LungUSError("the CSV file has no header row", path)
    return records_to_table(scene, columns, records, name or path.stem, table=table)


