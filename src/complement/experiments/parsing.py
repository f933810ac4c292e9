"""How ``complement``'s command line is parsed, on top of jsonargparse: help that shows each
option's choices and real default, parse errors in one line, and lists given space-separated.

jsonargparse prints ``(type: str | null, default: null)`` for a setting whose ``None`` means
"the task's default", and a union-type error as eight lines after the whole usage text. Both
are replaced here; the parsing itself stays jsonargparse's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from jsonargparse import CLI, ArgumentParser, DefaultHelpFormatter, capture_parser

from ..robustness.evaluate import ATTACKS
from .runs.config import (
    ACCELERATORS,
    ART_EXAMPLES,
    BEST_MODES,
    COT_OPTIMIZERS,
    DEFAULT_STEPS,
    FALLBACKS,
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    TrainConfig,
    check_config_files,
)
from .runs.methods import METHODS


def _task_names() -> list[str]:
    from .tasks import available_tasks  # loads the task registry: only when help is shown

    return list(available_tasks())


# option -> its allowed values (a callable: computed when help is shown)
CHOICES: dict[str, Sequence[str] | Callable[[], Sequence[str]]] = {
    "method": lambda: list(METHODS),
    "methods": lambda: list(METHODS),
    "task": _task_names,
    "train.optimizer": OPTIMIZERS,
    "train.cot_optimizers": COT_OPTIMIZERS,
    "train.lr_schedule": LR_SCHEDULES,
    "train.keep_best": list(BEST_MODES),
    "train.accelerator": ACCELERATORS,
    "train.precision": PRECISIONS,
    "robust.attacks": ATTACKS,
}
# option -> what an unset (None) value means
UNSET_MEANS: dict[str, str] = {
    "task": "mnist",
    "method": "cot",
    "methods": "[ce, cot, ce_2x]",
    "seed": "0",
    "seeds": "3",
    **{f"train.{key}": f"the task's, else {value}" for key, value in FALLBACKS.items()},
    "train.checkpoint_every_n_steps": "epoch ends only",
    "train.keep_best": "none kept",
    "train.lr_milestones": "none (needed by lr_schedule step)",
    "task_options": "the task's (complement list --task NAME shows them)",
    "resume": "a new run",
    "robust.attacks": "[fgsm, pgd] when any --robust option is given; no robust evaluation otherwise",
    "robust.eps": "[0.1, 0.2, 0.3] for grey images, [8/255] for colour ones",
    "robust.steps": str(DEFAULT_STEPS),
    "robust.examples": f"the whole test set; its first {ART_EXAMPLES} with square or autoattack",
}
# accept `--methods ce cot` as `--methods '[ce, cot]'`
LIST_OPTIONS = ("--train.lr_milestones", "--methods", "--robust.attacks", "--robust.eps", "--tune.lr")
EXAMPLES = {
    "train.lr_milestones": "--train.lr_milestones '[100, 150]' (or 100 150; fractions of the run: '[0.5, 0.75]')",
    "methods": "--methods '[ce, cot]' (or ce cot)",
    "robust.attacks": "--robust.attacks '[fgsm, pgd]' (or fgsm pgd)",
    "robust.eps": "--robust.eps '[0.1, 0.2, 0.3]' (or 0.1 0.2 0.3, or 8/255)",
    "task_options": "--task_options '{label_noise: 0.2}'",
}


class HelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help, with the choices and the meaning of an unset value where known."""

    def _get_help_string(self, action: Any) -> str:
        key = getattr(action, "dest", "")
        if key not in CHOICES and key not in UNSET_MEANS:
            return super()._get_help_string(action)
        text = (action.help or "").rstrip()
        parts = []
        choices = CHOICES.get(key)
        if choices is not None:
            values = choices() if callable(choices) else choices
            parts.append("choices: " + ", ".join(str(v) for v in values))
        if action.default is None and key in UNSET_MEANS:
            parts.append(f"default: {UNSET_MEANS[key]}")
        elif action.default is not None:
            parts.append(f"default: {action.default}")
        return (text + " (" + "; ".join(parts) + ")").replace("%", "%%")


