"""Adversarial robustness of a run's final model: the checks before a run starts, the evaluation
at the end of training, and ``complement robust DIR`` on finished runs.

The threat model and the attacks are :mod:`complement.robustness`'s: L∞ perturbations of at
most ε per pixel of images in ``[0, 1]``. Image tasks store normalized inputs, so the test
inputs are mapped back to pixels with the task's ``info["mean"]`` / ``info["std"]`` and the
normalization moves inside the attacked model (:class:`~complement.robustness.Normalized`):
ε means the same for every task. Text, token and language-model tasks have no pixel space and
are refused (as are image-kind tasks whose inputs are no pixels, e.g. sentence embeddings),
before any directory is made.

A run's evaluation is stored in its record (:mod:`..report.records`: ``robust``, and its
accuracies in ``test`` under :func:`~..report.records.robust_key`); its settings in the run's
``config.json`` and the comparison's ``compare.json``. ``fit`` and ``compare`` evaluate after
training (before the run is marked complete, so a complete run always has its evaluation);
a resumed run keeps the saved settings. ``complement robust DIR`` evaluates the finished runs
of a directory from their final checkpoints, without training, and saves its settings, so a
comparison resumed afterwards evaluates its remaining runs the same way.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from ..._atomic import write_json
from ...robustness import Normalized, masking_checks, robust_accuracy
from ...robustness.threat import check_logits
from ..report.records import ROBUST_PREFIX, WORST, RunRecord, format_eps, robust_key
from .config import ART_ATTACKS, ResolvedTrainConfig, RobustConfig, RobustSettings
from .files import CONFIG_FILE, RunSpec, load_run_record, load_spec, save_spec
from .lock import directory_lock
from .status import read_status

PIXEL_TOLERANCE = 1e-4  # normalizing and undoing it moves pixels by float rounding only
ATTACK_BATCH = 256
COMPARE_FILE = "compare.json"  # comparison.py's (not imported: it imports this module)


def _fix(what: str) -> str:
    """What to do when ``what`` (``--robust`` or an adversarial method) meets a task without pixels."""
    return (
        "drop the --robust options for this task"
        if what == "--robust"
        else "choose a method without adversarial training"
    )


def pixel_normalization(task: Any, what: str = "--robust") -> tuple[list[float], list[float]]:
    """The per-channel ``(mean, std)`` that map the task's inputs back to pixels; a clear error, naming
    ``what`` asked for pixels, for a task without them (text, tokens) or without a recorded normalization."""
    name, kind = getattr(task, "name", "?"), getattr(task, "kind", None)
    fix = _fix(what)
    if kind != "image":
        raise ValueError(
            f"{what}: task {name!r} is a {kind} task; its inputs are token ids, with no pixel space for an L∞ "
            "attack in pixels. Attacks and adversarial training are for image tasks (mnist, fashion_mnist, cifar10, "
            f"digits, image_folder): {fix}."
        )
    info = getattr(task, "info", None) or {}
    mean, std = info.get("mean"), info.get("std")
    if mean is None or std is None:
        raise ValueError(
            f"{what}: task {name!r} records no pixel normalization (info 'mean' and 'std'), so its inputs cannot "
            "be mapped back to pixels in [0, 1]: record the per-channel mean and std its images were normalized "
            f"with in Task.info, or {fix}"
        )
    return [float(m) for m in mean], [float(s) for s in std]


def channels(task: Any) -> int | None:
    shape = (getattr(task, "info", None) or {}).get("image_shape")
    return int(shape[0]) if isinstance(shape, (list, tuple)) and shape else None


def to_pixels(task: Any, x: Any, what: str = "--robust", split: str = "test") -> Tensor:
    """The task's normalized image inputs ``x`` as pixels in ``[0, 1]``; a clear error, naming ``what``
    needs pixels, when they are no images or fall outside ``[0, 1]`` (e.g. sentence embeddings)."""
    mean, std = pixel_normalization(task, what)
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != len(mean):
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{what}: the {split} inputs of task {task.name!r} are not images (N, {len(mean)}, H, W) with its "
            f"{len(mean)}-channel normalization; got {got}"
        )
    shape = (1, len(mean), 1, 1)
    pixels = x.float() * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
    low, high = float(pixels.min()), float(pixels.max())
    if low < -PIXEL_TOLERANCE or high > 1 + PIXEL_TOLERANCE:
        raise ValueError(
            f"{what}: the {split} inputs of task {task.name!r} are not images in [0, 1] once its normalization is "
            f"undone (values in [{low:.3g}, {high:.3g}]), so an L∞ radius in pixels means nothing for them "
            f"(e.g. sentence embeddings); {_fix(what)}"
        )
    return pixels.clamp(0.0, 1.0)


def pixel_batches(
    task: Any, settings: RobustSettings, device: str | torch.device = "cpu"
) -> Iterator[tuple[Tensor, Tensor]]:
    """The first ``settings.examples`` test examples (all when None) as ``(pixels in [0, 1], target)`` batches."""
    test = task.test
    count = len(test) if settings.examples is None else min(settings.examples, len(test))
    loader = DataLoader(Subset(test, range(count)), batch_size=ATTACK_BATCH, collate_fn=task.collate_fn)
    for x, y in loader:
        yield to_pixels(task, x).to(device), y.to(device)


def check_task(task: Any, settings: RobustSettings) -> None:
    """What can be checked before training: pixels, the attacks' needs, and a model that returns logits."""
    mean, std = pixel_normalization(task)
    if "pgd_dlr" in settings.attacks and task.num_classes < 3:
        raise ValueError(
            f"--robust.attacks pgd_dlr needs at least 3 classes (the DLR loss divides by the gap between the first "
            f"and third logits); task {task.name!r} has {task.num_classes}. Use fgsm and pgd."
        )
    missing_art = [name for name in settings.attacks if name in ART_ATTACKS]
    if missing_art:
        import importlib.util

        if importlib.util.find_spec("art") is None:
            raise ModuleNotFoundError(
                f"--robust.attacks {missing_art} come from the Adversarial Robustness Toolbox, which is not "
                'installed: pip install "complement[robust]", or use fgsm, pgd and pgd_dlr'
            )
    first = None
    for batch in pixel_batches(task, settings):  # checks the range of every attacked example (arithmetic only)
        first = batch if first is None else first
    if first is None:
        raise ValueError(f"--robust: task {task.name!r} has no test examples to attack")
    model = Normalized(task.build_model(), mean, std).eval()
    with torch.no_grad():
        try:
            check_logits(model(first[0][:2]), min(2, len(first[0])))
        except (TypeError, ValueError) as error:
            raise type(error)(f"--robust: the model of task {task.name!r} cannot be attacked: {error}") from None


