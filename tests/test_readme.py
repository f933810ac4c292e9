"""The README's Python snippets run as written, imports included: each block in a fresh namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.DOTALL | re.MULTILINE)


def test_the_readme_has_its_snippets():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_a_readme_snippet_runs_as_written(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a snippet writes (Lightning's folders) stays out of the repository
    namespace: dict = {}
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), namespace)
    if "CotBert" in namespace:  # the blog's class: build it on a small local model and train one step
        import torch
        from lightning.pytorch import Trainer

        from tests.helpers.hf import save_tiny_bert

        model = namespace["CotBert"](str(save_tiny_bert(tmp_path / "tiny")), num_labels=3)
        samples = [{"input_ids": torch.randint(0, 50, (6,)), "attention_mask": torch.ones(6, dtype=torch.long),
                    "labels": torch.tensor(i % 3)} for i in range(8)]  # fmt: skip
        loader = torch.utils.data.DataLoader(samples, batch_size=4)
        Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False).fit(model, loader)
