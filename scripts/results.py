"""Run `complement compare` for every experiment and collect the reports into docs/results.md.

    python scripts/results.py                      # every experiment, in order (hours on 2 CPU cores)
    python scripts/results.py mnist fashion_mnist  # some experiments; the others keep their last results
    python scripts/results.py --list               # the experiments, their seeds and commands
    python scripts/results.py --collect-only       # only rebuild docs/results.md from finished comparisons
    python scripts/results.py --part robustness    # the robustness experiments (their own part of the page)
    python scripts/results.py --part regimes       # the training regime as a factor (its own part)

Each experiment writes runs/results/<experiment>/compare-<task>-<time>/ (report.md, records.json,
figures, runs). The main experiments on small models first tune each method's learning rate on
the validation split (compare --tune.lr, in the comparison's tune/ folder); the fine-tuned
Transformer ones train at their card's rate (minutes a run), and the page says which is which.
Safe to kill: run it again and an unfinished comparison is finished with
`complement compare --resume` (each run resumes from its last checkpoint); a finished one is
kept (`--rerun` starts it afresh). docs/results.md is rebuilt from the newest finished
comparison of each experiment: a summary table of paired differences at the top, then each
experiment's tables. An experiment with no comparison on this machine keeps its row and section
from the page as it was.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from complement.experiments.cli import main as complement
from complement.experiments.report.markdown import TUNING_TITLE
from complement.experiments.report.records import WORST, load_records, robust_key
from complement.experiments.report.robust import FIGURE_NAME, ROBUST_TITLE, robust_eps
from complement.experiments.report.statistics import (
    PairedComparison,
    format_difference,
    paired_comparison,
    paired_comparisons,
)
from complement.experiments.report.tables import Stat, by_method, paired_table, render_markdown
from complement.experiments.report.verdict import summary_phrase
from complement.experiments.runs.comparison import COMPARE_FILE, Comparison
from complement.experiments.runs.methods import get_method

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "results"
DOC = ROOT / "docs" / "results.md"
FIGURES = ROOT / "docs" / "figures"
BASE = "[ce, cot, ce_2x]"
MLP = "{model: mlp, width: 256}"
# SGD with momentum 0.9 (the authors' kind of recipe) and the paper's step schedule at 1/2 and 3/4 of the epochs,
# as fractions of the run (MNIST's epoch milestones [8, 11] never applied in its 8 epochs: issue 23)
SGD = ["--train.optimizer", "sgd", "--train.lr", "0.05", "--train.weight_decay", "1e-4",
       "--train.lr_schedule", "step", "--train.lr_milestones", "[0.5, 0.75]"]  # fmt: skip
SGD_MNIST = SGD_FASHION = SGD
SEPARATE = ["--train.cot_optimizers", "separate"]


def tuned(*rates: float) -> tuple[str, ...]:
    """Each method's rate chosen from ``rates`` on the validation split, by the mean of 2 tuning seeds (issue 23:
    a claim against CE is only as good as CE's rate; Bouthillier et al., MLSys 2021). The grids span 10x to 30x
    around the card's rate; a choice at a grid's edge shows in the section's tuning table."""
    return ("--tune.lr", "[" + ", ".join(f"{rate:g}" for rate in rates) + "]", "--tune.seeds", "2")


# around the MLP cards' Adam 1e-3; up to 1e-2, as MNIST chose 3e-3 when the grid ended there
ADAM_TUNE = tuned(3e-4, 1e-3, 3e-3, 1e-2)
SGD_TUNE = tuned(0.02, 0.05, 0.1, 0.2)  # around the SGD recipe's 0.05


@dataclass(frozen=True)
class Experiment:
    title: str  # the row of the summary table
    args: tuple[str, ...]  # compare arguments after `--task`
    seeds: int = 10
    methods: str = BASE
    jobs: int = 2  # small models: one process per core at one thread each (docs/benchmarks.md, "Threads")
    tune: tuple[str, ...] = ()  # compare --tune.* options: each method's learning rate chosen on validation


