"""Comments cite ``docs/`` pages that exist, never documents outside the repository (docs/decisions.md).

The citation style is ``docs/<page>.md`` or ``docs/<page>.md#<anchor>``, the anchor being GitHub's for a heading of
that page. Markdown links between ``docs/`` pages are held to the same rule.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("containers", "infra", "pipelines", "spark_jobs", "tests", "benchmarks", "conf")
CODE_SUFFIXES = {".py", ".in", ".yml", ".yaml", ".toml", ".sh", ".cfg"}
THIS_FILE = Path(__file__).resolve()

# Section signs with a number, "specs/" paths and the names of the reference documents that live outside the
# repository. Built from pieces so this file does not match itself when read as text.
SECTION_SIGN = "\u00a7"
OUTSIDE_SPEC = re.compile(
    "|".join(
        (
            SECTION_SIGN + r"\s?\d",
            r"\bspecs/",
            r"\bspec section\b",
            r"aws-local-emulation\.md",
            r"clarify-monitor-pipelines\.md",
            r"sagemaker-containers\.md",
            r"house-style\.md",
        )
    )
)
CITATION = re.compile(r"\bdocs/[\w./-]+?\.md(?:#[\w-]+)?")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower-case, punctuation but ``-`` and ``_`` dropped, spaces to ``-``."""
    text = heading.strip().lower()
    kept = "".join(char for char in text if char in " -_" or unicodedata.category(char)[0] in ("L", "N"))
    return kept.replace(" ", "-")


@cache
def anchors_of(page: Path) -> frozenset[str]:
    """Every heading anchor of a markdown page (outside fenced code), with GitHub's ``-1``, ``-2`` for repeats."""
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    in_fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match is None:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return frozenset(anchors)


def code_files() -> Iterator[Path]:
    for name in CODE_DIRS:
        for path in sorted((ROOT / name).rglob("*")):
            if not path.is_file() or path.resolve() == THIS_FILE or "__pycache__" in path.parts:
                continue
            if path.suffix in CODE_SUFFIXES or path.name.startswith("Dockerfile") or ".Dockerfile" in path.name:
                yield path
    for name in ("Makefile", "pyproject.toml"):
        if (ROOT / name).is_file():
            yield ROOT / name


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def broken_target(page: Path, anchor: str | None) -> str | None:
    """Why ``page#anchor`` cannot be followed, or None when it can."""
    if not page.is_file():
        return "no such page"
    if anchor and anchor not in anchors_of(page):
        return f"no heading with anchor #{anchor}"
    return None


def test_code_cites_no_document_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in code_files()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if OUTSIDE_SPEC.search(line)
    ]
    assert not found, "cite a docs/ page instead (docs/decisions.md):\n" + "\n".join(found)


def test_docs_cite_no_document_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in doc_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if OUTSIDE_SPEC.search(line)
    ]
    assert not found, "write the fact into docs/ instead of pointing outside the repository:\n" + "\n".join(found)


def test_docs_citations_in_code_exist() -> None:
    broken = []
    for path in code_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            for citation in CITATION.findall(line):
                page, _, anchor = citation.partition("#")
                why = broken_target(ROOT / page, anchor or None)
                if why:
                    broken.append(f"{path.relative_to(ROOT)}:{number}: {citation}: {why}")
    assert not broken, "\n".join(broken)


def test_links_between_docs_pages_exist() -> None:
    broken = []
    for path in doc_files():
        in_fence = False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if FENCE.match(line):
                in_fence = not in_fence
            if in_fence:
                continue
            for target in MARKDOWN_LINK.findall(line):
                if "://" in target or target.startswith("mailto:"):
                    continue
                page_part, _, anchor = target.partition("#")
                if page_part and not page_part.endswith(".md"):
                    continue  # images and other files
                page = (path.parent / page_part).resolve() if page_part else path
                why = broken_target(page, anchor or None)
                if why:
                    broken.append(f"{path.relative_to(ROOT)}:{number}: {target}: {why}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("The /opt/ml tree", "the-optml-tree"),
        ("`hyperparameters.json` keys and defaults", "hyperparametersjson-keys-and-defaults"),
        ("Pre- and post-processing scripts", "pre--and-post-processing-scripts"),
        ("Binarisation (smclarify's rules)", "binarisation-smclarifys-rules"),
    ],
)
def test_github_anchor(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor
