"""CotModule (Lightning 2.x) against the hand-written COT loop, and its Lightning pitfalls."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader, TensorDataset

from complement.lightning import CotModule
from complement.training.lightning_module import EpochStats
from tests.helpers.tiny import (
    NUM_CLASSES,
    assert_same_parameters,
    batches_of,
    make_data,
    make_model,
    make_optimizers,
    reference_loop,
)


class TinyCot(CotModule):
    def __init__(self, optimizers="shared", schedulers=None, dropout=0.0, **cot):
        super().__init__(**cot)
        self.net = make_model()
        if dropout:
            self.net.insert(1, torch.nn.Dropout(dropout))
        self.optimizer_kind = optimizers
        self.schedulers = schedulers
        self.steps_seen = 0

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        self.steps_seen += 1
        return super().training_step(batch, batch_idx)

    def configure_optimizers(self):
        optimizers = make_optimizers(self, self.optimizer_kind)
        if self.schedulers is None:
            return optimizers
        return optimizers, self.schedulers(optimizers)


def trainer(**kwargs) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        precision="64-true",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    options = {**defaults, **kwargs}
    if options["precision"] is None:  # a precision plugin decides it
        del options["precision"]
    return pl.Trainer(**options)


def loader(x, y, batch_size, shuffle=False):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)


@pytest.mark.parametrize("mode", ["alternate", "joint", "off"])
@pytest.mark.parametrize("optimizers", ["shared", "two"])
def test_cot_module_equals_hand_written_loop(mode, optimizers):
    x, y = make_data()
    module = TinyCot(optimizers, mode=mode, complement_weight=0.7)
    trainer(max_epochs=2).fit(module, loader(x, y, 8))
    reference = make_model()
    ref_optimizers = make_optimizers(reference, optimizers)
    for _ in range(2):
        reference_loop(reference, ref_optimizers, batches_of(x, y, 8), mode, weight=0.7)
    assert_same_parameters(module.net, reference, atol=1e-10)


def test_accumulation_equals_large_batch():
    x, y = make_data(n=32)
    accumulated = TinyCot("two", accumulate_grad_batches=4)
    trainer().fit(accumulated, loader(x, y, 4))
    reference = make_model()
    reference_loop(reference, make_optimizers(reference, "two"), batches_of(x, y, 16), "alternate")
    assert_same_parameters(accumulated.net, reference, atol=1e-10)


def test_max_steps_counts_batches_and_step_schedulers_step_once_per_batch():
    x, y = make_data(n=80)

    def schedulers(optimizers):
        return [
            {"scheduler": torch.optim.lr_scheduler.StepLR(optimizers[0], step_size=1, gamma=0.5), "interval": "step"},
            {
                "scheduler": torch.optim.lr_scheduler.LambdaLR(optimizers[1], lambda s: 1.0),
                "interval": "step",
                "frequency": 2,
            },
        ]

    module = TinyCot("two", schedulers=schedulers)
    run = trainer(max_steps=5, max_epochs=-1)
    run.fit(module, loader(x, y, 8))
    assert module.steps_seen == 5 and run.global_step == 5
    step_lr, every_other = (config.scheduler for config in run.lr_scheduler_configs)
    assert step_lr.last_epoch == 5 and every_other.last_epoch == 2
    assert module.optimizers()[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**5)


def test_reduce_on_plateau_monitoring_train_loss_at_steps_and_epochs():
    x, y = make_data(n=64)

    def schedulers(optimizers):
        plateau = dict(mode="min", patience=0, factor=0.5, threshold=10.0)  # never "improves": lr halves each step
        return [
            {
                "scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(optimizers[0], **plateau),
                "interval": "step",
                "frequency": 2,
                "monitor": "train_loss",
            },
            {
                "scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(optimizers[1], **plateau),
                "interval": "epoch",
                "monitor": "cot_loss",
            },
        ]

    module = TinyCot("two", schedulers=schedulers)
    trainer(max_epochs=2).fit(module, loader(x, y, 8))  # 16 COT steps
    ce_lr = module.optimizers()[0].param_groups[0]["lr"]
    comp_lr = module.optimizers()[1].param_groups[0]["lr"]
    # threshold=10 makes every call "no improvement": 16 steps / frequency 2 = 8 halvings; 2 epochs = 2
    assert ce_lr == pytest.approx(0.1 * 0.5**8) and comp_lr == pytest.approx(0.1 * 0.5**2)


class RecordingLogger(Logger):
    def __init__(self):
        super().__init__()
        self.rows: list[dict[str, float]] = []

    name = "recording"
    version = 0

    def log_metrics(self, metrics, step=None):
        self.rows.append(dict(metrics))

    def log_hyperparams(self, params, *args, **kwargs):
        pass


class RecordingPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    def step(self, metrics):
        self.seen = [*getattr(self, "seen", []), float(metrics)]
        super().step(metrics)


def test_logs_step_values_at_the_logging_interval_and_exact_epoch_means(monkeypatch):
    monkeypatch.setattr(EpochStats, "FLUSH_EVERY", 4)  # the per-step scalars are reduced mid-epoch too
    x, y = make_data(n=44)  # 6 batches per epoch, the last of 4: epoch means must weight by batch size
    logger = RecordingLogger()
    schedulers = lambda o: [{"scheduler": RecordingPlateau(o[0]), "interval": "epoch", "monitor": "cot_loss"}]  # noqa: E731
    module = TinyCot("two", schedulers=schedulers)
    run = trainer(max_epochs=2, logger=logger, log_every_n_steps=4)
    run.fit(module, loader(x, y, 8))
    record: list[dict] = []
    reference = make_model()
    ref_optimizers = make_optimizers(reference, "two")
    for _ in range(2):
        reference_loop(reference, ref_optimizers, batches_of(x, y, 8), "alternate", record=record)

    steps = [row for row in logger.rows if "train_loss_step" in row]
    expected_steps = [record[i] for i in (3, 7, 11)]  # every 4th of 12 batches
    assert [row["train_loss_step"] for row in steps] == pytest.approx(
        [r["train_loss"] for r in expected_steps], rel=1e-6
    )
    assert [row["cot_loss_step"] for row in steps] == pytest.approx([r["cot_loss"] for r in expected_steps], rel=1e-6)

    epochs = [row for row in logger.rows if "train_loss_epoch" in row]
    assert len(epochs) == 2
    for row, batches in zip(epochs, (record[:6], record[6:])):
        n = sum(b["n"] for b in batches)
        for name in ("train_loss", "cot_loss"):
            assert row[f"{name}_epoch"] == pytest.approx(sum(b[name] * b["n"] for b in batches) / n, abs=1e-6)
        assert row["train_acc"] == pytest.approx(sum(b["correct"] for b in batches) / n, abs=1e-6)
    assert float(run.callback_metrics["cot_loss"]) == pytest.approx(epochs[-1]["cot_loss_epoch"], abs=1e-6)
    assert {"train_loss_step", "train_loss_epoch", "cot_loss_step", "cot_loss_epoch"} <= set(run.progress_bar_metrics)
    # an epoch-interval plateau scheduler sees the epoch mean, not the last batch's value
    assert run.lr_scheduler_configs[0].scheduler.seen == pytest.approx([e["cot_loss_epoch"] for e in epochs], abs=1e-6)


class SumStrategy:
    """A single process's strategy.reduce."""

    def reduce(self, tensor, reduce_op):
        assert reduce_op == "sum"
        return tensor