EXPERIMENTS: dict[str, Experiment] = {
    "mnist": Experiment(
        "MNIST-5k, MLP, Adam, one optimizer",
        ("mnist", "--task_options", MLP),
        methods="[ce, cot, ce_2x, cot_joint, gce, gen_ce, mae]",
        tune=ADAM_TUNE,
    ),
    "mnist_separate": Experiment(
        "MNIST-5k, MLP, Adam, two optimizers", ("mnist", "--task_options", MLP, *SEPARATE), tune=ADAM_TUNE
    ),
    "mnist_sgd": Experiment(
        "MNIST-5k, MLP, SGD, one optimizer", ("mnist", "--task_options", MLP, *SGD_MNIST), tune=SGD_TUNE
    ),
    "mnist_sgd_separate": Experiment(
        "MNIST-5k, MLP, SGD, two optimizers", ("mnist", "--task_options", MLP, *SGD_MNIST, *SEPARATE), tune=SGD_TUNE
    ),
    "fashion_mnist": Experiment("Fashion-MNIST, MLP, Adam, one optimizer", ("fashion_mnist",), tune=ADAM_TUNE),
    "fashion_mnist_separate": Experiment(
        "Fashion-MNIST, MLP, Adam, two optimizers", ("fashion_mnist", *SEPARATE), tune=ADAM_TUNE
    ),
    "fashion_mnist_sgd": Experiment(
        "Fashion-MNIST, MLP, SGD, one optimizer", ("fashion_mnist", *SGD_FASHION), tune=SGD_TUNE
    ),
    "fashion_mnist_sgd_separate": Experiment(
        "Fashion-MNIST, MLP, SGD, two optimizers", ("fashion_mnist", *SGD_FASHION, *SEPARATE), tune=SGD_TUNE
    ),
    "mnist_noisy": Experiment("MNIST, 40% label noise", ("mnist_noisy", "--task_options", MLP), tune=ADAM_TUNE),
    "mnist_longtail": Experiment("MNIST, long tail", ("mnist_longtail", "--task_options", MLP), tune=ADAM_TUNE),
    "mnist_fewshot": Experiment("MNIST, few-shot", ("mnist_fewshot", "--task_options", MLP), tune=ADAM_TUNE),
    "digits": Experiment("digits (8×8)", ("digits",), tune=tuned(1e-3, 3e-3, 1e-2)),  # its card's Adam 3e-3
    "movie_reviews_frozen": Experiment("movie reviews, frozen MiniLM + MLP", ("movie_reviews_frozen",), tune=ADAM_TUNE),
    "bbc_news_frozen": Experiment("BBC News, frozen MiniLM + MLP", ("bbc_news_frozen",), tune=ADAM_TUNE),
    # MiniLM fine-tuning: minutes a run, so fewer seeds, one process using both cores
    "tweets": Experiment(
        "tweets sentiment, MiniLM fine-tuned",
        ("tweets", "--task_options", "{train_size: 800, max_length: 48}", "--train.max_epochs", "2"),
        seeds=3,
        jobs=1,
    ),
    "bbc_news": Experiment("BBC News, MiniLM fine-tuned", ("bbc_news",), seeds=5, jobs=1),
    "movie_reviews": Experiment("movie reviews, MiniLM fine-tuned", ("movie_reviews",), seeds=3, jobs=1),
    "ner": Experiment(
        "Twitter NER, MiniLM (token accuracy)",
        ("ner", "--task_options", "{train_size: 600}", "--train.max_epochs", "3"),
        seeds=3,
        jobs=1,
    ),
    "tweets_lm": Experiment(
        "next-token, tiny transformer",
        ("tweets_lm", "--train.max_epochs", "3"),
        seeds=5,
        tune=tuned(7e-4, 2e-3, 6e-3),  # around its card's AdamW 2e-3
    ),
}


