"""The README is a front door: what the project is in a few lines, then the two commands,
and every link it and the pages under docs/ make leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
INSTALL = 'pip install -q torch==2.13.0 && pip install -q -e ".[test]"'
TESTS = "python -m pytest -q -p no:cacheprovider"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


def test_the_readme_opens_with_the_two_commands_in_two_blocks() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 300
    first, second = code_blocks(text)[:2]
    assert first == f"{INSTALL} && python -m dnt_rllib.tune --config tune_configs/sac.yaml\n"
    assert second == f"{INSTALL} && {TESTS}\n"
    # nothing but the title and one short paragraph (what the project is) before the first command
    title, _, intro = text.split("```", 1)[0].strip().partition("\n\n")
    assert title == "# dnt_rllib"
    assert intro and "\n\n" not in intro and len(intro.splitlines()) <= 10
    assert not re.search(r"^#", intro, flags=re.M)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert INSTALL in ci and re.search(rf"^{re.escape(TESTS)}$", ci, flags=re.M)


def test_the_glossary_is_the_first_table() -> None:
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = "\n".join(lines[start : start + next(
        n for n, line in enumerate(lines[start:]) if not line.startswith("|")
    )])  # fmt: skip
    assert table.startswith("| word | meaning |")
    for word in ("threshold", "ceiling", "lookahead", "paired", "share", "never", "greedy",
                 "periodic"):  # fmt: skip
        assert f"| **{word}**" in table, word


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: {link}"
        if anchor:
            assert anchor in anchors(path), f"{page.name}: {link}"
