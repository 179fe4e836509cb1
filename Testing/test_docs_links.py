"""Every relative link in the README and docs/ points at a file of the clone, and every #anchor at
an anchor of that file (an <a id> or a heading), so the user's door never opens onto nothing."""

import re
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)|<img src=\"([^\"]+)\"")
ANCHOR = re.compile(r"<a id=\"([^\"]+)\"")
HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.MULTILINE)


def markdown_files() -> list[Path]:
    return [
        REPOSITORY / "README.md",
        REPOSITORY / "BENCHMARKS.md",
        *sorted((REPOSITORY / "docs").glob("*.md")),
    ]


def heading_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return set(ANCHOR.findall(text)) | {heading_slug(h) for h in HEADING.findall(text)}


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    links = [a or b for a, b in LINK.findall(text)]
    return [link for link in links if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for link in relative_links(path):
        target, _, anchor = link.partition("#")
        target_path = (path.parent / target).resolve() if target else path
        if not target_path.exists():
            broken.append(f"{link}: no file {target_path.relative_to(REPOSITORY)}")
        elif anchor and target_path.suffix == ".md" and anchor not in anchors(target_path):
            broken.append(f"{link}: no anchor #{anchor} in {target_path.name}")
    assert not broken, f"{path.name}: " + "; ".join(broken)
