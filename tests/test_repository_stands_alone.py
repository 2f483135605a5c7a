"""The repository stands on its own: a fresh clone has no folder beside it, so nothing in it may read,
link or cite one (the Asterisk transcripts live in tests/traces/, the outcome model in docs/outcomes.md).
.ci/run proves the same by running the tests from a copy with no sibling folders."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "build", "dist"}
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".ini", ".cfg", ".conf", ".sh", ".json", ".yml", ".yaml", ""}
# what a reference to the team's folder beside the repository looked like (written in pieces so
# that this file does not match itself)
OUTSIDE = [re.escape(".." + "/shared"), re.escape("shared" + "/asterisk-traces"), r"parent\s*/\s*[\"']shared[\"']"]
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def project_files(suffixes=TEXT_SUFFIXES):
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and path.suffix in suffixes and not rel.parts[:2] == ("tests", "traces"):
            yield path


def test_nothing_in_the_project_reads_or_cites_a_folder_beside_it():
    found = []
    for path in project_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in OUTSIDE:
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)}")
    assert not found, "references outside the repository:\n" + "\n".join(found)


def test_markdown_links_point_at_files_inside_the_repository():
    broken = []
    for doc in project_files({".md"}):
        for target in MARKDOWN_LINK.findall(doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor in the same page
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, "links to files that a fresh clone does not have:\n" + "\n".join(broken)