def resolve(given: RobustConfig | None, task: Any, saved: RobustSettings | None = None, *,
            always: bool = False) -> RobustSettings | None:  # fmt: skip
    """The robust settings of a run of ``task``: ``given``'s, else ``saved``'s, else the defaults; None when
    nothing asks for an evaluation (unless ``always``). Checked against the task (:func:`check_task`)."""
    given = given or RobustConfig()
    if not given.given() and saved is None and not always:
        return None
    pixel_normalization(task)  # a text task is refused for what it is, before its settings are read
    settings = RobustSettings.resolve(given, channels(task), saved)
    check_task(task, settings)
    return settings


def evaluation_device(config: ResolvedTrainConfig) -> torch.device:
    """The GPU where the run may use one and there is one, else the CPU."""
    if config.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


_CHECK_EPS = re.compile(r"\(eps ([^)]+)\)$")


def _check_eps(name: str, radii: tuple[float, ...]) -> float | None:
    """The ε a masking check concerns (the radius of the settings it names); None for one concerning all."""
    match = _CHECK_EPS.search(name)
    if match is None:
        return None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    return min(radii, key=lambda e: abs(e - value)) if radii else value


def evaluate(model: nn.Module, task: Any, settings: RobustSettings, seed: int,
             device: str | torch.device = "cpu") -> dict[str, Any]:  # fmt: skip
    """Attack ``model`` (the task's model, on normalized inputs) on the task's first test examples; the record's
    ``robust`` entry (:mod:`..report.records`)."""
    mean, std = pixel_normalization(task)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    attacked = Normalized(model, mean, std).to(device=device, dtype=dtype)  # a float64 run attacks in float64
    batches = ((x.to(dtype), y) for x, y in pixel_batches(task, settings, device))
    start = time.perf_counter()
    results = robust_accuracy(attacked, batches, list(settings.eps), list(settings.attacks), steps=settings.steps,
                              seed=seed)  # fmt: skip
    checks = masking_checks(results)
    return {
        "settings": settings.to_dict(),
        "examples": results[0].total,
        "results": [dataclasses.asdict(r) for r in results],
        "checks": [{**dataclasses.asdict(c), "eps": _check_eps(c.name, settings.eps)} for c in checks],
        "wall_time_s": time.perf_counter() - start,
    }


