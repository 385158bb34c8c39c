"""The tune configs' comments state training minutes and seed counts that their bodies fix:
a comment that says "15 min of training" or "3 seeds" must agree with ``stop.time_total_s``
and the seed grid, and "N min ... as X.yaml" with X.yaml's budget."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

CONFIGS = sorted((Path(__file__).parents[1] / "tune_configs").glob("*.yaml"))
WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
MINUTES = re.compile(r"(\d+) min(?:utes)? of training([^#]*?as (\w+)\.yaml)?")
SEEDS = re.compile(r"\b(\d+|one|two|three|four|five) seeds?\b")


def minutes(body: dict) -> float | None:
    seconds = (body.get("stop") or {}).get("time_total_s")
    return None if seconds is None else seconds / 60


def seeds(body: dict) -> int:
    space = body.get("search_space") or {}
    return len(space["seed"]["grid"]) if "seed" in space else 1


def header(text: str) -> str:
    """The comment lines before the first key."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_comments_agree_with_the_body(path: Path) -> None:
    text = path.read_text()
    body = yaml.safe_load(text)
    for match in MINUTES.finditer(text):
        stated, other = int(match.group(1)), match.group(3)
        assert minutes(body) == stated, f"{path.name}: says {match.group(0)!r}"
        if other:
            twin = yaml.safe_load((path.parent / f"{other}.yaml").read_text())
            assert minutes(twin) == stated, f"{path.name}: {other}.yaml trains {minutes(twin)} min"
    for match in SEEDS.finditer(header(text)):
        count = match.group(1)
        stated = WORDS.get(count) or int(count)
        assert seeds(body) == stated, f"{path.name}: says {match.group(0)!r}"


def test_the_checks_read_what_the_configs_say() -> None:
    """The patterns find the statements they guard (the test above is not vacuous)."""
    text = (CONFIGS[0].parent / "sac_tuned.yaml").read_text()
    assert [m.group(1) for m in MINUTES.finditer(text)] == ["15", "15"]
    assert [m.group(1) for m in SEEDS.finditer(header(text))] == ["3"]
    assert MINUTES.search("# 15 min of training per trial, as sac.yaml").group(3) == "sac"
