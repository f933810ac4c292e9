"""COT training through the chunked LinearLogits path equals training on materialized logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from complement.training import CotConfig, CotObjective, CotStep, LinearLogits
from tests.helpers.tiny import assert_same_parameters


class Head(nn.Module):
    def __init__(self, vocab=37, hidden=8):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Embedding(vocab, hidden), nn.Tanh())
        self.out = nn.Linear(hidden, vocab)
        self.double()


def materialized(model, batch):
    tokens, target = batch
    return model.out(model.body(tokens)), target


def fused(model, batch):
    tokens, target = batch
    return LinearLogits(model.body(tokens), model.out.weight, model.out.bias), target


@pytest.mark.parametrize("mode", ["alternate", "joint"])
@pytest.mark.parametrize("complement_loss", ["complement_entropy", "guided_complement_entropy"])
def test_linear_logits_path_equals_materialized_logits(mode, complement_loss):
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(3):
        target = torch.randint(0, 37, (4, 6), generator=g)
        target[0, :2] = -100
        batches.append((torch.randint(0, 37, (4, 6), generator=g), target))
    runs = {}
    for name, logits_and_target in (("materialized", materialized), ("fused", fused)):
        model = Head()
        cot = CotStep(
            model,
            torch.optim.Adam(model.parameters(), 0.01),
            mode=mode,
            complement_loss=complement_loss,
            logits_and_target=logits_and_target,
        )
        logs = [cot.step(batch) for batch in batches]
        runs[name] = (model, logs)
    assert_same_parameters(runs["fused"][0], runs["materialized"][0], atol=1e-10)
    for a, b in zip(runs["fused"][1], runs["materialized"][1]):
        for key in a:
            torch.testing.assert_close(a[key], b[key])


def test_cot_module_trains_on_linear_logits_like_on_materialized_logits():
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from complement.lightning import CotModule

    class LmModule(CotModule):
        def __init__(self, logits_and_target):
            super().__init__(mode="alternate")
            self.head, self.split = Head(), logits_and_target

        def logits_and_target(self, batch):
            return self.split(self.head, batch)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 0.01)

    g = torch.Generator().manual_seed(0)
    tokens, target = torch.randint(0, 37, (12, 6), generator=g), torch.randint(0, 37, (12, 6), generator=g)
    target[0, :3] = -100
    data = list(zip(tokens, target))
    metrics = {}
    for name, split in (("materialized", materialized), ("fused", fused)):
        module = LmModule(split)
        trainer = pl.Trainer(
            accelerator="cpu",
            max_epochs=2,
            precision="64-true",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(module, DataLoader(data, batch_size=4))
        metrics[name] = (module.head, trainer.callback_metrics)
    assert_same_parameters(metrics["fused"][0], metrics["materialized"][0], atol=1e-10)
    for key in ("train_loss_epoch", "cot_loss_epoch"):
        torch.testing.assert_close(metrics["fused"][1][key], metrics["materialized"][1][key])
    assert "train_acc" in metrics["materialized"][1] and "train_acc" not in metrics["fused"][1]  # never materialized


def test_linear_logits_refuses_losses_it_does_not_fuse():
    head = LinearLogits(torch.zeros(2, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="loss 'focal' has no chunked twin for LinearLogits"):
        CotObjective(CotConfig(mode="off", primary_loss="focal")).phase_loss(
            "ce", head, torch.zeros(2, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="is a callable, which has no chunked twin"):
        CotObjective(CotConfig(complement_loss=lambda z, t: z.sum())).phase_loss(
            "complement", head, torch.zeros(2, dtype=torch.long)
        )


def test_cot_trainer_fused_lm_head_equals_unfused_causal_lm(tmp_path):
    transformers = pytest.importorskip("transformers")
    from torch.utils.data import Dataset

    from complement.hf import CotTrainer

    config = transformers.GPT2Config(vocab_size=97, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 97, (8, 12), generator=g)

    class Tokens(Dataset):
        def __len__(self):
            return len(ids)

        def __getitem__(self, i):
            return {"input_ids": ids[i], "labels": ids[i]}

    def train(**options):
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(config)
        args = transformers.TrainingArguments(
            output_dir=str(tmp_path),
            per_device_train_batch_size=4,
            num_train_epochs=1,
            learning_rate=1e-2,
            optim="adamw_torch",
            lr_scheduler_type="constant",
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
            max_grad_norm=1.0,
        )
        trainer = CotTrainer(model=model, args=args, train_dataset=Tokens(), causal_lm=True, **options)
        trainer.train()
        return model, trainer

    unfused, unfused_trainer = train()
    fused_model, _ = train(fused_lm_head=True)
    for (name, p), q in zip(fused_model.named_parameters(), unfused.parameters()):
        torch.testing.assert_close(p, q, atol=2e-5, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")
    # the shift matches the model's own causal-LM loss
    model = transformers.GPT2LMHeadModel(config).eval()
    logits, target = unfused_trainer.logits_and_target(model, {"input_ids": ids, "labels": ids})
    own = model(input_ids=ids, labels=ids).loss
    torch.testing.assert_close(torch.nn.functional.cross_entropy(logits.reshape(-1, 97), target.reshape(-1)), own)


def test_fused_lm_head_needs_causal_lm():
    from complement.hf import CotTrainer

    with pytest.raises(ValueError, match="pass causal_lm=True"):
        CotTrainer(model=nn.Linear(2, 2), fused_lm_head=True)


def test_fused_lm_head_turns_off_ddps_unused_parameter_search_and_refuses_it_when_asked(tmp_path):
    transformers = pytest.importorskip("transformers")
    from complement.hf import CotTrainer

    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=11, n_embd=8, n_layer=1, n_head=2))
    args = transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    CotTrainer(model=model, args=args, causal_lm=True, fused_lm_head=True)
    assert args.ddp_find_unused_parameters is False  # the Trainer's default (None) would search
    args.ddp_find_unused_parameters = True
    with pytest.raises(ValueError, match="Leave it unset or set it to False"):
        CotTrainer(model=model, args=args, causal_lm=True, fused_lm_head=True)


def test_cot_step_refuses_linear_logits_from_a_ddp_model_that_searches_unused_parameters():
    class SearchingWrapper(nn.Linear):  # what CotStep reads off DistributedDataParallel
        find_unused_parameters = True

    model = SearchingWrapper(3, 5)
    step = CotStep(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        logits_and_target=lambda m, batch: (LinearLogits(batch[0], m), batch[1]),
    )
    with pytest.raises(ValueError, match="Wrap the model with find_unused_parameters=False"):
        step.step((torch.randn(4, 3), torch.tensor([0, 1, 2, 3])))
    model.find_unused_parameters = False
    step.step((torch.randn(4, 3), torch.tensor([0, 1, 2, 3])))