# Robustness (issue 21): clean, FGSM, PGD-20 (CE and DLR) and ART's AutoAttack on the first 200 test images
# (AutoAttack costs about 1 s an image on a CPU), at the literature's radii; adversarial training at the task's
# card radius, PGD-10. The comp-sum taus: 0 sum-exponential, 0.5, 2 (1 - p_y, MAE / 2); 1 is CE itself.
ATTACKS = ("--robust.attacks", "[fgsm, pgd, pgd_dlr, autoattack]", "--robust.examples", "200")
ROBUST_METHODS = "[ce, ce_2x, cot, gce, comp_sum_tau0, comp_sum_tau0.5, comp_sum_tau2, pgd_at, trades, cot_pgd]"
ROBUST_EXPERIMENTS: dict[str, Experiment] = {
    "robust_digits": Experiment(
        "digits (8×8), MLP, Adam, one optimizer; trained at ε 0.1",
        ("digits", *ATTACKS, "--robust.eps", "[0.05, 0.1, 0.2]"),
        methods=ROBUST_METHODS,
    ),
    "robust_digits_separate": Experiment(
        "digits (8×8), MLP, Adam, two optimizers; trained at ε 0.1",
        ("digits", *SEPARATE, *ATTACKS, "--robust.eps", "[0.05, 0.1, 0.2]"),
        methods="[ce, cot, cot_pgd]",
    ),
    # an MLP has no capacity for Madry et al.'s 0.3 (PGD-AT at 0.3: 63.8% clean, seed 0), so it trains at 0.1
    "robust_mnist": Experiment(
        "MNIST-5k, MLP, Adam, one optimizer; trained at ε 0.1",
        ("mnist", "--task_options", MLP, "--train.adv_eps", "0.1", *ATTACKS, "--robust.eps", "[0.1, 0.2, 0.3]"),
        methods=ROBUST_METHODS,
    ),
    "robust_fashion_mnist": Experiment(
        "Fashion-MNIST, MLP, Adam, one optimizer; trained at ε 0.1",
        ("fashion_mnist", *ATTACKS, "--robust.eps", "[0.05, 0.1, 0.2]"),
        methods=ROBUST_METHODS,
    ),
}
# The training regime as a factor (issue 23): SGD with momentum at lr 0.05, three schedules (none; step at 1/2
# and 3/4 of the run; cosine) with and without weight decay 1e-4, on MNIST-5k, Fashion-MNIST's 20k default and
# all 45k training images it leaves beside its 5k validation and 10k test images (5 seeds: 2.3x as long a run).
REGIME_DATA = {
    "mnist": (("mnist", "--task_options", MLP), 10, "MNIST-5k, MLP"),
    "fashion_mnist": (("fashion_mnist",), 10, "Fashion-MNIST 20k, MLP"),
    "fashion_mnist_45k": (("fashion_mnist", "--task_options", "{train_size: 45000}"), 5, "Fashion-MNIST 45k, MLP"),
}
SCHEDULES = {
    "none": (),
    "step": ("--train.lr_schedule", "step", "--train.lr_milestones", "[0.5, 0.75]"),
    "cosine": ("--train.lr_schedule", "cosine"),
}
DECAYS = {"wd0": "0", "wd1e-4": "1e-4"}
SGD_REGIME = ("--train.optimizer", "sgd", "--train.lr", "0.05")
REGIME_EXPERIMENTS: dict[str, Experiment] = {
    f"regime_{data}_{schedule}_{decay}": Experiment(
        f"{title}, SGD 0.05, schedule {schedule}, weight decay {weight_decay}",
        (*args, *SGD_REGIME, "--train.weight_decay", weight_decay, *schedule_args),
        seeds=seeds,
    )
    for data, (args, seeds, title) in REGIME_DATA.items()
    for schedule, schedule_args in SCHEDULES.items()
    for decay, weight_decay in DECAYS.items()
}
PARTS = {"main": EXPERIMENTS, "robustness": ROBUST_EXPERIMENTS, "regimes": REGIME_EXPERIMENTS}
ROBUST_START, ROBUST_END = "<!-- robustness -->", "<!-- /robustness -->"
REGIMES_START, REGIMES_END = "<!-- regimes -->", "<!-- /regimes -->"


def experiment(name: str) -> Experiment:
    return next(part[name] for part in PARTS.values() if name in part)


def command_for(name: str) -> list[str]:
    e = experiment(name)
    return ["complement", "compare", "--task", *e.args, *e.tune, "--methods", e.methods, "--seeds", str(e.seeds),
            "--jobs", str(e.jobs), "--out", _shown(OUT / name), "--progress", "false"]  # fmt: skip


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (the commands run there and docs show them)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def comparisons_of(name: str) -> list[Path]:
    return sorted((OUT / name).glob("compare-*-2*"))


def newest_finished(name: str) -> Path | None:
    finished = [d for d in comparisons_of(name) if (d / "report.md").exists()]
    return finished[-1] if finished else None


