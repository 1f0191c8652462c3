"""The documentation against the code: every params key documented, every gradient method given a section, every
link pointing at a page (and heading) that exists, the README short, and every ``make`` target and ``mtbert``
subcommand named in a command actually there. Fast: no model, no data."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from mtbert.aggregators import AGGREGATOR_NAMES
from mtbert.cli import parser

README = ROOT / "README.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 220
FRONT_PAGES = (README, CONTRIBUTING)  # the pages a newcomer starts from
COMMAND_PAGES = (README, CONTRIBUTING, *sorted(DOCS.glob("*.md")))
LINK_PAGES = (*COMMAND_PAGES, ROOT / "CHANGELOG.md")

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
# a command where a shell line (or one after && ; |, or a `$ ` prompt) starts: `make <target>`, `mtbert <command>`
COMMAND = re.compile(r"(?:^|&&|;|\|)\s*(?:\$\s+)?(make|mtbert)\s+([A-Za-z][\w-]*)")
MAKE_TARGET = re.compile(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", re.MULTILINE)


def leaf_keys(node: object, prefix: str = "") -> list[str]:
    """The dotted path of every leaf of ``params.yaml`` (a scalar, a list or an empty mapping)."""
    if isinstance(node, dict) and node:
        return [key for name, value in node.items() for key in leaf_keys(value, f"{prefix}{name}.")]
    return [prefix.rstrip(".")]


def without_code_blocks(text: str) -> str:
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in without_code_blocks(page.read_text(encoding="utf-8")).splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(page: Path) -> list[str]:
    """Relative link targets of ``page`` outside code blocks (web addresses left out)."""
    found = LINK.findall(without_code_blocks(page.read_text(encoding="utf-8")))
    return [t for t in found if not re.match(r"[a-z]+:", t)]


def commands(page: Path) -> set[tuple[str, str]]:
    """``(make|mtbert, word)`` for every command in a code block or an inline code span of ``page``; comments in code
    blocks are left out (they are prose)."""
    text = page.read_text(encoding="utf-8")
    lines = [re.sub(r"(^|\s)#.*", "", line) for block in FENCE.findall(text) for line in block.splitlines()[1:-1]]
    lines += INLINE_CODE.findall(without_code_blocks(text))
    return {match.groups() for line in lines for match in COMMAND.finditer(line)}


def makefile_targets() -> set[str]:
    return set(MAKE_TARGET.findall((ROOT / "Makefile").read_text(encoding="utf-8")))


def cli_subcommands() -> set[str]:
    actions = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return {name for action in actions for name in action.choices}


def test_every_params_key_is_documented_in_configuration() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    keys = leaf_keys(params)
    assert len(keys) > 50  # the walk reached the nested keys
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in keys if f"`{key}`" not in page]
    assert not missing, f"docs/configuration.md does not document (as `dotted.key`): {missing}"


def test_every_registered_gradient_method_has_a_section_in_methods() -> None:
    page = (DOCS / "methods.md").read_text(encoding="utf-8")
    headings = [line for line in without_code_blocks(page).splitlines() if re.match(r"#{2,6}\s", line)]
    missing = [name for name in AGGREGATOR_NAMES if not any(f"`{name}`" in h for h in headings)]
    assert not missing, f"docs/methods.md has no section heading for: {missing}"


@pytest.mark.parametrize("page", FRONT_PAGES, ids=lambda p: p.name)
def test_docs_links_of_the_front_pages_point_to_existing_pages(page: Path) -> None:
    targets = [t.split("#")[0] for t in links(page) if t.startswith("docs/")]
    assert any(t.endswith(".md") for t in targets), f"{page.name} links no docs/*.md page"
    missing = [t for t in targets if not (ROOT / t).is_file()]
    assert not missing, f"{page.name} links missing files: {missing}"


@pytest.mark.parametrize("page", LINK_PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_exists(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        missing_anchor = file.exists() and anchor and file.suffix == ".md" and anchor not in anchors(file)
        if not file.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines, more than {README_MAX_LINES}: move the rest to docs/"
    )


@pytest.mark.parametrize("page", COMMAND_PAGES, ids=lambda p: p.name)
def test_every_make_target_and_mtbert_subcommand_named_exists(page: Path) -> None:
    named = commands(page)
    targets, subcommands = makefile_targets(), cli_subcommands()
    assert {"repro", "test"} <= targets and {"predict", "compare"} <= subcommands  # the parsers found them
    known = {"make": targets, "mtbert": subcommands}
    unknown = sorted(f"{tool} {word}" for tool, word in named if word not in known[tool])
    assert not unknown, f"{page.relative_to(ROOT)} names commands that do not exist: {unknown}"


def test_the_readme_names_the_two_commands_and_the_cli() -> None:
    named = commands(README)
    assert {("make", "repro"), ("make", "test"), ("mtbert", "predict"), ("mtbert", "compare")} <= named
