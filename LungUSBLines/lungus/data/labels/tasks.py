"""What a lungus model can be trained to do: the task names, defined once for the engine,
the command line and the Slicer panels (torch-free, so Slicer imports it before PyTorch is in).

A classification task is named by its label scheme (lungus.data.labels.schemes) and predicts that
scheme's classes for a clip; ``seg`` segments frames into the SEG_CLASSES.
"""

from __future__ import annotations

from lungus.data.labels.schemes import LABEL_SCHEMES

SEG_TASK = "seg"
CLASSIFICATION_TASKS: tuple[str, ...] = tuple(LABEL_SCHEMES)
TASKS: tuple[str, ...] = (*CLASSIFICATION_TASKS, SEG_TASK)
# Classes in a meaningful order (none < discrete < confluent; LUS 0-3): scored with quadratic
# kappa as well, and trained with soft ordinal (SORD) targets.
ORDINAL_TASKS: tuple[str, ...] = ("bline3", "lus4")
#: What a run trains when no task is given (lungus train, the demo, the Train panel).
DEFAULT_TASK = "bline2"


def is_ordinal(task: str) -> bool:
    """Whether a task's classes are ordered grades (see ORDINAL_TASKS)."""
    return task in ORDINAL_TASKS