def test_epoch_stats_equal_float64_means_over_groups_and_flushes():
    g = torch.Generator().manual_seed(0)
    stats, rows = EpochStats(), []
    for _ in range(EpochStats.FLUSH_EVERY * 2 + 37):  # two flushes and a remainder
        group = []
        for _ in range(int(torch.randint(1, 4, (), generator=g))):  # accumulation groups of 1-3 batches
            kept, correct = torch.randint(0, 9, (), generator=g), torch.randint(0, 9, (), generator=g)
            stats.add_batch(torch.minimum(correct, kept), kept)
            group.append((int(torch.minimum(correct, kept)), int(kept)))
        logs = {"train_loss": torch.rand((), generator=g), "cot_loss": -torch.rand((), generator=g)}
        stats.add_group(logs)
        rows.append((group, {k: float(v) for k, v in logs.items()}))
    means = stats.compute(SumStrategy())
    kept = sum(k for group, _ in rows for _, k in group)
    assert means["train_acc"].item() == pytest.approx(sum(c for group, _ in rows for c, _ in group) / kept, rel=1e-6)
    for name in ("train_loss", "cot_loss"):
        expected = sum(logs[name] * sum(k for _, k in group) for group, logs in rows) / kept
        assert means[name].item() == pytest.approx(expected, rel=1e-6)
    stats.reset()
    assert stats.compute(SumStrategy()) == {}


