"""The plain-PyTorch front end against a hand-written COT loop."""

from __future__ import annotations

import pytest
import torch

from complement.training import CotObjective, CotStep
from tests.helpers.tiny import (
    assert_same_parameters,
    batches_of,
    make_data,
    make_model,
    make_optimizers,
    reference_loop,
)


@pytest.mark.parametrize("mode", ["alternate", "joint", "off"])
@pytest.mark.parametrize("optimizers", ["shared", "two"])
def test_cot_step_equals_hand_written_loop(mode, optimizers):
    x, y = make_data()
    batches = batches_of(x, y, 8)
    ref_model = make_model()
    reference_loop(ref_model, make_optimizers(ref_model, optimizers), batches, mode, weight=0.7)
    model = make_model()
    cot = CotStep(model, make_optimizers(model, optimizers), mode=mode, complement_weight=0.7)
    for batch in batches:
        logs = cot.step(batch)
    assert_same_parameters(model, ref_model, atol=1e-10)
    assert set(logs) >= {"train_loss"} and (mode == "off" or "cot_loss" in logs)


@pytest.mark.parametrize("mode", ["alternate", "joint"])
def test_accumulation_equals_large_batch(mode):
    x, y = make_data(n=32)
    big_model, small_model = make_model(), make_model()
    big = CotStep(big_model, make_optimizers(big_model, "two"), mode=mode)
    small = CotStep(small_model, make_optimizers(small_model, "two"), mode=mode)
    for batch in batches_of(x, y, 16):
        big.step(batch)
        small.step(micro_batches=batches_of(*batch, 4))  # 4 micro-batches of 4
    assert_same_parameters(small_model, big_model, atol=1e-10)


def test_gradient_clipping_by_norm_clips_each_step():
    x, y = make_data(n=8)
    model = make_model()
    seen = []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    original = optimizer.step

    def step(*args, **kwargs):
        seen.append(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item())
        return original(*args, **kwargs)

    optimizer.step = step
    CotStep(model, optimizer, gradient_clip_val=1e-3).step((x * 100, y))
    assert len(seen) == 2 and all(abs(norm - 1e-3) < 1e-8 for norm in seen)  # torch divides by norm + 1e-6


def test_amp_with_grad_scaler_runs():
    x, y = make_data(n=16, dtype=torch.float32)
    model = make_model(dtype=torch.float32)
    scaler = torch.amp.GradScaler("cpu")
    cot = CotStep(model, torch.optim.Adam(model.parameters(), 1e-3), scaler=scaler, gradient_clip_val=1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logs = cot.step((x, y))
    assert all(torch.isfinite(v) for v in logs.values())


def test_dataloader_list_batches_are_one_batch():
    x, y = make_data(n=16)
    model, ref_model = make_model(), make_model()
    cot = CotStep(model, make_optimizers(model, "shared"))
    for batch in torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8):
        cot.step(batch)  # a [x, y] list
    reference_loop(ref_model, make_optimizers(ref_model, "shared"), batches_of(x, y, 8), "alternate")
    assert_same_parameters(model, ref_model, atol=1e-10)


def test_custom_logits_and_target_and_callable_loss():
    x, y = make_data(n=8)
    model = make_model()
    calls = []

    def my_complement(logits, target):
        calls.append(logits.shape)
        return logits.logsumexp(-1).mean() * 0.0

    cot = CotStep(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        complement_loss=my_complement,
        logits_and_target=lambda m, batch: (m(batch["x"]), batch["y"]),
    )
    cot.step({"x": x, "y": y})
    assert calls == [torch.Size([8, 5])]


def test_non_finite_loss_is_reported():
    x, y = make_data(n=8)
    x[0, 0] = float("nan")
    model = make_model()
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1)).step((x, y))


