"""The docs site's sources, without mkdocs: every link in README.md and docs/ reaches a file and every
``#anchor`` a heading, every guide and API page is in mkdocs.yml's nav, every loss module has its API
page, and the API pages' examples run. (``mkdocs build --strict`` itself runs in scripts/check.sh.)"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading, which mkdocs.yml's ``pymdownx.slugs.slugify(case="lower")`` also gives."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"</?[^>]*>", "", text).replace("`", "").replace("*", "")
    text = unicodedata.normalize("NFC", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of ``page``: its headings' slugs (outside code blocks) and, on API pages, the
    objects that mkdocstrings renders (``::: name`` and its members, ``name.member``)."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    found = {slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE)}
    found |= set(re.findall(r"^::: ([\w.]+)", text, re.MULTILINE))
    return found


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [a or b for a, b in LINK.findall(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_reaches_a_file_and_every_anchor_a_heading(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # http(s):, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md":
            api_object = any(anchor.startswith(name + ".") or anchor == name for name in anchors(file) if "." in name)
            if anchor not in anchors(file) and not api_object:
                broken.append(f"{target}: no heading with anchor #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def test_the_anchor_rule_is_githubs():
    assert slug("Threads and parallel seeds on CPU") == "threads-and-parallel-seeds-on-cpu"
    assert slug("Complement losses: forward + backward vs `F.cross_entropy`") == (
        "complement-losses-forward--backward-vs-fcross_entropy"
    )
    assert slug("mnist_noisy") == "mnist_noisy"


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s+(\S+\.md)\s*$", nav, re.MULTILINE))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages == listed, f"not in mkdocs.yml's nav: {pages - listed}; in the nav but absent: {listed - pages}"


def test_every_loss_module_has_its_api_page():
    modules = {p.stem for p in (ROOT / "src/complement/losses").glob("*.py") if not p.stem.startswith("_")}
    for module in modules:
        page = DOCS / "api" / "losses" / f"{module}.md"
        assert page.is_file(), f"no API page for complement.losses.{module}: {page.relative_to(ROOT)}"
        assert f"::: complement.losses.{module}" in page.read_text(encoding="utf-8")


def test_the_loss_pages_state_their_formula_as_math():
    for page in (DOCS / "api" / "losses").glob("*.md"):
        if page.stem not in ("index", "registry"):
            assert re.search(r"\$\$|\\\(", page.read_text(encoding="utf-8")), f"{page.name}: no formula"


EXAMPLE_PAGES = [DOCS / "index.md", *sorted((DOCS / "api").rglob("*.md"))]


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_the_examples_run(page):
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    for block in blocks:
        torch.manual_seed(0)
        scope = {"logits": torch.randn(8, 10), "target": torch.randint(0, 10, (8,))}
        exec(compile(block, f"{page.name} example", "exec"), scope)
