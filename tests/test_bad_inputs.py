"""Every public entry point, fed bad input: the exception's type and a phrase of its message
(which names the argument, the value and the fix). CLI cases run the real command in a
subprocess: one line on stderr, no traceback, a non-zero exit and no directory left behind."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import complement
from complement.lightning import CotModule
from complement.losses.linear import (
    LinearComplementEntropy,
    linear_complement_entropy,
    linear_cross_entropy,
    linear_cross_entropy_and_complement,
    linear_guided_complement_entropy,
)
from complement.training import CotConfig, CotObjective, CotStep, LinearLogits
from tests.helpers.tiny import make_data, make_model

Z, T = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])  # logits and targets that are fine
H, W = torch.randn(4, 3), torch.randn(5, 3)  # hidden states and an output layer that are fine
FUNCTIONS = {
    "complement_entropy": complement.complement_entropy,
    "guided_complement_entropy": complement.guided_complement_entropy,
    "complement_cross_entropy": complement.complement_cross_entropy,
    "cross_entropy_and_complement_entropy": complement.cross_entropy_and_complement_entropy,
    "focal_loss": complement.focal_loss,
}
MODULES = {
    "ComplementEntropy": complement.ComplementEntropy,
    "GuidedComplementEntropy": complement.GuidedComplementEntropy,
    "ComplementCrossEntropy": complement.ComplementCrossEntropy,
    "FocalLoss": complement.FocalLoss,
}

Case = tuple[Callable[[], object], type[BaseException], str]


def each_function(make_call, error, phrase) -> list[Case]:
    return [(lambda f=f: make_call(f), error, phrase) for f in FUNCTIONS.values()]


LOSS_CASES: list[Case] = [
    # targets: dtype, range, shape, device, soft targets
    *each_function(lambda f: f(Z, T.to(torch.uint8)), TypeError, "dtype int64 .or int32.; got torch.uint8. Convert"),
    *each_function(lambda f: f(Z, T.to(torch.int16)), TypeError, "got torch.int16. Convert with target.long"),
    *each_function(lambda f: f(Z, T.float()), TypeError, "integer class indices as target"),
    *each_function(lambda f: f(Z, T.bool()), TypeError, "integer class indices as target"),
    *each_function(lambda f: f(Z, torch.tensor([0, 1, 5, 2])), ValueError, "class index 5, outside the valid range"),
    *each_function(lambda f: f(Z, torch.tensor([0, -3, 1, 2])), ValueError, "class index -3"),
    *each_function(lambda f: f(Z, T[:3]), ValueError, "logits of shape .4, 5. and target of shape .3,. do not fit"),
    *each_function(lambda f: f(Z, T.to("meta")), ValueError, "logits are on cpu and target on meta"),
    # logits
    *each_function(lambda f: f(Z.long(), T), TypeError, "floating-point logits"),
    *each_function(lambda f: f(Z.tolist(), T), TypeError, "expects logits and target as tensors; got list"),
    *each_function(lambda f: f(torch.randn(4, 1), torch.zeros(4, dtype=torch.long)), ValueError, "at least 2 classes"),
    *each_function(lambda f: f(torch.tensor(1.0), torch.tensor(0)), ValueError, "got a scalar"),
    # options
    *each_function(lambda f: f(Z, T, reduction="avg"), ValueError, "reduction must be one of"),
    *each_function(lambda f: f(Z, T, reduction=None), ValueError, "reduction must be one of"),
    *each_function(lambda f: f(Z, T, ignore_index=None), TypeError, "ignore_index must be an integer; got None"),
    *each_function(lambda f: f(Z, T, ignore_index=1.5), TypeError, "ignore_index must be an integer; got 1.5"),
    (lambda: complement.complement_entropy(Z, T, normalization="k"), ValueError, "normalization must be one of"),
    (lambda: complement.complement_entropy(Z, T, -100), TypeError, "positional argument"),  # options are keywords
    (lambda: complement.guided_complement_entropy(Z, T, alpha=-1), ValueError, "alpha must be >= 0"),
    (lambda: complement.guided_complement_entropy(Z, T, alpha="0.3"), TypeError, "alpha must be a number; got str"),
    (lambda: complement.guided_complement_entropy(Z, T, alpha=float("nan")), ValueError, "finite number"),
    (lambda: complement.complement_cross_entropy(Z, T, balancing_factor=-1), ValueError, "must be >= 0"),
    (lambda: complement.complement_cross_entropy(Z, T, "0.5"), TypeError, "weight must be a float tensor of 5"),
    (lambda: complement.complement_cross_entropy(Z, T, torch.ones(3)), ValueError, "shape .5,., one weight per"),
    (lambda: complement.complement_cross_entropy(Z, T, -torch.ones(5)), ValueError, "finite and >= 0"),
    (lambda: complement.focal_loss(Z, T, torch.ones(5, dtype=torch.long)), ValueError, "float tensor of shape"),
    (lambda: complement.focal_loss(Z, T, gamma=-2), ValueError, "gamma must be >= 0"),
    (lambda: complement.focal_loss(Z, T, gamma=torch.tensor(2.0)), TypeError, "gamma must be a number; got Tensor"),
    # Modules: argument checks at construction
    (lambda: complement.FocalLoss(torch.ones(5)), TypeError, "gamma must be a number; got Tensor.*weight=..."),
    (lambda: complement.ComplementEntropy(2.5), TypeError, "num_classes must be an integer >= 2 or None; got 2.5"),
    (lambda: complement.ComplementEntropy("10"), TypeError, "num_classes must be an integer"),
    (lambda: complement.ComplementEntropy(True), TypeError, "num_classes must be an integer"),
    (lambda: complement.ComplementEntropy(1), ValueError, "at least 2 classes"),
    (lambda: complement.ComplementEntropy(ignore_index=None), TypeError, "ignore_index must be an integer"),
    (lambda: complement.ComplementEntropy(reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: complement.ComplementEntropy(normalization="k"), ValueError, "normalization must be one of"),
    (lambda: complement.ComplementEntropy(5, -100), TypeError, "positional argument"),
    (lambda: complement.ComplementEntropy(7)(Z, T), ValueError, "built with num_classes=7, but the logits have 5"),
    (lambda: complement.GuidedComplementEntropy(-0.5), ValueError, "alpha must be >= 0"),
    (lambda: complement.GuidedComplementEntropy(num_classes=0.5), TypeError, "num_classes must be an integer"),
    (lambda: complement.ComplementCrossEntropy(weight="balanced"), TypeError, "weight must be a float tensor"),
    (lambda: complement.ComplementCrossEntropy(-1.0), ValueError, "balancing_factor must be >= 0"),
    (lambda: complement.FocalLoss(weight=torch.tensor([1.0, -1.0])), ValueError, "finite and >= 0"),
    (lambda: complement.get_loss("ls", smoothing=1.5), ValueError, "smoothing must be in"),
    (lambda: complement.get_loss("ls", smoothing="a lot"), TypeError, "smoothing must be a number"),
    (lambda: complement.get_loss("nope"), ValueError, "unknown loss 'nope'; choose one of"),
    (lambda: complement.get_loss("cot", alpha=0.3), TypeError, "does not accept these arguments .'alpha'."),
    (lambda: complement.get_chunked_loss("focal"), ValueError, "has no chunked twin.*Return materialized"),
    (lambda: complement.get_chunked_loss("ce", label_smoothing=0.1), TypeError, "chunked twin of loss 'ce'"),
]

LINEAR_FUNCTIONS = [
    linear_cross_entropy,
    linear_complement_entropy,
    linear_guided_complement_entropy,
    linear_cross_entropy_and_complement,
]
LINEAR_CASES: list[Case] = [
    *[
        (lambda f=f: f(H, W.t(), T), ValueError, "weight must have shape .V, H. .*not its transpose")
        for f in LINEAR_FUNCTIONS
    ],
    *[(lambda f=f: f(H, W.double(), T), TypeError, "weight dtype torch.float64 differs") for f in LINEAR_FUNCTIONS],
    *[(lambda f=f: f(H.long(), W, T), TypeError, "floating-point hidden states") for f in LINEAR_FUNCTIONS],
    *[
        (lambda f=f: f(H, W, T[:2]), ValueError, "hidden states of shape .4, 3. and target of shape .2,. do not fit")
        for f in LINEAR_FUNCTIONS
    ],
    *[(lambda f=f: f(H, W, T, torch.ones(4)), ValueError, "bias must have shape .5,.") for f in LINEAR_FUNCTIONS],
    *[(lambda f=f: f(H, W, T, chunk_size=0), ValueError, "chunk_size must be a positive") for f in LINEAR_FUNCTIONS],
    *[(lambda f=f: f(H, W, T, backend="cuda"), ValueError, "backend must be one of") for f in LINEAR_FUNCTIONS],
    (lambda: linear_cross_entropy(H, W, T, chunk_size=True), ValueError, "chunk_size must be a positive"),
    (lambda: linear_cross_entropy(H, W, T, memory_budget_bytes=0), ValueError, "memory_budget_bytes must be"),
    (lambda: linear_cross_entropy(H, W, T, backend="triton"), RuntimeError, "backend='triton' runs on CUDA"),
    (lambda: linear_cross_entropy(H, W, torch.tensor([0, 1, 9, 2])), ValueError, "class index 9"),
    (lambda: linear_cross_entropy(H, W, T, ignore_index="pad"), TypeError, "ignore_index must be an integer"),
    (lambda: linear_guided_complement_entropy(H, W, T, alpha=-1.0), ValueError, "alpha must be >= 0"),
    (lambda: linear_complement_entropy(H, W, T, normalization="k"), ValueError, "normalization must be one of"),
    (lambda: LinearComplementEntropy(7)(H, W, T), ValueError, "built with num_classes=7, but the output layer has 5"),
]


def _cot(model=None, **options) -> CotStep:
    model = model or make_model(dtype=torch.float32)
    return CotStep(model, torch.optim.SGD(model.parameters(), 0.1), **options)


class Returns(nn.Module):
    def __init__(self, wrap):
        super().__init__()
        self.net, self.wrap = make_model(dtype=torch.float32), wrap

    def forward(self, x):
        return self.wrap(self.net(x))


X, Y = (t.float() if t.is_floating_point() else t for t in make_data(n=8))
ENGINE_CASES: list[Case] = [
    (
        lambda: _cot(Returns(lambda z: (z, None))).step((X, Y)),
        TypeError,
        "COT got tuple .* first element is the logits",
    ),
    (lambda: _cot(Returns(lambda z: {"logits": z})).step((X, Y)), TypeError, "got dict .* It holds logits: return"),
    (lambda: _cot(Returns(lambda z: types.SimpleNamespace(logits=z))).step((X, Y)), TypeError, "It holds logits"),
    (lambda: _cot().step({"x": X, "y": Y}), TypeError, "got a dict with keys .'x', 'y'..*logits_and_target"),
    (lambda: _cot().step((X,)), TypeError, r"got tuple of 1 element\(s\)"),
    (lambda: _cot().step(X), TypeError, "default batch format is .inputs, target."),
    (lambda: _cot().step((X, Y.float())), TypeError, "integer class indices"),
    (
        lambda: _cot().step((X, Y[:3])),
        ValueError,
        "COT: logits of shape .* and target of shape .3,. do not fit.*class-last logits",
    ),
    (lambda: _cot().step((X, Y), micro_batches=[(X, Y)]), ValueError, "either one batch or micro_batches"),
    (lambda: _cot().step(), ValueError, "either one batch or micro_batches"),
    (lambda: _cot().step(micro_batches=[]), ValueError, "needs at least one batch"),
    (lambda: _cot().step((X * float("nan"), Y)), FloatingPointError, "phase 'ce' produced a non-finite loss"),
    (lambda: CotStep(make_model(), []), ValueError, "COT needs an optimizer.*got none"),
    (lambda: CotStep(make_model(), "adam"), TypeError, "optimizers.0. is str, not an optimizer"),
    (lambda: CotStep(make_model(), 3), TypeError, "COT needs an optimizer, or a list of two"),
    (lambda: CotStep(make_model(), [torch.optim.SGD(make_model().parameters(), 0.1)] * 3), ValueError, "got 3"),
    (lambda: _cot(mode="sometimes"), ValueError, "unknown COT mode 'sometimes'"),
    (lambda: _cot(complement_weight=-1.0), ValueError, "complement_weight must be >= 0"),
    (lambda: _cot(gradient_clip_val=0.0), ValueError, "gradient_clip_val must be > 0"),
    (lambda: _cot(gradient_clip_algorithm="l2"), ValueError, "gradient_clip_algorithm must be one of"),
    (lambda: _cot(complement_loss="focal"), ValueError, "'focal' is not a complement objective"),
    (lambda: _cot(complement_loss="nope"), ValueError, "unknown loss 'nope'"),
    (lambda: _cot(complement_loss=lambda z, t: z.sum(), complement_loss_kwargs={"a": 1}), ValueError, "callable"),
    (lambda: _cot(primary_loss="cot", mode="off", primary_loss_kwargs={"alpha": 1}), TypeError, "does not accept"),
    (lambda: CotObjective("off"), TypeError, "CotObjective takes a CotConfig; got str"),
    (
        lambda: CotObjective(CotConfig(mode="off", primary_loss="focal")).phase_loss("ce", LinearLogits(H, W), T),
        ValueError,
        "loss 'focal' has no chunked twin",
    ),
]


def test_there_are_at_least_a_hundred_cases():
    cases = LOSS_CASES + LINEAR_CASES + ENGINE_CASES + LIGHTNING_CASES + CLI_CASES
    assert len(cases) >= 100


@pytest.mark.parametrize("call,error,phrase", LOSS_CASES + LINEAR_CASES + ENGINE_CASES)
def test_bad_input_gets_a_clear_error(call, error, phrase):
    with pytest.raises(error, match=phrase):
        call()


def test_surprising_but_legitimate_input_is_warned_once():
    with pytest.warns(UserWarning, match=r"the batch has 3 elements.*ignores the rest"):
        _cot().step((X, Y, torch.ones(8)))
    model = make_model(dtype=torch.float32).eval()
    with pytest.warns(UserWarning, match=r"is in eval mode.*Call model.train\(\)"):
        _cot(model).step((X, Y))


def test_an_optimizer_generator_is_accepted():
    model = make_model()
    cot = CotStep(model, (torch.optim.SGD(model.parameters(), 0.1) for _ in range(2)))
    assert cot.ce_optimizer is not cot.complement_optimizer


def test_pytorch_lightning_import_is_named(monkeypatch):
    from complement.lightning import CotModule

    monkeypatch.setitem(sys.modules, "pytorch_lightning", types.ModuleType("pytorch_lightning"))
    with pytest.warns(UserWarning, match="pytorch_lightning is imported.*import lightning.pytorch as pl"):
        CotModule()


def test_cot_trainer_bad_options():
    pytest.importorskip("transformers")
    from complement.hf import CotTrainer

    with pytest.raises(ValueError, match="unknown COT mode"):
        CotTrainer(model=make_model(), mode="half")
    with pytest.raises(ValueError, match="fused_lm_head=True applies to causal language models"):
        CotTrainer(model=make_model(), fused_lm_head=True)


# --- the command line: in process, and a few through the installed entry point ---


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


CLI_CASES: list[tuple[list[str], str]] = [
    (["fit", "--task", "nope"], "unknown task 'nope'"),
    (["fit", "--task", "digits", "--method", "magic"], "unknown method 'magic'"),
    (["fit", "--task", "digits", "--seed", "-1"], r"seed must be an integer in \[0, 2\*\*32\)"),
    (["fit", "--task", "digits", "--train.lr", "-0.1"], "train.lr must be > 0; got -0.1"),
    (["fit", "--task", "digits", "--train.optimizer", "lion"], "unknown optimizer 'lion'"),
    (["fit", "--task", "digits", "--train.cot_optimizers", "two"], "cot_optimizers must be one of"),
    (["fit", "--task", "digits", "--train.accumulate_grad_batches", "0"], "accumulate_grad_batches must be an integer"),
    (["fit", "--task", "digits", "--train.keep_best", "train_acc"], "keep_best must be one of"),
    (["fit", "--task", "digits", "--task_options", "{colour: red}"], "has no option.s. .'colour'."),
    (["fit", "--task", "text_file", "--task_options", "{data_path: missing.csv}"], "data file not found: missing.csv"),
    (["fit", "--task", "text_file", "--task_options", "{data_path: header.csv}"], "has no examples.*header row"),
    (
        ["fit", "--task", "text_file", "--task_options", "{data_path: one_class.csv}"],
        "1 class.es. .'a'.: classification",
    ),
    (["fit", "--task", "digits", "--out", "a_file"], "--out a_file: a_file is a file, not a directory"),
    (["fit", "--resume", "nowhere"], "nowhere is not a run directory"),
    (["fit", "--resume", "damaged_run"], "config.json is not valid JSON"),
    (["compare", "--task", "digits", "--seeds", "0"], "seeds must be an integer >= 1"),
    (["compare", "--task", "digits", "--methods", "[ce, ce]"], r"methods lists \['ce'\] more than once"),
    (["compare", "--task", "digits", "--methods", "[]"], "methods is empty"),
    (["compare", "--task", "digits", "--train.weight_decay", "-1"], "weight_decay must be >= 0"),
    (["compare", "--resume", "damaged_compare"], "compare.json is damaged"),
    (["status", "nowhere"], "neither a run directory nor a comparison directory"),
]


def _user_files(folder: Path) -> list[str]:
    """The files the CLI cases refer to; returns the folder's listing before the command."""
    _write(folder / "header.csv", "text,label\n")
    _write(folder / "one_class.csv", "text,label\n" + "".join(f"example {i},a\n" for i in range(8)))
    _write(folder / "a_file", "")
    (folder / "damaged_run").mkdir()
    _write(folder / "damaged_run" / "config.json", '{"task": "dig')
    (folder / "damaged_compare").mkdir()
    _write(folder / "damaged_compare" / "compare.json", "")
    return sorted(p.name for p in folder.iterdir())