def run_experiment(name: str, rerun: bool) -> None:
    started = comparisons_of(name)
    if started and not rerun and (started[-1] / "report.md").exists():
        print(f"{name}: finished in {started[-1].name}; kept (--rerun to run it again)", flush=True)
        return
    if started and not rerun:
        cmd = ["complement", "compare", "--resume", str(started[-1]), "--progress", "false"]
    else:
        cmd = command_for(name)
    print("$", " ".join(shlex.quote(c) for c in cmd), flush=True)
    here = Path.cwd()
    os.chdir(ROOT)  # the recorded command and its --out are relative to the repository, as docs show them
    try:
        complement(cmd[1:])  # in this process: the CLI's parsing, the comparison's recorded command
    finally:
        os.chdir(here)


def _cell(c: PairedComparison | None) -> str:
    if c is None or c.interval is None:
        return "-"
    low, high = c.interval
    metric = c.metric
    verdict = {"better": "**better**", "worse": "**worse**", "no difference": "no difference"}.get(c.verdict, "n.s.")
    return (
        f"{format_difference(c.mean, metric)} [{format_difference(low, metric)}, {format_difference(high, metric)}] "
        f"{verdict}"
    )


def summary_row(name: str, folder: Path) -> str:
    records = load_records(folder / "records.json")
    groups = by_method(records)
    accuracy = {m: Stat.of(r.test["test_acc"] * 100 for r in groups[m]).format(1) for m in ("cot", "ce", "ce_2x")}
    found = {(c.baseline, c.metric): c for c in paired_comparisons(records) if c.method == "cot"}
    seeds = min(len(groups[m]) for m in ("cot", "ce", "ce_2x"))
    cells = [_cell(found.get(key)) for key in (("ce", "test_acc"), ("ce_2x", "test_acc"), ("ce_2x", "test_nll"))]
    return (
        f"| [{EXPERIMENTS[name].title}](#{name}) | {seeds} | {accuracy['cot']} | {accuracy['ce']} "
        f"| {accuracy['ce_2x']} | {' | '.join(cells)} | {summary_phrase(found)} | {rates_cell(folder)} |"
    )


def rates_cell(folder: Path) -> str:
    """The learning rates of the comparison's paired runs: each method's tuned rate, or the one fixed rate."""
    if not (folder / COMPARE_FILE).exists():
        return "-"
    comparison = Comparison.load(folder)  # checked as a resume checks it
    if comparison.tune is None:
        return f"fixed {comparison.train.lr:g}"
    return "tuned: " + ", ".join(f"{m} {comparison.train_of(m).lr:g}" for m in ("ce", "cot", "ce_2x"))


def section(name: str, folder: Path) -> str:
    text = (folder / "report.md").read_text()
    command = text.split("```bash\n", 1)[1].split("\n```", 1)[0].replace(f"{ROOT}/", "")
    parts = []
    for heading in ("## Verdict", "## The runs", f"## {TUNING_TITLE}", "## Test metrics", "## Paired differences",
                    "## Convergence", "## Equal-compute baseline", f"## {ROBUST_TITLE}"):  # fmt: skip
        start = text.find(heading)
        if start < 0:
            continue
        end = text.find("\n## ", start + 1)
        parts.append("#" + text[start : end if end > 0 else None].strip())  # one level down
    body = without_figures("\n\n".join(parts))
    return f"## {name}\n\n{experiment(name).title}. Command: `{command}`\n\n" + body + "\n"


def without_figures(text: str) -> str:
    """``text`` without its figures and their captions: their links point into the comparison's folder (the
    page copies the figures it shows into docs/figures itself)."""
    lines, skip_caption = [], False
    for line in text.splitlines():
        if line.startswith("!["):
            skip_caption = True
            continue
        if skip_caption and line.strip():
            skip_caption = False
            if line.startswith("*") and line.endswith("*"):
                continue
        lines.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


SUMMARY_HEAD = """\
| experiment | seeds | COT acc. % | CE acc. % | CE, COT's passes, acc. % | COT − CE acc. [95% CI] | COT − CE 2× acc. [95% CI] | COT − CE 2× NLL [95% CI] | reading | learning rates |
|---|---|---|---|---|---|---|---|---|---|"""  # noqa: E501
SUMMARY_COLUMNS = SUMMARY_HEAD.splitlines()[0].count("|") - 1
EARLIER = "not tuned (an earlier run at the card's rate)"


