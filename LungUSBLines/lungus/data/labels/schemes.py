"""Label schemes and segmentation classes shared by every part (docs/architecture.md#labels, #segmentation-classes)."""

from __future__ import annotations

from dataclasses import dataclass

# Clip-level schemes: the values a manifest column of that scheme may hold, in class order.
LABEL_SCHEMES: dict[str, tuple[str, ...]] = {
    "bline2": ("absent", "present"),
    "bline3": ("none", "discrete", "confluent"),
    "lus4": ("0", "1", "2", "3"),
}

# bline3 is the crowd's scheme; bline2 follows from it.
BLINE3_TO_BLINE2 = {"none": "absent", "discrete": "present", "confluent": "present"}

# Crowd opinion-count columns, one per bline3 class.
CROWD_COLUMNS = tuple(f"crowd_{name}" for name in LABEL_SCHEMES["bline3"])


def scheme_classes(scheme: str) -> tuple[str, ...]:
    """Class names of a scheme, in index order."""
    try:
        return LABEL_SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unknown label scheme {scheme!r}; use one of {', '.join(LABEL_SCHEMES)}") from None


def normalise_label(scheme: str, value: object) -> str | None:
    """Canonical class name for a raw manifest value, or None if it is blank.

    Accepts the class name in any case with stray whitespace, and for lus4 also
    numbers such as ``2.0``. Raises ValueError for anything else.
    """
    classes = scheme_classes(scheme)
    text = "" if value is None else str(value).strip().lower()
    if text in ("", "nan", "na", "none") and not (scheme == "bline3" and text == "none"):
        return None
    if scheme == "lus4":
        try:
            number = float(text)
        except ValueError:
            number = -1.0
        if number.is_integer() and 0 <= number <= 3:
            return str(int(number))
    if scheme == "bline2" and text in ("yes", "no", "1", "0", "true", "false"):
        return "present" if text in ("yes", "1", "true") else "absent"
    if text in classes:
        return text
    raise ValueError(f"{value!r} is not a {scheme} label; expected one of {', '.join(classes)}")


@dataclass(frozen=True)
class SegClass:
    id: int
    name: str
    rgb: tuple[int, int, int] | None  # None: not drawn


SEG_CLASSES: tuple[SegClass, ...] = (
    SegClass(0, "background", None),
    SegClass(1, "pleural line", (40, 90, 255)),
    SegClass(2, "A-line", (0, 220, 255)),
    SegClass(3, "B-line", (40, 220, 40)),
    SegClass(4, "confluent B-line", (255, 230, 0)),
    SegClass(5, "rib shadow", (160, 60, 220)),
)
SEG_CLASS_IDS = {c.name: c.id for c in SEG_CLASSES}
BACKGROUND, PLEURA, A_LINE, B_LINE, CONFLUENT, RIB_SHADOW = range(6)
