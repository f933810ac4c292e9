"""Write a section of docs/benchmarks.md (``gpu_check`` by default) from pytest's JUnit XML.

Called by ``scripts/gpu_check.sh`` and ``scripts/multi_gpu_check.sh``::

    python -m benchmarks.gpu_check_report cuda.xml TESTS_STATUS BENCH_STATUS "COMMAND" [--device NAME]
        [--section NAME --title TITLE]
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

from benchmarks._common import write_section


def outcomes(junit_xml: Path) -> list[tuple[str, str, float]]:
    """``(test id, "passed" | "FAILED" | "skipped", seconds)`` for each test case."""
    root = ET.parse(junit_xml).getroot()
    rows = []
    for case in root.iter("testcase"):
        outcome = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "FAILED"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        rows.append((f"{case.get('classname')}::{case.get('name')}", outcome, float(case.get("time", 0))))
    return rows


def section(
    rows,
    tests_status: int,
    bench_status: int,
    command: str,
    device: str,
    torch_version: str,
    title: str = "GPU check: the cuda-marked tests",
) -> str:
    counts = {kind: sum(1 for _, outcome, _ in rows if outcome == kind) for kind in ("passed", "FAILED", "skipped")}
    return "\n".join([
        f"## {title}",
        "",
        f"Command: `{command.strip()}` on {date.today()}. Device: {device}; torch {torch_version}. "
        f"{counts['passed']} passed, {counts['FAILED']} failed, {counts['skipped']} skipped "
        f"(pytest exit status {tests_status}; benchmark exit status {bench_status}).",
        "",
        "| test | outcome | seconds |",
        "|---|---|---|",
        *(f"| `{test}` | {outcome} | {seconds:.2f} |" for test, outcome, seconds in rows),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("junit_xml", type=Path)
    parser.add_argument("tests_status", type=int)
    parser.add_argument("bench_status", type=int)
    parser.add_argument("command")
    parser.add_argument("--device", help="default: torch.cuda.get_device_name() x the device count")
    parser.add_argument("--section", default="gpu_check")
    parser.add_argument("--title", default="GPU check: the cuda-marked tests")
    args = parser.parse_args()
    import torch

    device = args.device or f"{torch.cuda.device_count()} x {torch.cuda.get_device_name()}"
    rows = outcomes(args.junit_xml)
    body = section(rows, args.tests_status, args.bench_status, args.command, device, torch.__version__, args.title)
    write_section(args.section, body)
    print(f"wrote docs/benchmarks.md (section {args.section!r}): {len(rows)} tests")


if __name__ == "__main__":
    main()