def _cli_args(args: list[str]) -> list[str]:
    return [*args, "--progress", "false"] if args[0] != "status" else args


@pytest.mark.parametrize("args,phrase", CLI_CASES, ids=[" ".join(a)[:60] for a, _ in CLI_CASES])
def test_cli_user_error_is_one_clear_line_and_leaves_nothing(tmp_path, monkeypatch, capsys, args, phrase):
    """In process, through the same ``main`` the ``complement`` entry point calls."""
    import re

    from complement.experiments.cli import main

    before = _user_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(_cli_args(args))
    out, err = capsys.readouterr()
    assert exit_.value.code == 1, (exit_.value.code, err[-2000:])
    assert "Traceback" not in err + out
    assert re.search(phrase, err), err[-2000:]
    assert "--debug" in err and len(err.strip().splitlines()) == 2, err  # the error line and the --debug hint
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a failed command left a directory behind"


SUBPROCESS_CASES = [CLI_CASES[0], CLI_CASES[9], CLI_CASES[-2]]  # a bad name, a missing file, a damaged file


@pytest.mark.slow
@pytest.mark.parametrize("args,phrase", SUBPROCESS_CASES, ids=[" ".join(a)[:60] for a, _ in SUBPROCESS_CASES])
def test_cli_user_error_exits_1_without_a_traceback_from_the_entry_point(tmp_path, args, phrase):
    """The installed ``complement`` command itself: exit status 1, one line on stderr, no traceback."""
    import re
    import shutil

    before = _user_files(tmp_path)
    command = shutil.which("complement", path=str(Path(sys.executable).parent)) or "complement"
    result = subprocess.run([command, *_cli_args(args)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout
    assert re.search(phrase, result.stderr), result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


class DictForward(CotModule):
    def __init__(self, wrap, **cot):
        super().__init__(**cot)
        self.net, self.wrap = make_model(dtype=torch.float32), wrap

    def forward(self, x):
        return self.wrap(self.net(x))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(module, batches) -> None:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(module, DataLoader(batches, batch_size=None))  # fmt: skip


LIGHTNING_CASES: list[Case] = [
    (lambda: _fit(DictForward(lambda z: {"logits": z}), [(X, Y)]), TypeError, "got dict .* It holds logits"),
    (lambda: _fit(DictForward(lambda z: (z,)), [(X, Y)]), TypeError, "got tuple .*CotModule.logits_and_target"),
    (lambda: _fit(DictForward(lambda z: z), [{"x": X, "y": Y}]), TypeError, "got a dict with keys .'x', 'y'.*Override"),
    (lambda: DictForward(lambda z: z, accumulate_grad_batches=1.5), ValueError, "accumulate_grad_batches must be an"),
    (lambda: DictForward(lambda z: z, accumulate_grad_batches=True), ValueError, "accumulate_grad_batches must be an"),
    (lambda: DictForward(lambda z: z, mode="both"), ValueError, "unknown COT mode 'both'"),
]


@pytest.mark.parametrize("call,error,phrase", LIGHTNING_CASES)
def test_cot_module_bad_input_gets_a_clear_error(call, error, phrase):
    with pytest.raises(error, match=phrase):
        call()
