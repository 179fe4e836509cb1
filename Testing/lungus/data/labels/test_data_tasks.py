"""lungus.data.labels.tasks: the task names, defined once."""

from __future__ import annotations

from lungus.data.labels.schemes import LABEL_SCHEMES
from lungus.data.labels.tasks import (
    CLASSIFICATION_TASKS,
    DEFAULT_TASK,
    ORDINAL_TASKS,
    SEG_TASK,
    TASKS,
    is_ordinal,
)


def test_a_classification_task_is_named_by_its_label_scheme():
    assert CLASSIFICATION_TASKS == tuple(LABEL_SCHEMES) and TASKS == (*CLASSIFICATION_TASKS, SEG_TASK)


def test_the_ordered_schemes_are_the_ordinal_tasks():
    assert [task for task in TASKS if is_ordinal(task)] == list(ORDINAL_TASKS) == ["bline3", "lus4"]
    assert set(ORDINAL_TASKS) <= set(CLASSIFICATION_TASKS) and DEFAULT_TASK in CLASSIFICATION_TASKS