def earlier_results(page: str) -> tuple[dict[str, str], dict[str, str]]:
    """The summary rows and sections of ``page``'s generated part, by experiment: an experiment whose comparison
    is not on this machine keeps them when the page is rebuilt (its runs take hours to repeat)."""
    generated = page.split("<!-- generated -->", 1)[1] if "<!-- generated -->" in page else ""
    rows = {}
    for line in generated.splitlines():
        found = re.match(r"\| \[[^\]]*\]\(#(\w+)\) \|", line)
        if found:
            cells = line.count("|") - 1
            rows[found.group(1)] = line if cells >= SUMMARY_COLUMNS else f"{line} {EARLIER} |"
    sections = {}
    for block in re.split(r"\n(?=## )", generated):
        heading = re.match(r"## (\w+)\n", block)
        if heading and heading.group(1) in EXPERIMENTS:
            sections[heading.group(1)] = block.rstrip() + "\n"
    return rows, sections


def collect() -> None:
    rows, sections, missing, kept = [], [], [], []
    earlier_rows, earlier_sections = earlier_results(DOC.read_text() if DOC.exists() else "")
    for name in EXPERIMENTS:
        folder = newest_finished(name)
        if folder is None and name in earlier_rows and name in earlier_sections:
            kept.append(name)
            rows.append(earlier_rows[name])
            sections.append(earlier_sections[name])
            continue
        if folder is None:
            missing.append(name)
            continue
        rows.append(summary_row(name, folder))
        sections.append(section(name, folder))
        if name == "mnist":
            FIGURES.mkdir(parents=True, exist_ok=True)
            for png in (folder / "figures").glob("*.png"):
                (FIGURES / f"mnist_{png.name}").write_bytes(png.read_bytes())
    intro = DOC.read_text().split("<!-- generated -->")[0] if DOC.exists() else "# Results\n\n"
    generated = [
        "## Summary table (generated)",
        "",
        "Accuracy mean ± std over seeds. The differences are paired by seed (same initial weights and first-epoch "
        "order): mean [95% t-interval], in points for accuracy; **better** / **worse** when the interval excludes 0, "
        "n.s. (not separable) otherwise; NLL lower is better. *CE 2×* is `ce_2x`, cross-entropy for as many "
        "forward/backward passes as COT. p-values, bootstrap intervals and the seeds a separation would need are in "
        "each experiment's section.",
        "",
        SUMMARY_HEAD,
        *rows,
        "",
    ]
    if kept:
        generated += [
            f"Kept from an earlier build of this page (their comparisons are not on this machine; "
            f"`python scripts/results.py {' '.join(kept)}` reruns them): {', '.join(f'`{m}`' for m in kept)}.",
            "",
        ]
    if missing:
        generated += [f"Not run yet in this form: {', '.join(f'`{m}`' for m in missing)}.", ""]
    DOC.write_text(intro.rstrip() + "\n\n<!-- generated -->\n\n" + "\n".join(generated) + "\n" + "\n".join(sections))
    print(f"wrote {DOC} ({len(rows)} experiments, {len(kept)} kept from the page; not run: {missing or 'none'})")


ADVERSARIAL_BASELINE = "pgd_at"


def against_adversarial_training(folder: Path) -> str:
    """The other adversarial methods against ``pgd_at``, paired by seed: clean and worst-case accuracy at each ε
    (the report compares every method with ``ce`` and ``ce_2x`` only)."""
    records = load_records(folder / "records.json")
    groups = by_method(records)
    if ADVERSARIAL_BASELINE not in groups:
        return ""
    metrics = ["test_acc", *(robust_key(WORST, eps) for eps in robust_eps(records))]
    comparisons = []
    for method, group in groups.items():
        if method == ADVERSARIAL_BASELINE or get_method(method).adversarial is None:
            continue
        for metric in metrics:
            values = {r.seed: r.test[metric] for r in group if metric in r.test}
            base = {r.seed: r.test[metric] for r in groups[ADVERSARIAL_BASELINE] if metric in r.test}
            found = paired_comparison(method, ADVERSARIAL_BASELINE, metric, values, base)
            if found is not None:
                comparisons.append(found)
    if not comparisons:
        return ""
    title = f"Adversarial methods against `{ADVERSARIAL_BASELINE}` (clean and worst-case accuracy, points)"
    return f"\n#### {title}\n\n{render_markdown(paired_table(comparisons, title=title))}\n"


def replace_block(start: str, end: str, text: str) -> None:
    """Put ``text`` between the ``start`` and ``end`` markers of docs/results.md, leaving the rest as it is."""
    page = DOC.read_text()
    if start not in page or end not in page:
        raise SystemExit(f"{DOC} has no {start} ... {end} block to rebuild")
    head, rest = page.split(start, 1)
    DOC.write_text(head + start + "\n" + text + end + rest.split(end, 1)[1])


