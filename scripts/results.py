"""Run `complement compare` on every task and collect the reports into docs/results.md.

    python scripts/results.py                 # all tasks (about 1.5-2 hours on 2 CPU cores:
                                              # ner ~40 min, tweets ~30, tweets_lm ~25)
    python scripts/results.py mnist digits    # some tasks; the others keep their last results
    python scripts/results.py --collect-only  # only rebuild docs/results.md from finished comparisons

Each comparison writes runs/results/compare-<task>-<time>/ (report.md, figures, runs).
docs/results.md is rebuilt from the newest complete comparison of each task.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "results"
DOC = ROOT / "docs" / "results.md"
FIGURES = ROOT / "docs" / "figures"
SEEDS = 5
BASE = ["ce", "cot", "ce_2x"]

# task -> extra compare arguments (CPU-sized settings; the command is recorded with each table)
EXPERIMENTS: dict[str, list[str]] = {
    "mnist": [
        "--task",
        "mnist",
        "--task_options",
        "{model: mlp, width: 256}",
        "--methods",
        "[ce, cot, ce_2x, cot_joint, gce]",
    ],
    "mnist_noisy": ["--task", "mnist_noisy", "--task_options", "{model: mlp, width: 256}"],
    "mnist_longtail": ["--task", "mnist_longtail", "--task_options", "{model: mlp, width: 256}"],
    "mnist_fewshot": ["--task", "mnist_fewshot", "--task_options", "{model: mlp, width: 256}"],
    "digits": ["--task", "digits"],
    "tweets_lm": ["--task", "tweets_lm", "--train.max_epochs", "3"],
    "tweets": ["--task", "tweets", "--task_options", "{train_size: 800, max_length: 48}", "--train.max_epochs", "2"],
    "ner": ["--task", "ner", "--task_options", "{train_size: 600}", "--train.max_epochs", "3"],
}


def command_for(task: str) -> list[str]:
    args = EXPERIMENTS[task]
    if "--methods" not in args:
        args = args + ["--methods", "[" + ", ".join(BASE) + "]"]
    return ["complement", "compare", *args, "--seeds", str(SEEDS), "--out", str(OUT), "--progress", "false"]


def newest_report(task: str) -> Path | None:
    reports = sorted(OUT.glob(f"compare-{task}-2*/report.md"))
    return reports[-1] if reports else None


def section(task: str, report: Path) -> str:
    text = report.read_text()
    command = re.search(r"```bash\n(.*?)\n```", text, re.S).group(1)
    parts = []
    for heading in ("## Test metrics", "## Convergence", "## Equal-compute baseline"):
        start = text.find(heading)
        if start < 0:
            continue
        end = text.find("\n## ", start + 1)
        body = text[start : end if end > 0 else None].strip()
        parts.append("#" + body)  # one level down
    return f"## {task}\n\nCommand: `{command}`\n\n" + "\n\n".join(parts) + "\n"


def main() -> None:
    collect_only = "--collect-only" in sys.argv
    tasks = [] if collect_only else (sys.argv[1:] or list(EXPERIMENTS))
    unknown = [t for t in tasks if t not in EXPERIMENTS]
    if unknown:
        raise SystemExit(f"unknown tasks {unknown}; choose from {list(EXPERIMENTS)}")
    venv_bin = Path(sys.executable).parent
    for task in tasks:
        cmd = command_for(task)
        print("$", " ".join(shlex.quote(c) for c in cmd), flush=True)
        subprocess.run([str(venv_bin / cmd[0]), *cmd[1:]], check=True, cwd=ROOT)
    sections = []
    for task in EXPERIMENTS:
        report = newest_report(task)
        if report is not None:
            sections.append(section(task, report))
            if task == "mnist":
                FIGURES.mkdir(parents=True, exist_ok=True)
                for png in (report.parent / "figures").glob("*.png"):
                    (FIGURES / f"mnist_{png.name}").write_bytes(png.read_bytes())
    intro = DOC.read_text().split("<!-- generated -->")[0] if DOC.exists() else "# Results\n\n"
    DOC.write_text(intro.rstrip() + "\n\n<!-- generated -->\n\n" + "\n".join(sections))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