BAD = [
    (lambda m: CotStep(m, torch.optim.SGD(m.parameters(), 0.1), mode="both"), ValueError, "unknown COT mode 'both'"),
    (lambda m: CotStep(m, []), ValueError, "COT needs an optimizer"),
    (lambda m: CotStep(m, [torch.optim.SGD(m.parameters(), 0.1)] * 3), ValueError, "one optimizer .shared. or two"),
    (
        lambda m: CotStep(m, torch.optim.SGD(m.parameters(), 0.1), complement_loss="focal"),
        ValueError,
        "not a complement objective",
    ),
    (
        lambda m: CotStep(m, torch.optim.SGD(m.parameters(), 0.1), complement_loss="nope"),
        ValueError,
        "unknown loss 'nope'",
    ),
    (
        lambda m: CotStep(m, torch.optim.SGD(m.parameters(), 0.1), gradient_clip_val=0),
        ValueError,
        "gradient_clip_val must be > 0",
    ),
    (
        lambda m: CotStep(m, torch.optim.SGD(m.parameters(), 0.1), gradient_clip_algorithm="l3"),
        ValueError,
        "gradient_clip_algorithm",
    ),
    (
        lambda m: CotStep(m, torch.optim.SGD(m.parameters(), 0.1), complement_weight=-1),
        ValueError,
        "complement_weight must be >= 0",
    ),
    (
        lambda m: CotStep(m, torch.optim.SGD(m.parameters(), 0.1)).step(micro_batches=[]),
        ValueError,
        "at least one batch",
    ),
    (
        lambda m: CotStep(m, torch.optim.SGD(m.parameters(), 0.1)).step(),
        ValueError,
        "either one batch or micro_batches",
    ),
    (lambda m: CotStep(m, torch.optim.SGD(m.parameters(), 0.1)).step(make_data()[0]), TypeError, r"\(inputs, target\)"),
    (
        lambda m: CotObjective().phase_loss("ce", torch.zeros(4, 5), torch.zeros(3, dtype=torch.long)),
        ValueError,
        "class-last logits",
    ),
]


@pytest.mark.parametrize("call,error,message", BAD, ids=[m for _, _, m in BAD])
def test_bad_configuration(call, error, message):
    with pytest.raises(error, match=message):
        call(make_model())


def test_primary_loss_trains_another_loss_alone():
    import complement

    x, y = make_data(n=16)
    model, ref_model = make_model(), make_model()
    CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1), mode="off", primary_loss="gce").step((x, y))
    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=0.1)
    complement.guided_complement_entropy(ref_model(x), y).backward()
    ref_opt.step()
    assert_same_parameters(model, ref_model, atol=1e-10)


def test_cot_config_is_checked_once_where_it_is_built():
    from complement.training import CotConfig, Phase

    with pytest.raises(ValueError, match="unknown COT mode 'sometimes'"):
        CotConfig(mode="sometimes")
    with pytest.raises(ValueError, match="complement_weight must be >= 0"):
        CotConfig(complement_weight=-1.0)
    with pytest.raises(ValueError, match="apply to a named complement loss, not to a callable"):
        CotConfig(complement_loss=lambda z, t: z.sum(), complement_loss_kwargs={"alpha": 1})
    with pytest.raises(TypeError, match="CotObjective takes a CotConfig; got str"):
        CotObjective("off")
    assert CotObjective(CotConfig(mode="joint")).phases == (Phase.CE,)
    assert CotObjective().phases == ("ce", "complement")  # Phase values are the plain names


def test_two_optimizers_over_different_parameters_see_only_their_phase_gradients():
    x, y = make_data(n=16)
    model, reference = make_model(), make_model()
    cot = CotStep(model, [torch.optim.SGD(model[0].parameters(), 0.1), torch.optim.SGD(model[2].parameters(), 0.1)])
    cot.step((x, y))
    opts = [torch.optim.SGD(reference[0].parameters(), 0.1), torch.optim.SGD(reference[2].parameters(), 0.1)]
    reference_loop(reference, opts, [(x, y)], "alternate")
    assert_same_parameters(model, reference, atol=1e-12)


def test_cot_step_leaves_modes_to_the_user_and_warns_about_eval_mode():
    x, y = make_data(n=16)
    model = make_model()
    model[1].eval()  # a submodule frozen on purpose
    cot = CotStep(model, torch.optim.SGD(model.parameters(), 0.1))
    cot.step((x, y))
    assert model.training and not model[1].training
    model.eval()
    with pytest.warns(UserWarning, match=r"is in eval mode.*Call model.train\(\)"):
        cot.step((x, y))
    assert cot.steps == 2


def test_cot_step_state_dict_resumes_exactly_and_refuses_a_mismatch():
    x, y = make_data(n=32)
    batches = batches_of(x, y, 8)

    def fresh(kind="two"):
        torch.manual_seed(0)
        model = torch.nn.Sequential(make_model(), torch.nn.Dropout(0.3))
        return CotStep(model, make_optimizers(model, kind))

    whole = fresh()
    for batch in batches:
        whole.step(batch)
    first = fresh()
    for batch in batches[:2]:
        first.step(batch)
    saved = first.state_dict()
    torch.manual_seed(123)  # another process's RNG
    resumed = fresh()
    resumed.load_state_dict(saved)
    for batch in batches[2:]:
        resumed.step(batch)
    assert_same_parameters(resumed.model, whole.model, atol=0) and resumed.steps == 4
    with pytest.raises(ValueError, match="saved with two optimizers, this CotStep has one"):
        fresh("shared").load_state_dict(saved)