def robust_test_metrics(robust: dict[str, Any]) -> dict[str, float]:
    """The ``test`` entries of an evaluation: each attack's and the worst case's accuracy at each ε asked."""
    radii = [float(e) for e in robust.get("settings", {}).get("eps", [])]
    metrics = {}
    for item in robust.get("results", []):
        if item["attack"] != "clean" and float(item["eps"]) in radii and item["total"]:
            metrics[robust_key(item["attack"], float(item["eps"]))] = item["correct"] / item["total"]
    return metrics


def apply(record: RunRecord, robust: dict[str, Any]) -> RunRecord:
    """``record`` with the evaluation ``robust`` in place of any earlier one."""
    test = {k: v for k, v in record.test.items() if not k.startswith(ROBUST_PREFIX)}
    return dataclasses.replace(record, test={**test, **robust_test_metrics(robust)}, robust=robust)


def summary(robust: dict[str, Any]) -> str:
    """One line: the worst-case accuracy at each ε, the failed masking checks, the time."""
    found = {(r["attack"], float(r["eps"])): r["correct"] / r["total"] for r in robust["results"] if r["total"]}
    parts = [f"clean {found.get(('clean', 0.0), float('nan')):.1%}"]
    parts += [f"ε {format_eps(float(e))} {found[(WORST, float(e))]:.1%}" for e in robust["settings"]["eps"]
              if (WORST, float(e)) in found]  # fmt: skip
    failed = [c["name"] for c in robust["checks"] if not c["passed"]]
    text = f"worst-case accuracy on {robust['examples']:,} test examples: {', '.join(parts)}"
    text += f"; masking checks failed: {', '.join(failed)}" if failed else "; masking checks passed"
    return text + f" ({robust['wall_time_s']:.1f} s)"


# --- complement robust DIR ----------------------------------------------------------------------------


def final_checkpoint(run_dir: Path) -> Path:
    """The newest epoch-end checkpoint of a finished run: its model at the end of training."""
    from .checkpoints import CHECKPOINTS, checkpoints_by_step

    found = checkpoints_by_step(run_dir, ("epoch=",))
    if not found:
        raise FileNotFoundError(
            f"{run_dir} has no epoch checkpoint ({CHECKPOINTS}/epoch=*.ckpt): the run's final model is not saved, so "
            "it cannot be evaluated without training it again"
        )
    return max(found)[2]


def load_final_model(run_dir: Path, spec: RunSpec, task: Any, record: RunRecord) -> nn.Module:
    """The task's model with the weights of the run's final checkpoint (verified first)."""
    from ...training.checkpointing import verify_checkpoint
    from .methods import get_method
    from .module import TaskModule

    path = final_checkpoint(run_dir)
    problem = verify_checkpoint(path)
    if problem is not None:
        raise ValueError(f"{path} cannot be used: {problem}. The run's final model is lost; train it again")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or not isinstance(saved.get("state_dict"), dict):
        raise ValueError(f"{path} holds no state_dict of a model; it is not a checkpoint of a complement run")
    epochs = int(record.history[-1]["epoch"]) if record.history else None
    if epochs is not None and saved.get("epoch") is not None and int(saved["epoch"]) + 1 != epochs:
        raise ValueError(
            f"{path} is from epoch {int(saved['epoch']) + 1}, but the run trained {epochs}: its model at the end of "
            "training is not saved, so it cannot be evaluated without training it again"
        )
    module = TaskModule(task.build_model(), task.num_classes, task.ignore_index, get_method(spec.method), spec.train)
    module.load_state_dict(saved["state_dict"])
    return module.model


@dataclass
class RobustOutcome:
    """What ``complement robust DIR`` did."""

    directory: Path
    settings: RobustSettings
    evaluated: list[Path] = field(default_factory=list)
    already: list[Path] = field(default_factory=list)  # evaluated before with the same settings
    unfinished: list[Path] = field(default_factory=list)
    records: list[RunRecord] = field(default_factory=list)
    report: Path | None = None
    console_table: str = ""


def _finished(run_dir: Path) -> bool:
    return read_status(run_dir).status == "complete" and (run_dir / "record.json").is_file()


