"""A run's training settings: what can be set, their defaults, and what may change on resume."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

OPTIMIZERS = ("adam", "adamw", "sgd")
# "shared": one optimizer for both COT steps, as in the blog (and half the optimizer
# memory of "separate"); "separate": the authors' two optimizers with the same settings,
# each keeping its own state (henry8527/COT).
COT_OPTIMIZERS = ("shared", "separate")
LR_SCHEDULES = ("none", "step", "cosine", "warmup_linear")
# Lightning's names; the harness trains on one device (a sharded run: the library's CotModule
# under your own Trainer, docs/training.md "Scaling out").
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "64-true")
# Metrics a run can keep its best checkpoint by, and which way is better.
BEST_MODES = {"val_acc": "max", "val_precision": "max", "val_loss": "min", "val_nll": "min", "val_ece": "min"}
FALLBACKS: dict[str, Any] = {
    "max_epochs": 10,
    "batch_size": 64,
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "complement_weight": 1.0,
    "cot_optimizers": "shared",
    "accumulate_grad_batches": 1,
    "lr_schedule": "none",
    "lr_gamma": 0.1,
    "lr_warmup": 0.1,
    "accelerator": "auto",
    "devices": 1,
    "precision": "32-true",
    "adv_eps": None,  # an image task's data card gives its radius; other tasks have none
    "adv_steps": 10,
    "adv_step_size": None,  # 2.5 adv_eps / adv_steps
    "trades_beta": 6.0,
}
# Settings added after 0.1: a run saved without them ran with these fallbacks.
ADDED_SINCE_0_1 = ("lr_warmup", "accelerator", "devices", "precision", "adv_eps", "adv_steps", "adv_step_size",
                   "trades_beta")  # fmt: skip
# Changes a resumed run may take: they change how long it trains or how often it is
# saved, not the run so far. Anything else needs a new run.
RESUME_CHANGES = {"max_epochs": "to train longer", "checkpoint_every_n_steps": "to checkpoint more or less often"}


@dataclass
class TrainConfig:
    """Hyper-parameters of a run; ``None`` takes the task's default, then the fallback.

    Args:
        max_epochs: training epochs (``ce_2x`` trains twice as many).
        batch_size: examples per micro-batch.
        lr: learning rate of the optimizer(s).
        optimizer: ``adam``, ``adamw`` or ``sgd`` (momentum 0.9).
        weight_decay: the optimizer's weight decay.
        complement_weight: multiplies COT's complement loss.
        cot_optimizers: ``shared`` (one optimizer for both steps, as in the blog) or
            ``separate`` (the authors' two optimizers, same settings, separate state). Under
            SGD the two did not differ measurably; under Adam ``separate`` cost 6 points on
            Fashion-MNIST (docs/results.md), so ``shared`` is the default.
        accumulate_grad_batches: micro-batches per optimizer step.
        checkpoint_every_n_steps: also checkpoint every N optimizer steps (default: only at
            epoch ends).
        keep_best: also keep the checkpoint with the best value of this validation metric
            (``val_acc``, ``val_precision``, ``val_loss``, ``val_nll`` or ``val_ece``).
        lr_schedule: ``none``, ``step`` (multiply the learning rate by ``lr_gamma`` at each epoch of
            ``lr_milestones``, as the COT paper's 100 and 150 of 200), ``cosine`` (to 0 over the run)
            or ``warmup_linear`` (see ``lr_warmup``). For ``ce_2x`` the schedule stretches with the epochs.
        lr_milestones: when a ``step`` schedule decays: epochs (1-based counts of finished epochs,
            e.g. ``[100, 150]``), or fractions of the run's epochs in (0, 1) (``[0.5, 0.75]``: after
            half and three quarters of training, whatever ``max_epochs``, ``ce_2x`` included). A
            milestone at or after the last epoch would never apply and is refused.
        lr_gamma: the factor of a ``step`` schedule.
        lr_warmup: the fraction of the run's optimizer steps over which ``warmup_linear`` raises the
            learning rate linearly from 0, before it falls linearly to 0 at the end
            (Hugging Face's default schedule for fine-tuning). Step-based, unlike the others.
        accelerator: Lightning's accelerator (``auto``: a GPU when there is one).
        devices: how many devices: the harness trains one process on one device.
        precision: Lightning's precision (``16-mixed`` needs a GPU).
        adv_eps: the L∞ radius, in pixels of [0, 1] images, of the adversarial-training methods
            (``pgd_at``, ``trades``, ``cot_pgd``); a number or a fraction such as ``8/255``. Default:
            the task's, from its data card (MNIST 0.3 as Madry et al., CIFAR-10 8/255).
        adv_steps: PGD steps of their inner maximization (10, the CIFAR-10 papers' setting).
        adv_step_size: PGD's step, a number or a fraction (default 2.5 adv_eps / adv_steps:
            2/255 for CIFAR-10's 8/255 and 10 steps).
        trades_beta: TRADES' weight of its KL term (6, the paper's).
    """

    max_epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    complement_weight: float | None = None
    cot_optimizers: str | None = None
    accumulate_grad_batches: int | None = None
    checkpoint_every_n_steps: int | None = None
    keep_best: str | None = None
    lr_schedule: str | None = None
    lr_milestones: list[int | float] | None = None
    lr_gamma: float | None = None
    lr_warmup: float | None = None
    accelerator: str | None = None
    devices: int | None = None
    precision: str | None = None
    adv_eps: float | str | None = None
    adv_steps: int | None = None
    adv_step_size: float | str | None = None
    trades_beta: float | None = None

    def resolved(self, defaults: dict[str, Any]) -> ResolvedTrainConfig:
        values: dict[str, Any] = {}
        for key, value in asdict(self).items():
            value = value if value is not None else defaults.get(key)
            values[key] = value if value is not None else FALLBACKS.get(key)
        return ResolvedTrainConfig(**values)

    def given(self) -> dict[str, Any]:
        """The settings set explicitly (not ``None``)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"train.{name} must be an integer >= 1; got {value!r}")


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(
            f"train.{name} must be a finite number; got {value} (a run with it diverges). "
            f"Give a finite value, e.g. --train.{name} {FALLBACKS[name]}"
        )


@dataclass(frozen=True)
class ResolvedTrainConfig:
    """A :class:`TrainConfig` with every value filled in and checked."""

    max_epochs: int
    batch_size: int
    lr: float
    optimizer: str
    weight_decay: float
    complement_weight: float
    cot_optimizers: str
    accumulate_grad_batches: int
    checkpoint_every_n_steps: int | None = None
    keep_best: str | None = None
    lr_schedule: str = "none"
    lr_milestones: tuple[int | float, ...] | None = None
    lr_gamma: float = 0.1
    lr_warmup: float = 0.1
    accelerator: str = "auto"
    devices: int = 1
    precision: str = "32-true"
    adv_eps: float | None = None
    adv_steps: int = 10
    adv_step_size: float | None = None
    trades_beta: float = 6.0

    def __post_init__(self) -> None:
        if self.lr_milestones is not None:  # JSON and YAML give lists; the frozen record keeps a tuple
            object.__setattr__(self, "lr_milestones", tuple(self.lr_milestones))
        self._check_adversarial()
        for name in ("max_epochs", "batch_size", "accumulate_grad_batches"):
            _positive_int(name, getattr(self, name))
        _positive_int("checkpoint_every_n_steps", self.checkpoint_every_n_steps, allow_none=True)
        for name, low in (("lr", None), ("weight_decay", 0.0), ("complement_weight", 0.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"train.{name} must be a number; got {value!r}")
            _finite(name, value)
            if (low is None and not value > 0) or (low is not None and not value >= low):
                raise ValueError(f"train.{name} must be {'> 0' if low is None else '>= 0'}; got {value}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}")
        if self.cot_optimizers not in COT_OPTIMIZERS:
            raise ValueError(f"train.cot_optimizers must be one of {COT_OPTIMIZERS}; got {self.cot_optimizers!r}")
        self._check_schedule()
        self._check_hardware()
        if self.keep_best is not None and self.keep_best not in BEST_MODES:
            raise ValueError(f"train.keep_best must be one of {sorted(BEST_MODES)} or unset; got {self.keep_best!r}")

    def _check_adversarial(self) -> None:
        for name in ("adv_eps", "adv_step_size"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                value = parse_eps(value)
            except ValueError as error:
                raise ValueError(f"train.{name}: {error}") from None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError(
                    f"train.{name} must be a number in (0, 1], in pixels of [0, 1] images (e.g. 0.3 for MNIST, "
                    f"8/255 for CIFAR-10); got {getattr(self, name)!r}"
                )
            object.__setattr__(self, name, float(value))
        _positive_int("adv_steps", self.adv_steps)
        beta = self.trades_beta
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"train.trades_beta must be a finite number >= 0 (6 in the TRADES paper); got {beta!r}")

    def _check_hardware(self) -> None:
        if self.accelerator not in ACCELERATORS:
            raise ValueError(f"train.accelerator must be one of {ACCELERATORS}; got {self.accelerator!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be one of {PRECISIONS}; got {self.precision!r}")
        _positive_int("devices", self.devices)
        if self.devices != 1:
            raise ValueError(
                f"train.devices {self.devices}: complement fit/compare train one process on one device (resume, "
                "status and the report are per process). For several devices, train the library's CotModule under "
                "your own Lightning Trainer with a strategy (docs/training.md, 'Scaling out'); for throughput on "
                "one machine, compare --jobs N runs N runs at once."
            )

    def _check_schedule(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"train.lr_schedule must be one of {LR_SCHEDULES}; got {self.lr_schedule!r}")
        milestones = self.lr_milestones
        if self.lr_schedule == "step":
            if not milestones:
                raise ValueError("train.lr_schedule step needs train.lr_milestones, e.g. [100, 150]")
            fractions = self.fractional_milestones
            for milestone in milestones:
                if fractions:
                    if not 0 < milestone < 1:
                        raise ValueError(
                            f"train.lr_milestones: fractions of the run's epochs are in (0, 1), e.g. [0.5, 0.75]; got "
                            f"{list(milestones)} (epochs are integers: [100, 150])"
                        )
                else:
                    _positive_int("lr_milestones entries (epochs, or all fractions of the run such as 0.5)", milestone)
            if list(milestones) != sorted(set(milestones)):
                raise ValueError(f"train.lr_milestones must be increasing; got {list(milestones)}")
        elif milestones:
            raise ValueError(f"train.lr_milestones apply to lr_schedule step; got lr_schedule {self.lr_schedule!r}")
        if isinstance(self.lr_gamma, (int, float)) and not isinstance(self.lr_gamma, bool):
            _finite("lr_gamma", self.lr_gamma)
        if isinstance(self.lr_gamma, bool) or not isinstance(self.lr_gamma, (int, float)) or not 0 < self.lr_gamma <= 1:
            raise ValueError(f"train.lr_gamma must be in (0, 1]; got {self.lr_gamma!r}")
        warmup = self.lr_warmup
        if isinstance(warmup, bool) or not isinstance(warmup, (int, float)) or not 0 <= warmup < 1:
            raise ValueError(f"train.lr_warmup must be a fraction of the run's steps in [0, 1); got {warmup!r}")

    @property
    def fractional_milestones(self) -> bool:
        """The ``step`` milestones are fractions of the run (floats), not epochs."""
        milestones = self.lr_milestones or ()
        return bool(milestones) and all(isinstance(m, float) for m in milestones)

    def milestone_epochs(self, epochs: int, factor: int = 1) -> list[int]:
        """The ``step`` schedule's milestones as epoch counts of a run of ``epochs`` epochs, ``factor`` times
        the configured ``max_epochs`` (``ce_2x``): epochs scale with ``factor``; a fraction ``f`` falls at
        ``round(f * epochs)``, kept within 1 and ``epochs - 1`` so that it applies."""
        assert self.lr_milestones is not None
        if self.fractional_milestones:
            return [min(max(1, math.floor(f * epochs + 0.5)), max(1, epochs - 1)) for f in self.lr_milestones]
        return [int(m) * factor for m in self.lr_milestones]

    def check_milestones_apply(self) -> None:
        """Refuse epoch milestones at or after the last epoch: the learning rate would never decay.

        Fractions follow the run and always fall inside it once it has two epochs; a one-epoch run (a
        smoke test of a long recipe) has no epoch boundary to decay at, which is what the user asked for."""
        if self.lr_schedule != "step" or self.lr_milestones is None:
            return
        if self.fractional_milestones:
            return
        late = [m for m in self.milestone_epochs(self.max_epochs) if m >= self.max_epochs]
        if late:
            raise ValueError(
                f"train.lr_milestones {list(self.lr_milestones)}: {late} fall at or after the run's last epoch "
                f"({self.max_epochs}), so the learning rate would never decay there. Give epochs below "
                f"max_epochs, or fractions of the run such as [0.5, 0.75] (they follow max_epochs and ce_2x)."
            )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lr_milestones"] = None if self.lr_milestones is None else list(self.lr_milestones)
        return data

    @classmethod
    def from_saved(cls, saved: dict[str, Any], where: str) -> ResolvedTrainConfig:
        """The settings saved in ``where``; settings added since take their fallbacks (what those runs used)."""
        saved = {**{key: FALLBACKS[key] for key in ADDED_SINCE_0_1 if key not in saved}, **saved}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(saved) - known)
        missing = sorted(f.name for f in fields(cls) if f.name not in saved and f.default is MISSING)
        if unknown or missing:
            raise ValueError(
                f"{where}: the saved train settings do not fit this version of complement "
                f"(unknown {unknown}, missing {missing}); resume it with the version that made it, or start anew"
            )
        return cls(**saved)


def resumed(saved: ResolvedTrainConfig, given: TrainConfig, allowed: tuple[str, ...], what: str) -> ResolvedTrainConfig:
    """The saved settings with the changes ``given`` on resume, refusing any outside ``allowed``."""
    current = saved.to_dict()
    changes = {key: value for key, value in given.given().items() if current.get(key) != value}
    refused = {key: value for key, value in changes.items() if key not in allowed}
    if refused:
        listed = ", ".join(f"--train.{key} {value} (saved: {current[key]})" for key, value in refused.items())
        may = ", ".join(f"--train.{key} {RESUME_CHANGES[key]}" for key in allowed) or "none"
        raise ValueError(
            f"--resume continues {what} with its saved settings; {listed} would change it. Changes allowed on "
            f"resume: {may}. Start a new run to change the others."
        )
    if "max_epochs" in changes and saved.lr_schedule in ("cosine", "warmup_linear"):
        raise ValueError(
            f"--train.max_epochs cannot change on resume under lr_schedule {saved.lr_schedule!r}: the schedule spans "
            f"the saved {saved.max_epochs} epochs (its checkpointed state would keep the old length, and the "
            "learning rate would stay at its end value). Start a new run with the longer --train.max_epochs."
        )
    if "max_epochs" in changes and changes["max_epochs"] < saved.max_epochs:
        raise ValueError(
            f"--train.max_epochs may only grow on resume (saved {saved.max_epochs}, given {changes['max_epochs']}); "
            "the run may already have trained more epochs than that"
        )
    return ResolvedTrainConfig(**{**current, **changes})


def check_config_files(argv: Sequence[str]) -> None:
    """Refuse a ``--config`` YAML file whose top level is not a mapping of option names to values.

    jsonargparse reports such a file as ``Unexpected config: - task ...``; this names the file
    and the fix. Files that are absent or do not parse are left to jsonargparse to report."""
    import yaml

    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith("--config="):
            value = arg.split("=", 1)[1]
        else:
            continue
        path = Path(value).expanduser()
        if not path.is_file():
            continue
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            continue
        if loaded is not None and not isinstance(loaded, dict):
            kind = "list" if isinstance(loaded, list) else type(loaded).__name__
            raise ValueError(
                f"--config {value}: the file's top level is a YAML {kind}; it must be a mapping of option names to "
                "values, one 'name: value' a line (e.g. 'task: digits'), without a leading '- '"
            )


# --- adversarial robustness (runs/robust.py evaluates; docs/robustness.md) ---------------------------
ROBUST_OPTIONS = ("attacks", "eps", "steps", "examples")
DEFAULT_ATTACKS = ("fgsm", "pgd")
DEFAULT_STEPS = 20
GREY_EPS = (0.1, 0.2, 0.3)  # the literature's radii for MNIST
COLOUR_EPS = (8 / 255,)  # and for CIFAR-10
ART_ATTACKS = ("square", "autoattack")  # from the Adversarial Robustness Toolbox: about 1 s an image on a CPU
ART_EXAMPLES = 500  # the test examples attacked by default when one of them runs


@dataclass
class RobustConfig:
    """Adversarial robustness of the model at the end of training, on the test set (image tasks only).

    Any ``--robust.*`` option turns it on; unset ones take their defaults. Threat model: L∞
    perturbations of at most ε per pixel of images in [0, 1] (the task's normalization moves
    inside the attacked model); docs/robustness.md.

    Args:
        attacks: ``fgsm``, ``pgd`` (cross-entropy), ``pgd_dlr`` (the DLR margin loss), ``square``
            (black-box) and ``autoattack``; the last two come from the Adversarial Robustness Toolbox
            (``pip install "complement[robust]"``) and cost about 1 s an image on a CPU.
        eps: L∞ radii in pixels of [0, 1] images, numbers or fractions such as ``8/255`` (the literature's:
            MNIST's 0.1, 0.2 and 0.3 for grey images, CIFAR-10's 8/255 for colour ones).
        steps: PGD's iterations (step size 2.5 ε / steps, random start).
        examples: attack only the first N test examples (the test splits are stratified, so the first N
            hold every class).
    """

    attacks: list[str] | None = None
    eps: list[float | str] | None = None
    steps: int | None = None
    examples: int | None = None

    def given(self) -> dict[str, Any]:
        """The settings set explicitly (not ``None``)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def parse_eps(value: Any) -> float:
    """A radius given as a number or as a fraction ``"8/255"``."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                numerator, denominator = text.split("/", 1)
                return float(numerator) / float(denominator)
            return float(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"radii are numbers in [0, 1] or fractions such as 8/255; got {value!r}") from None
    return value


@dataclass(frozen=True)
class RobustSettings:
    """A :class:`RobustConfig` with every value filled in and checked, as saved in config.json / compare.json."""

    attacks: tuple[str, ...]
    eps: tuple[float, ...]
    steps: int
    examples: int | None = None  # None: the whole test set

    def __post_init__(self) -> None:
        from ...robustness.evaluate import check_attacks
        from ...robustness.threat import check_eps, check_steps

        try:
            given = self.attacks if isinstance(self.attacks, str) else list(self.attacks)
            attacks = tuple(dict.fromkeys(check_attacks(given)))
        except ValueError as error:
            raise ValueError(f"--robust.attacks: {error}") from None
        if isinstance(self.eps, (str, bytes)) or not isinstance(self.eps, (list, tuple)) or not self.eps:
            raise ValueError(
                f"--robust.eps must be a non-empty list of radii, e.g. '[0.1, 0.2, 0.3]'; got {self.eps!r}"
            )
        radii = []
        for value in self.eps:
            try:
                radius = check_eps(parse_eps(value))
            except (TypeError, ValueError) as error:
                raise ValueError(f"--robust.eps: {error}") from None
            if radius == 0:
                raise ValueError(
                    "--robust.eps: 0 is no attack (the clean accuracy is always reported); give radii > 0, "
                    "e.g. '[0.1, 0.2, 0.3]'"
                )
            radii.append(radius)
        try:
            check_steps(self.steps)
        except ValueError as error:
            raise ValueError(f"--robust.{error}") from None
        examples = self.examples
        if examples is not None and (isinstance(examples, bool) or not isinstance(examples, int) or examples < 1):
            raise ValueError(
                f"--robust.examples must be an integer >= 1 (attack the first N test examples) or unset (all); "
                f"got {examples!r}"
            )
        object.__setattr__(self, "attacks", attacks)
        object.__setattr__(self, "eps", tuple(sorted(set(radii))))

    def to_dict(self) -> dict[str, Any]:
        return {"attacks": list(self.attacks), "eps": list(self.eps), "steps": self.steps, "examples": self.examples}

    def describe(self) -> str:
        """``attacks [fgsm, pgd], eps [0.1, 0.3], steps 20, examples all``."""
        examples = "all" if self.examples is None else str(self.examples)
        return (
            f"attacks [{', '.join(self.attacks)}], eps [{', '.join(f'{e:g}' for e in self.eps)}], "
            f"steps {self.steps}, examples {examples}"
        )

    @classmethod
    def from_saved(cls, saved: Any, where: str) -> RobustSettings | None:
        """The settings saved in ``where`` (None: no robust evaluation, as in files from before it)."""
        if saved is None:
            return None
        if not isinstance(saved, dict) or set(saved) != set(ROBUST_OPTIONS):
            raise ValueError(
                f"{where}: the saved robust settings do not fit this version of complement ({saved!r}); "
                f"they need exactly {list(ROBUST_OPTIONS)}"
            )
        return cls(tuple(saved["attacks"]), tuple(saved["eps"]), saved["steps"], saved["examples"])

    @classmethod
    def resolve(cls, given: RobustConfig, channels: int | None, saved: RobustSettings | None = None) -> RobustSettings:
        """``given``'s settings; unset ones take ``saved``'s, else the defaults (the radii by the images'
        ``channels``: grey, MNIST's; colour, CIFAR-10's)."""
        set_ = given.given()
        attacks = set_.get("attacks", saved.attacks if saved is not None else DEFAULT_ATTACKS)
        attacks = (attacks,) if isinstance(attacks, str) else tuple(attacks)  # a lone name: checked as a list
        eps = set_.get("eps", saved.eps if saved is not None else (COLOUR_EPS if channels == 3 else GREY_EPS))
        steps = set_.get("steps", saved.steps if saved is not None else DEFAULT_STEPS)
        if "examples" in set_:
            examples = set_["examples"]
        elif saved is not None and uses_art(saved.attacks) == uses_art(attacks):
            examples = saved.examples
        else:
            examples = ART_EXAMPLES if uses_art(attacks) else None
        return cls(attacks, tuple(eps) if isinstance(eps, list) else eps, steps, examples)


def uses_art(attacks: Any) -> bool:
    return isinstance(attacks, (list, tuple)) and any(name in ART_ATTACKS for name in attacks)


def refuse_robust_changes(given: RobustConfig, saved: RobustSettings | None, what: str, directory: Path) -> None:
    """``--resume`` keeps the robust settings saved (or their absence): another is an error naming
    ``complement robust``, which evaluates finished runs with any settings."""
    changes = given.given()
    if not changes:
        return
    if saved is not None:
        resolved = RobustSettings.resolve(given, None, saved)
        if resolved == saved:
            return
    listed = ", ".join(f"--robust.{key} {value}" for key, value in changes.items())
    has = f"its saved robust settings ({saved.describe()})" if saved is not None else "no robust evaluation"
    raise ValueError(
        f"--resume continues {what} as saved, with {has}; {listed} would change that. Resume without --robust "
        f"options, then evaluate the finished runs with: complement robust {directory} {listed} "
        "(it keeps the training and saves the settings for the runs still to finish)"
    )
