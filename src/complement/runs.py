"""One training run of a task with a method, and a comparison of methods over seeds.

A *method* is how a run trains:

==============  ===================================================================
``ce``          cross-entropy (the baseline)
``cot``         COT, the authors' alternate steps (CE step, then complement step)
``cot_joint``   one step on CE + complement entropy
``ce_2x``       cross-entropy for twice the epochs: as many forward/backward passes as COT
``gce``         guided complement entropy alone (Chen et al., ICCV 2019)
``cce``         complement cross-entropy alone (Kim et al., 2021)
``ls``          label smoothing 0.1
``focal``       focal loss, gamma 2
==============  ===================================================================

Each run writes to its own directory: ``config.json``, ``status.json`` (``running`` →
``complete`` or ``failed``), Lightning's ``logs/metrics.csv`` (CSV logger; TensorBoard too
when installed), ``checkpoints/last.ckpt``, ``history.json`` and ``predictions.pt``.
A run whose status is not ``complete`` can be resumed from its last checkpoint.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn
from torch.utils.data import DataLoader

from .metrics import flatten_kept
from .report.records import RunRecord
from .training.lightning_module import CotModule


@dataclass(frozen=True)
class Method:
    mode: str = "off"
    primary_loss: str = "cross_entropy"
    epoch_factor: int = 1
    summary: str = ""


METHODS: dict[str, Method] = {
    "ce": Method("off", summary="cross-entropy"),
    "cot": Method("alternate", summary="COT: CE step, then complement-entropy step"),
    "cot_joint": Method("joint", summary="one step on CE + complement entropy"),
    "ce_2x": Method("off", epoch_factor=2, summary="cross-entropy, 2x epochs (COT's forward/backward passes)"),
    "gce": Method("off", "guided_complement_entropy", summary="guided complement entropy alone"),
    "cce": Method("off", "complement_cross_entropy", summary="complement cross-entropy alone"),
    "ls": Method("off", "label_smoothing", summary="label smoothing 0.1"),
    "focal": Method("off", "focal", summary="focal loss, gamma 2"),
}
OPTIMIZERS = ("adam", "adamw", "sgd")


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    return METHODS[name]


@dataclass
class TrainConfig:
    """Hyper-parameters of a run; ``None`` takes the task's default."""

    max_epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    complement_weight: float = 1.0

    def resolved(self, defaults: dict[str, Any]) -> ResolvedTrainConfig:
        fallback: dict[str, Any] = {"max_epochs": 10, "batch_size": 64, "lr": 1e-3, "optimizer": "adam"}
        fallback["weight_decay"] = 0.0
        values: dict[str, Any] = {}
        for key, value in asdict(self).items():
            value = value if value is not None else defaults.get(key)
            values[key] = value if value is not None else fallback.get(key)
        resolved = ResolvedTrainConfig(**values)
        if resolved.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {resolved.optimizer!r}; choose from {OPTIMIZERS}")
        for name in ("max_epochs", "batch_size"):
            if getattr(resolved, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(resolved, name)}")
        if not resolved.lr > 0:
            raise ValueError(f"lr must be > 0; got {resolved.lr}")
        return resolved


@dataclass(frozen=True)
class ResolvedTrainConfig:
    """A :class:`TrainConfig` with every value filled in (the task's defaults, then the fallbacks)."""

    max_epochs: int
    batch_size: int
    lr: float
    optimizer: str
    weight_decay: float
    complement_weight: float


class TaskModule(CotModule):
    """A task's model trained with a method; the optimizer is shared by COT's two steps."""

    def __init__(
        self, model: nn.Module, num_classes: int, ignore_index: int, method: Method, config: ResolvedTrainConfig
    ):
        super().__init__(
            mode=method.mode,
            primary_loss=method.primary_loss,
            complement_weight=config.complement_weight,
            ignore_index=ignore_index,
            num_classes=num_classes,
        )
        self.model = model
        self.config = config

    def forward(self, inputs: Any) -> Tensor:
        return self.model(inputs)

    def configure_optimizers(self):
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=c.lr, momentum=0.9, weight_decay=c.weight_decay)
        cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
        return cls(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)