class Parser(ArgumentParser):
    """jsonargparse's parser with :class:`HelpFormatter`, raising parse errors instead of exiting
    (``main`` prints them in one line)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("exit_on_error", False)
        super().__init__(*args, **kwargs)


def join_list_values(argv: Sequence[str]) -> list[str]:
    """``--methods ce cot`` -> ``--methods [ce, cot]``: the values after a list option, up to the next option."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        joined.append(argv[index])
        if argv[index] in LIST_OPTIONS:
            values = []
            while index + 1 < len(argv) and not argv[index + 1].startswith("--"):
                index += 1
                values.append(argv[index])
            if len(values) > 1 or (values and not values[0].lstrip().startswith("[")):
                joined.append("[" + ", ".join(values) + "]")
            else:
                joined.extend(values)
        index += 1
    return joined


_FRIENDLY = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
             "list[int]": "a list of integers", "list[str]": "a list of names", "Path": "a path",
             "list[int | float]": "a list of epochs or of fractions of the run"}  # fmt: skip


def one_line(error: Exception) -> str:
    """A jsonargparse parse error in one line: the option, what it takes, what it got, an example."""
    text = str(error)
    match = re.match(r'Parser key "([^"]+)":', text)
    if not match:
        return text.strip().splitlines()[0] if text.strip() else type(error).__name__
    key = match.group(1)
    subtypes = re.search(r"Subtypes: \[(.*)\]", text)
    given = re.search(r"Given value: (.*)", text)
    names = (
        [re.sub(r"<class '(?:\w+\.)*(\w+)'>", r"\1", t.strip()) for t in subtypes.group(1).split(", ")]
        if subtypes
        else []
    )
    wanted = [_FRIENDLY.get(name, name) for name in names if name != "NoneType"]
    if key.startswith("task_options") or any(name.startswith("dict") for name in names):
        wanted = ["a mapping of names to YAML/JSON values"]
    expected = " or ".join(wanted) if wanted else text.splitlines()[1].strip() if "\n" in text else "another value"
    line = f"--{key} takes {expected}; got {given.group(1).strip()!r}" if given else f"--{key} takes {expected}"
    example = EXAMPLES.get(key)
    return line + (f", e.g. {example}" if example else "")


def run_cli(commands: dict[str, Any], argv: list[str]) -> None:
    """Parse ``argv`` and run its command: the config-file check first, ``--print_config`` with
    resolved values, then jsonargparse."""
    check_config_files(argv)  # a YAML list at the top: one clear line, not jsonargparse's usage text
    if any(_is_print_config(arg) for arg in argv):
        _print_resolved_config(commands, argv)
    CLI(commands, args=argv, parser_class=Parser)


def _is_print_config(arg: str) -> bool:
    return arg == "--print_config" or arg.startswith("--print_config=")


def _print_resolved_config(commands: dict[str, Any], argv: list[str]) -> None:
    """``fit`` / ``compare --print_config`` with the values a run would use: the task, method(s),
    seed(s) and train settings from the task's card (nothing is built). Values the data decides
    (``image_folder``'s epochs) stay ``null``; a ``--resume`` prints as given. Prints and exits,
    as jsonargparse does."""
    from .runs.comparison import DEFAULT_METHODS, DEFAULT_SEEDS
    from .runs.launch import DEFAULT_METHOD, DEFAULT_TASK
    from .tasks.options import resolved_train_defaults

    parser = capture_parser(lambda: CLI(commands, args=argv, parser_class=Parser))
    parsed = parser.parse_args([arg for arg in argv if not _is_print_config(arg)])
    command = parsed.subcommand
    if command not in ("fit", "compare") or parsed[command].resume is not None:
        return
    given = parsed[command]
    task = given.task or DEFAULT_TASK
    resolved = resolved_train_defaults(task, TrainConfig(**given.train.as_dict()), given.task_options)
    defaults: dict[str, Any] = {f"{command}.task": task, **{f"{command}.train.{k}": v for k, v in resolved.items()}}
    if command == "fit":
        defaults |= {"fit.method": given.method or DEFAULT_METHOD, "fit.seed": 0 if given.seed is None else given.seed}
    else:
        defaults |= {"compare.methods": given.methods or list(DEFAULT_METHODS),
                     "compare.seeds": given.seeds or DEFAULT_SEEDS}  # fmt: skip
    parser.set_defaults(defaults)
    parser.parse_args(argv)  # jsonargparse's own print (its flags included), then exit 0
