"""How a clip's window (or frame) scores become one clip score: the clip rules, defined once for
the engine, the model card, the training settings and the Slicer panels (torch-free).

A rule is one of (docs/frame-fusion.md#clip-rules):

- ``max``: the window with the most B-line evidence (1 - P(first class)); Lucassen 2023's rule;
- ``mean``: the mean distribution over windows;
- ``topk:K``: the mean distribution of the K windows with the most evidence (all of them when a
  clip has fewer);
- ``consecutive:K``: B-lines in at least K consecutive windows. The clip's evidence is the
  largest p such that K consecutive windows all have evidence >= p, so the clip is called at any
  threshold exactly when K consecutive frames are; its distribution is that run's weakest window.

The computation is :func:`lungus.predict.windows.aggregate_windows`.
"""

from __future__ import annotations

#: Rules without a parameter, and those written ``NAME:K``.
PLAIN_RULES = ("max", "mean")
COUNTED_RULES = ("topk", "consecutive")
#: What --help and the Slicer panels list.
CLIP_RULE_HELP = "max, mean, topk:K (mean of the K highest) or consecutive:K (B-lines in >= K consecutive frames)"
#: A K above any clip's frame count would make every rule the whole clip's; this bounds typos.
MAX_RULE_COUNT = 10_000


def parse_clip_rule(rule: object) -> tuple[str, int]:
    """``"topk:3"`` -> ("topk", 3); ``"max"`` -> ("max", 1). ValueError saying what is wrong."""
    if not isinstance(rule, str):
        raise ValueError(f"clip rule must be text ({CLIP_RULE_HELP}), got {rule!r}")
    name, sep, count = rule.strip().partition(":")
    if name in PLAIN_RULES and not sep:
        return name, 1
    if name in COUNTED_RULES and sep:
        try:
            k = int(count)
        except ValueError:
            k = 0
        if 1 <= k <= MAX_RULE_COUNT:
            return name, k
        raise ValueError(f"clip rule {rule!r}: K must be a whole number from 1 to {MAX_RULE_COUNT}")
    raise ValueError(f"clip rule {rule!r} is not one of {CLIP_RULE_HELP}")


def clip_rule_problem(rule: object) -> str | None:
    """What is wrong with ``rule`` ("is not one of ..."), or None."""
    try:
        parse_clip_rule(rule)
    except ValueError as error:
        return str(error)
    return None