class History(pl.Callback):
    """Per-epoch validation metrics and cumulative forward/backward passes (kept in checkpoints)."""

    def __init__(self, passes_per_batch: int):
        self.passes_per_batch = passes_per_batch
        self.passes = 0
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.passes += self.passes_per_batch

    def on_validation_epoch_end(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_") and v.numel() == 1}
        train_loss = trainer.callback_metrics.get("train_loss_epoch")
        row = {"epoch": trainer.current_epoch + 1, "passes": self.passes, **metrics}
        if train_loss is not None:
            row["train_loss"] = float(train_loss)
        self.rows.append(row)

    def state_dict(self) -> dict[str, Any]:
        return {"passes": self.passes, "rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.passes, self.rows = state_dict["passes"], list(state_dict["rows"])


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)  # atomic: a reader never sees half a file


def read_status(run_dir: Path) -> str | None:
    path = Path(run_dir) / "status.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


def new_run_dir(parent: Path, name: str) -> Path:
    """A directory that did not exist before: never reuse (and so overwrite) an earlier run's."""
    parent.mkdir(parents=True, exist_ok=True)
    for suffix in [""] + [f"-{i}" for i in range(2, 1000)]:
        candidate = parent / f"{name}{suffix}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory under {parent}")


def _loaders(task, batch_size: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(task.train, batch_size=batch_size, shuffle=True, collate_fn=task.collate_fn, generator=generator)
    val = DataLoader(task.val, batch_size=max(batch_size, 256), collate_fn=task.collate_fn)
    test = DataLoader(task.test, batch_size=max(batch_size, 256), collate_fn=task.collate_fn)
    return train, val, test


@torch.no_grad()
def predict(module: TaskModule, loader: DataLoader, ignore_index: int) -> dict[str, Tensor]:
    module.eval()
    probs, targets = [], []
    for batch in loader:
        logits, target = module.logits_and_target(batch)
        logits, target = flatten_kept(logits.float(), target, ignore_index)
        probs.append(logits.softmax(-1))
        targets.append(target)
    return {"probs": torch.cat(probs), "target": torch.cat(targets)}


def fit_run(
    task,
    method_name: str,
    seed: int,
    run_dir: Path,
    config: TrainConfig,
    progress: bool = True,
    resume: bool = False,
    task_spec: dict[str, Any] | None = None,
) -> RunRecord:
    """Train, test and predict one run in ``run_dir`` (created by the caller); return its record.

    ``task_spec`` (``{"task": name, "task_options": {...}}``, as the caller built the task) is
    saved in ``config.json`` before training, so an interrupted run can be rebuilt exactly."""
    run_dir = Path(run_dir)
    method = get_method(method_name)
    resolved = config.resolved(task.defaults)
    epochs = resolved.max_epochs * method.epoch_factor
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if not resume:
        spec = task_spec or {"task": task.name, "task_options": {}}
        _write_json(run_dir / "config.json", {**spec, "method": method_name, "seed": seed, **asdict(resolved)})
    _write_json(run_dir / "status.json", {"status": "running"})
    start = time.perf_counter()
    try:
        pl.seed_everything(seed, workers=True, verbose=False)
        module = TaskModule(task.build_model(), task.num_classes, task.ignore_index, method, resolved)
        train, val, test = _loaders(task, resolved.batch_size, seed)
        history = History(passes_per_batch=len(module.objective.phases))
        loggers: list = [CSVLogger(run_dir, name="logs", version="")]
        try:
            import tensorboard  # noqa: F401
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(run_dir, name="tensorboard", version=""))
        except ImportError:
            pass
        trainer = pl.Trainer(
            accelerator="auto",
            devices=1,
            max_epochs=epochs,
            logger=loggers,
            default_root_dir=run_dir,
            callbacks=[history, ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0)],
            enable_progress_bar=progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            deterministic=True,
        )
        trainer.fit(module, train, val, ckpt_path=str(checkpoint) if resume and checkpoint.exists() else None)
        tested = trainer.test(module, test, verbose=False)[0]
        predictions = predict(module, test, task.ignore_index)
        torch.save(predictions, run_dir / "predictions.pt")
        _write_json(run_dir / "history.json", history.rows)
        record = RunRecord(
            method=method_name,
            seed=seed,
            history=history.rows,
            test={k: float(v) for k, v in tested.items() if k.startswith("test_")},
            predictions_path=str(run_dir / "predictions.pt"),
            run_dir=str(run_dir),
            task=task.name,
            num_classes=task.num_classes,
            wall_time_s=time.perf_counter() - start,
        )
        _write_json(run_dir / "record.json", record.to_dict())
    except BaseException as error:
        _write_json(run_dir / "status.json", {"status": "failed", "error": f"{type(error).__name__}: {error}"})
        raise
    _write_json(run_dir / "status.json", {"status": "complete"})
    return record


def load_run_record(run_dir: Path) -> RunRecord:
    return RunRecord.from_dict(json.loads((Path(run_dir) / "record.json").read_text()))