def test_plateau_on_a_metric_never_logged_is_a_clear_error():
    x, y = make_data(n=16)

    def schedulers(optimizers):
        return [
            {
                "scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(optimizers[0]),
                "interval": "step",
                "monitor": "val_f1",
            }
        ]

    with pytest.raises(ValueError, match="monitors 'val_f1', which has not been logged"):
        trainer().fit(TinyCot("shared", schedulers=schedulers), loader(x, y, 8))


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path):
    x, y = make_data(n=40)

    def run(max_epochs, ckpt_path=None, save_dir=None):
        torch.manual_seed(123)
        module = TinyCot("two", dropout=0.2, schedulers=lambda o: [torch.optim.lr_scheduler.StepLR(o[0], 3)])
        callbacks = [ModelCheckpoint(dirpath=save_dir, save_last=True, every_n_epochs=1)] if save_dir else []
        trainer(max_epochs=max_epochs, callbacks=callbacks, enable_checkpointing=bool(save_dir)).fit(
            module, loader(x, y, 8, shuffle=True), ckpt_path=ckpt_path
        )
        return module

    uninterrupted = run(4)
    run(2, save_dir=tmp_path)
    torch.manual_seed(999)  # the resumed process starts from another RNG state
    resumed = run(4, ckpt_path=str(tmp_path / "last.ckpt"))
    for p, q in zip(resumed.parameters(), uninterrupted.parameters()):
        assert torch.equal(p, q)
    for a, b in zip(resumed.optimizers(), uninterrupted.optimizers()):
        assert a.param_groups[0]["lr"] == b.param_groups[0]["lr"]


def test_bf16_mixed_runs_and_clips():
    x, y = make_data(n=32, dtype=torch.float32)
    module = TinyCot("shared", gradient_clip_val=0.5, num_classes=NUM_CLASSES)
    module.net = module.net.float()
    run = trainer(precision="bf16-mixed", max_epochs=2)
    run.fit(module, loader(x, y, 8), loader(x, y, 16))
    assert torch.isfinite(run.callback_metrics["train_loss"]) and torch.isfinite(run.callback_metrics["cot_loss"])
    assert 0 <= run.callback_metrics["val_acc"] <= 1


class NormProbe(TinyCot):
    norms: list

    def on_before_optimizer_step(self, optimizer):
        super().on_before_optimizer_step(optimizer)
        self.norms.append(torch.nn.utils.get_total_norm([p.grad for p in self.parameters() if p.grad is not None]))


def test_16_mixed_clips_unscaled_gradients():
    from lightning.pytorch.plugins import MixedPrecision

    x, y = make_data(n=16, dtype=torch.float32)
    module = NormProbe("shared", gradient_clip_val=0.01)
    module.net = module.net.float()
    module.norms = []
    # Trainer(precision="16-mixed") on CPU silently becomes bf16 without a scaler; pass fp16 AMP with a real scaler.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    run = trainer(precision=None, plugins=[MixedPrecision("16-mixed", "cpu", scaler)])
    run.fit(module, loader(x * 50, y, 8))
    assert run.precision_plugin.scaler is scaler and scaler.get_scale() > 1
    finite = [norm.item() for norm in module.norms if torch.isfinite(norm)]  # an overflowing step is skipped
    # Clipping scaled gradients (upstream #18089) would leave norms of 0.01 / scale after unscaling.
    assert len(finite) >= 3 and all(abs(norm - 0.01) < 1e-4 for norm in finite)


@pytest.mark.parametrize(
    "flags,message",
    [
        (dict(accumulate_grad_batches=2), r"Pass CotModule\(accumulate_grad_batches=2\)"),
        (dict(gradient_clip_val=1.0), r"Pass CotModule\(gradient_clip_val=1.0"),
    ],
)
def test_trainer_flags_forbidden_in_manual_optimization_name_the_alternative(flags, message):
    x, y = make_data(n=16)
    with pytest.raises(ValueError, match=message):
        trainer(**flags).fit(TinyCot(), loader(x, y, 8))


def test_bad_module_configuration():
    with pytest.raises(ValueError, match="unknown COT mode"):
        TinyCot(mode="sometimes")
    with pytest.raises(ValueError, match="accumulate_grad_batches must be an integer >= 1"):
        TinyCot(accumulate_grad_batches=0)
    with pytest.raises(
        TypeError, match=r"default batch format is \(inputs, target\).*Override CotModule.logits_and_target"
    ):
        trainer().fit(TinyCot(), DataLoader([torch.zeros(6, dtype=torch.float64)] * 4, batch_size=2))