def not_run(missing: list[str]) -> list[str]:
    return [f"Not run yet: {', '.join(f'`{m}`' for m in missing)}.", ""] if missing else []


def collect_robustness() -> None:
    """Rebuild the robustness part of docs/results.md (between its markers) from the robustness experiments."""
    sections, missing = [], []
    for name in ROBUST_EXPERIMENTS:
        folder = newest_finished(name)
        if folder is None:
            missing.append(name)
            continue
        text = section(name, folder).replace("## ", "### ").replace("\n### ", "\n#### ")
        text += against_adversarial_training(folder)
        figure = folder / "figures" / FIGURE_NAME
        if figure.exists():
            FIGURES.mkdir(parents=True, exist_ok=True)
            (FIGURES / f"{name}_{FIGURE_NAME}").write_bytes(figure.read_bytes())
            text += f"\n![Worst-case accuracy against ε, {name}](figures/{name}_{FIGURE_NAME})\n"
        sections.append(text)
    replace_block(ROBUST_START, ROBUST_END, "\n".join(["", *not_run(missing), *sections, ""]))
    print(f"wrote the robustness part of {DOC} ({len(sections)} experiments; not run: {missing or 'none'})")


REGIME_HEAD = """\
| schedule | weight decay | seeds | CE acc. % | COT − CE acc. [95% CI] | COT − CE 2× acc. [95% CI] | COT − CE 2× NLL [95% CI] |
|---|---|---|---|---|---|---|"""  # noqa: E501


def collect_regimes() -> None:
    """Rebuild the regimes part of docs/results.md: per data set, COT against CE and CE 2× under each regime."""
    lines, missing = [""], []
    for data, (_, _, title) in REGIME_DATA.items():
        rows = []
        for schedule in SCHEDULES:
            for decay, weight_decay in DECAYS.items():
                name = f"regime_{data}_{schedule}_{decay}"
                folder = newest_finished(name)
                if folder is None:
                    missing.append(name)
                    continue
                records = load_records(folder / "records.json")
                groups = by_method(records)
                found = {(c.baseline, c.metric): c for c in paired_comparisons(records) if c.method == "cot"}
                cells = [
                    _cell(found.get(k)) for k in (("ce", "test_acc"), ("ce_2x", "test_acc"), ("ce_2x", "test_nll"))
                ]
                ce = Stat.of(r.test["test_acc"] * 100 for r in groups["ce"]).format(1)
                seeds = min(len(groups[m]) for m in ("cot", "ce", "ce_2x"))
                rows.append(f"| {schedule} | {weight_decay} | {seeds} | {ce} | {' | '.join(cells)} |")
        if rows:
            command = " ".join(shlex.quote(c) for c in command_for(f"regime_{data}_step_wd1e-4"))
            shown = f"Command (step schedule, weight decay 1e-4; the others alike): `{command}`"
            lines += [f"### {title}", "", shown, "", REGIME_HEAD, *rows, ""]
    replace_block(REGIMES_START, REGIMES_END, "\n".join([*lines, *not_run(missing)]))
    print(f"wrote the regimes part of {DOC} (not run: {missing or 'none'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="*", help="some experiments of the part (--list shows them); default all")
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--rerun", action="store_true", help="start finished experiments afresh")
    parser.add_argument("--list", action="store_true")
    parts = "main: the accuracy experiments; robustness; regimes: the training regime as a factor"
    parser.add_argument("--part", choices=list(PARTS), default="main", help=parts)
    args = parser.parse_args()
    chosen = PARTS[args.part]
    unknown = [e for e in args.experiments if e not in chosen]
    if unknown:
        other = [part for part, names in PARTS.items() if set(unknown) <= set(names)]
        hint = f" (they are in --part {other[0]})" if other else ""
        raise SystemExit(f"unknown experiments {unknown} in --part {args.part}{hint}; --list shows them")
    if args.list:
        for name in chosen:
            print(f"{name}: {' '.join(shlex.quote(c) for c in command_for(name))}")
        return
    if not args.collect_only:
        for name in args.experiments or list(chosen):
            run_experiment(name, args.rerun)
    {"main": collect, "robustness": collect_robustness, "regimes": collect_regimes}[args.part]()


if __name__ == "__main__":
    main()