def _evaluate_run(run_dir: Path, given: RobustConfig, settings: RobustSettings | None, threads: int | str,
                  label: str) -> tuple[RunRecord, RobustSettings, bool]:  # fmt: skip
    """Evaluate one finished run (holding its lock) and write its record and config; ``settings`` None:
    resolve them from ``given`` and the run's saved ones. Returns the record, the settings and whether it ran."""
    from . import launch
    from .threads import resolve_threads

    launch.refuse_if_running(run_dir)
    with directory_lock(run_dir):
        spec = load_spec(run_dir)
        record = load_run_record(run_dir)
        task = launch.build_task(spec.task, spec.task_options, spec.seed)
        if settings is None:
            settings = resolve(given, task, spec.robust, always=True)
            assert settings is not None
        if record.robust.get("settings") == settings.to_dict() and spec.robust == settings:
            print(f"{label}: already evaluated with these settings", flush=True)
            return record, settings, False
        model = load_final_model(run_dir, spec, task, record)
        torch.set_num_threads(resolve_threads(threads, model))
        robust = evaluate(model, task, settings, spec.seed, evaluation_device(spec.train))
        record = apply(record, robust)
        write_json(run_dir / "record.json", record.to_dict())
        save_spec(run_dir, dataclasses.replace(spec, robust=settings))
        print(f"{label}: {summary(robust)}", flush=True)
        return record, settings, True


def robust_directory(
    directory: Path, given: RobustConfig | None = None, *, threads: int | str = "auto"
) -> RobustOutcome:
    """``complement robust DIR``: evaluate the finished runs of a run or comparison directory from their final
    checkpoints, write each record, save the settings, and rewrite the comparison's report."""
    from .threads import check_threads

    check_threads(threads)
    directory, given = Path(directory), given or RobustConfig()
    if (directory / COMPARE_FILE).is_file():
        return _robust_comparison(directory, given, threads)
    if (directory / CONFIG_FILE).is_file():
        return _robust_run(directory, given, threads)
    what = "does not exist" if not directory.exists() else f"holds neither {COMPARE_FILE} nor {CONFIG_FILE}"
    raise FileNotFoundError(
        f"{directory} {what}: complement robust evaluates a run directory (made by fit) or a comparison directory "
        "(made by compare)"
    )


def _robust_run(run_dir: Path, given: RobustConfig, threads: int | str) -> RobustOutcome:
    load_spec(run_dir)  # a run's configuration (a clear error otherwise) before its lock file is made
    if not _finished(run_dir):
        status = read_status(run_dir).status or "not started"
        raise ValueError(
            f"{run_dir} holds no finished run: its status is {status!r} and complement robust evaluates complete "
            f"runs (with a record.json). Finish it first: complement fit --resume {run_dir}"
        )
    record, settings, ran = _evaluate_run(run_dir, given, None, threads, run_dir.name)
    outcome = RobustOutcome(run_dir, settings, records=[record])
    (outcome.evaluated if ran else outcome.already).append(run_dir)
    return outcome


def _robust_comparison(directory: Path, given: RobustConfig, threads: int | str) -> RobustOutcome:
    from . import launch
    from .comparison import Comparison

    Comparison.load(directory)  # a comparison (a clear error otherwise) before its lock file is made
    with directory_lock(directory, "comparison"):
        comparison = Comparison.load(directory)
        runs = comparison.run_dirs()
        for run in runs:
            launch.refuse_if_running(run)
        finished = [run for run in runs if _finished(run)]
        if not finished:
            raise ValueError(
                f"{directory} holds no finished run: none of its {len(runs)} runs is complete (with a record.json), "
                f"and complement robust evaluates complete runs. Finish them first: complement compare --resume "
                f"{directory}"
            )
        first = load_spec(finished[0])
        task = launch.build_task(first.task, first.task_options, first.seed)
        settings = resolve(given, task, comparison.robust, always=True)  # checked before anything is written
        assert settings is not None
        outcome = RobustOutcome(directory, settings, unfinished=[run for run in runs if run not in finished])
        for index, run in enumerate(finished, 1):
            _, _, ran = _evaluate_run(run, given, settings, threads, f"[{index}/{len(finished)}] {run.name}")
            (outcome.evaluated if ran else outcome.already).append(run)
        dataclasses.replace(comparison, robust=settings).save()
        if outcome.unfinished:
            return outcome
        outcome.records = [load_run_record(run) for run in runs]
        from ..report import write_report  # matplotlib loads only to write the report

        paths = write_report(outcome.records, directory, task_name=comparison.task, command=comparison.command,
                             sections=comparison.tuning_lines())  # fmt: skip
        outcome.report, outcome.console_table = paths.report, paths.console_table
        return outcome