# --- issue 11: the engine's resume and accumulation fixes ---------------------------------------


def test_resume_after_a_max_steps_stop_equals_one_longer_run(tmp_path):
    from complement.lightning import CotCheckpoint, resumable_loader

    x, y = make_data(n=40)

    def run(max_steps, ckpt_path=None):
        torch.manual_seed(0)
        module = TinyCot("two", accumulate_grad_batches=2, dropout=0.2)
        callback = CotCheckpoint(tmp_path, filename="{step}", every_n_train_steps=1, save_top_k=1)
        trainer(max_steps=max_steps, max_epochs=-1, callbacks=[callback], enable_checkpointing=True).fit(
            module, resumable_loader(TensorDataset(x, y), 8, seed=3), ckpt_path=ckpt_path, weights_only=True
        )
        return module, callback

    whole, _ = run(12)
    for path in tmp_path.glob("*.ckpt"):
        path.unlink()
    _, stopped = run(4)  # stops mid-epoch: 5 batches an epoch, 3 steps an epoch (the last group is short)
    resumed, _ = run(12, ckpt_path=stopped.best_model_path)
    assert_same_parameters(resumed.net, whole.net, atol=0)


class Batches(torch.utils.data.IterableDataset):
    """A stream of batches of unknown length."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


@pytest.mark.parametrize("streamed", [False, True])
def test_short_last_group_steps_on_its_mean_and_counts_as_a_step(streamed):
    x, y = make_data(n=40)  # 10 batches of 4; accumulation 4: groups of 4, 4 and 2
    batches = batches_of(x, y, 4)
    data = DataLoader(Batches(batches), batch_size=None) if streamed else loader(x, y, 4)
    module = TinyCot("two", accumulate_grad_batches=4)
    run = trainer(max_epochs=2)
    run.fit(module, data)
    assert run.global_step == 6
    reference = make_model()
    optimizers = make_optimizers(reference, "two")
    for _ in range(2):
        for group in (batches[0:4], batches[4:8], batches[8:10]):
            merged = (torch.cat([b[0] for b in group]), torch.cat([b[1] for b in group]))
            reference_loop(reference, optimizers, [merged], "alternate")
    assert_same_parameters(module.net, reference, atol=1e-10)


def test_plateau_monitor_survives_super_configure_optimizers():
    x, y = make_data(n=32)

    class Parent(TinyCot):
        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.5, threshold=10.0)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau, "monitor": "train_loss"}}

    class Child(Parent):
        def configure_optimizers(self):
            return super().configure_optimizers()

    module = Child()
    trainer(max_epochs=2).fit(module, loader(x, y, 8))
    assert module.optimizers().param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2)  # one halving an epoch


def test_two_optimizers_over_different_parameters_see_only_their_phase_gradients():
    x, y = make_data(n=16)

    class Split(TinyCot):
        def configure_optimizers(self):
            first, last = self.net[0], self.net[2]
            return [torch.optim.SGD(first.parameters(), lr=0.1), torch.optim.SGD(last.parameters(), lr=0.1)]

    module = Split()
    trainer().fit(module, loader(x, y, 16))
    reference = make_model()
    ce_opt = torch.optim.SGD(reference[0].parameters(), lr=0.1)
    comp_opt = torch.optim.SGD(reference[2].parameters(), lr=0.1)
    reference_loop(reference, [ce_opt, comp_opt], [(x, y)], "alternate")  # zero_grad before each phase
    assert_same_parameters(module.net, reference, atol=1e-12)


def test_a_training_step_that_skips_cot_is_refused_with_the_fix():
    x, y = make_data(n=16)

    class BlogStyle(TinyCot):
        def training_step(self, batch, batch_idx):  # the blog's CotBert computes its loss and returns it
            return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

    with pytest.raises(TypeError, match=r"did not call CotModule.training_step.*logits_and_target"):
        trainer().fit(BlogStyle(), loader(x, y, 8))


def test_eval_mode_submodules_are_reported_at_fit_start():
    x, y = make_data(n=16)
    module = TinyCot(dropout=0.1)
    module.net.eval()  # as from_pretrained() leaves a model
    with pytest.warns(UserWarning, match=r"in eval mode as training starts \(net.0, net.1, net.3\).*call .train\(\)"):
        trainer().fit(module, loader(x, y, 8))
    assert not module.net.training  # reported, not overridden
