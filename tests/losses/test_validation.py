"""The base layer's row check, ``flatten_rows``: its rows and messages, and that the four places
which check ``(logits, target)`` (a loss, a metric, the training objective and a chunked loss)
all raise its message, word for word, for the same bad input."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pytest
import torch

from complement import complement_entropy
from complement._validation import INDEX_DTYPES, check_targets, flatten_rows
from complement.losses.linear import linear_cross_entropy
from complement.metrics import flatten_kept, negative_log_likelihood
from complement.training import CotObjective
from complement.training.objective import flatten_class_last

Z, T = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])


def message(call: Callable[[], object]) -> tuple[type[BaseException], str]:
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    return info.type, str(info.value)


# ---------------------------------------------------------------- flatten_rows itself: valid input


def test_class_last_rows_are_views_of_the_logits():
    logits, target = torch.randn(2, 3, 5), torch.randint(0, 5, (2, 3))
    rows, flat, shape = flatten_rows(logits, target, who="x")
    assert rows.shape == (6, 5) and flat.shape == (6,) and shape == (2, 3)
    assert torch.equal(rows, logits.reshape(-1, 5)) and torch.equal(flat, target.reshape(-1))
    assert rows.data_ptr() == logits.data_ptr()  # no copy


def test_two_dimensional_logits_are_returned_as_they_are():
    rows, flat, shape = flatten_rows(Z, T, who="x")
    assert rows is Z and torch.equal(flat, T) and shape == (4,)
    rows, _, _ = flatten_rows(Z, T, who="x", class_last=False)
    assert rows is Z


def test_classes_in_dimension_one_are_moved_last():
    logits, target = torch.randn(2, 5, 3, 4), torch.randint(0, 5, (2, 3, 4))
    rows, flat, shape = flatten_rows(logits, target, who="x", class_last=False)
    assert torch.equal(rows, logits.movedim(1, -1).reshape(-1, 5))
    assert torch.equal(flat, target.reshape(-1)) and shape == (2, 3, 4)


@pytest.mark.parametrize("class_last", [True, False])
def test_unbatched_logits_with_a_scalar_target_are_one_row(class_last):
    rows, flat, shape = flatten_rows(torch.randn(5), torch.tensor(3), who="x", class_last=class_last)
    assert rows.shape == (1, 5) and flat.tolist() == [3] and shape == ()


@pytest.mark.parametrize("class_last", [True, False])
def test_an_empty_batch_gives_empty_rows(class_last):
    rows, flat, shape = flatten_rows(
        torch.randn(0, 5), torch.zeros(0, dtype=torch.long), who="x", class_last=class_last
    )
    assert rows.shape == (0, 5) and flat.shape == (0,) and shape == (0,)
    rows, flat, _ = flatten_rows(torch.randn(2, 0, 5), torch.zeros(2, 0, dtype=torch.long), who="x")
    assert rows.shape == (0, 5) and flat.shape == (0,)


def test_the_target_keeps_its_dtype():
    for dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
        assert flatten_rows(Z, T.to(dtype), who="x")[1].dtype == dtype
    assert flatten_rows(Z, T.int(), who="x", index_dtypes=INDEX_DTYPES)[1].dtype == torch.int32


# ---------------------------------------------------------------- flatten_rows itself: the messages


BAD_ROWS = [
    (
        dict(logits=Z.tolist()),
        TypeError,
        "who expects logits and target as tensors; got list and Tensor",
    ),
    (
        dict(target=T.tolist()),
        TypeError,
        "who expects logits and target as tensors; got Tensor and list",
    ),
    (dict(logits=Z.long()), TypeError, "who expects floating-point logits; got dtype torch.int64"),
    (
        dict(logits=torch.tensor(1.0), target=torch.tensor(0)),
        ValueError,
        "who expects logits of shape (C,), (N, C) or (..., C); got a scalar",
    ),
    (
        dict(logits=torch.tensor(1.0), target=torch.tensor(0), class_last=False),
        ValueError,
        "who expects logits of shape (C,), (N, C) or (N, C, d1, ...); got a scalar",
    ),
    (
        dict(target=T.float()),
        TypeError,
        "who expects integer class indices as target; got dtype torch.float32. Probability (soft) targets are "
        "not supported: each row has one target class (the complement is defined by it). Convert one-hot targets "
        "with target.argmax(-1).",
    ),
    (
        dict(target=torch.eye(5)[T], class_last=False),
        TypeError,
        "who expects integer class indices as target; got dtype torch.float32. Probability (soft) targets are "
        "not supported: each row has one target class (the complement is defined by it). Convert one-hot targets "
        "with target.argmax(1).",
    ),
    (dict(target=T.bool()), TypeError, "who expects integer class indices as target; got dtype torch.bool."),
    (dict(target=T.to(torch.complex64)), TypeError, "who expects integer class indices as target; got dtype"),
    (
        dict(target=T.to(torch.int16), index_dtypes=INDEX_DTYPES),
        TypeError,
        "who expects class indices of dtype int64 (or int32); got torch.int16. Convert with target.long().",
    ),
    (
        dict(target=T.to(torch.uint8), index_dtypes=INDEX_DTYPES),
        TypeError,
        "who expects class indices of dtype int64 (or int32); got torch.uint8.",
    ),
    (dict(target=T.to("meta")), ValueError, "who: logits are on cpu and target on meta; move them to one device"),
    (
        dict(target=T[:3]),
        ValueError,
        "who: logits of shape (4, 5) and target of shape (3,) do not fit; expected target shape (4,), the logits' "
        "shape without its last dimension. Pass class-last logits (..., C) with targets (...), e.g. (N, C) with "
        "(N,) or (N, L, C) with (N, L).",
    ),
    (
        dict(target=T[:3], class_last=False),
        ValueError,
        "who: logits of shape (4, 5) and target of shape (3,) do not fit; expected target shape (4,), the logits' "
        "shape without dimension 1. Pass logits (N, C, d1, ...) with targets (N, d1, ...); for (N, L, C) logits, "
        "pass logits.transpose(1, 2), or logits.reshape(-1, C) with target.reshape(-1).",
    ),
    # wrong rank: a target with a class dimension of its own, a scalar target for a batch, a batch for one row
    (dict(target=T.unsqueeze(1)), ValueError, "target of shape (4, 1) do not fit; expected target shape (4,),"),
    (dict(target=torch.tensor(0)), ValueError, "target of shape () do not fit; expected target shape (4,),"),
    (
        dict(logits=torch.randn(5), class_last=False),
        ValueError,
        "who: logits of shape (5,) and target of shape (4,) do not fit; expected target shape (), the logits' "
        "shape without dimension 0.",
    ),
    (
        dict(logits=torch.randn(2, 5, 3), target=torch.zeros(2, 5, dtype=torch.long), class_last=False),
        ValueError,
        "target of shape (2, 5) do not fit; expected target shape (2, 3), the logits' shape without dimension 1.",
    ),
    # an empty batch must still fit
    (
        dict(logits=torch.randn(0, 5)),
        ValueError,
        "who: logits of shape (0, 5) and target of shape (4,) do not fit; expected target shape (0,)",
    ),
    (
        dict(logits=torch.randn(4, 3), target=T[:2], name="hidden states", width="H"),
        ValueError,
        "who: hidden states of shape (4, 3) and target of shape (2,) do not fit; expected target shape (4,), the "
        "hidden states' shape without its last dimension. Pass class-last hidden states (..., H) with targets (...)",
    ),
]


@pytest.mark.parametrize("changes,error,expected", BAD_ROWS, ids=[e for _, _, e in BAD_ROWS])
def test_flatten_rows_refuses_bad_input_with_its_message(changes, error, expected):
    arguments = {"logits": Z, "target": T, **changes}
    raised, text = message(
        lambda: flatten_rows(arguments.pop("logits"), arguments.pop("target"), who="who", **arguments)
    )
    assert raised is error
    assert text.startswith("who") and expected in text, text


def test_check_targets_is_the_one_label_range_rule():
    with pytest.raises(ValueError) as info:
        check_targets(torch.tensor([0, 7, -100]), 5, -100, "who")
    assert str(info.value) == (
        "who: target contains class index 7, outside the valid range [0, 4] for logits with 5 classes "
        "(ignore_index=-100). Check that the label set matches the model's number of classes, and mark padding "
        "with ignore_index."
    )
    with pytest.raises(ValueError, match=r"class index -100, .*\(ignore_index=None\)"):
        check_targets(torch.tensor([0, -100]), 5, None, "who")
    assert check_targets(torch.tensor([0, 4]), 5, -100, "who") is False  # in range: nothing to mask
    assert check_targets(torch.tensor([0, -100]), 5, -100, "who") is True
    assert check_targets(torch.tensor([0, 4]), 5, None, "who") is False
    assert check_targets(torch.zeros(0, dtype=torch.long), 5, -100, "who") is False


# ---------------------------------------------------------------- the four call sites, one message


@dataclass(frozen=True)
class Site:
    """A place that checks (logits, target) rows, and the flatten_rows call it makes."""

    name: str
    call: Callable
    rows: Callable
    strict_dtype: bool  # int64/int32 targets only (the loss kernels); otherwise any integer dtype


W = torch.randn(7, 5)  # an output layer for hidden states of width 5: the chunked loss takes Z as hidden states
SITES = [
    Site(
        "loss",
        complement_entropy,
        partial(flatten_rows, who="complement_entropy", class_last=False, index_dtypes=INDEX_DTYPES),
        True,
    ),
    Site("metric", negative_log_likelihood, partial(flatten_rows, who="metrics"), False),
    Site("objective", lambda z, t: CotObjective().phase_loss("ce", z, t), partial(flatten_rows, who="COT"), False),
    Site(
        "linear",
        lambda z, t: linear_cross_entropy(z, W, t),
        partial(flatten_rows, who="linear_cross_entropy", name="hidden states", width="H", index_dtypes=INDEX_DTYPES),
        True,
    ),
]
SITE_IDS = [site.name for site in SITES]

# (logits, target, the part of the message every site shares word for word)
SAME_BAD_INPUT = {
    "soft target": (Z, Z.softmax(-1)[:, 0], "expects integer class indices as target; got dtype torch.float32."),
    "one-hot target": (Z, torch.eye(5)[T], "expects integer class indices as target; got dtype torch.float32."),
    "bool target": (Z, T.bool(), "expects integer class indices as target; got dtype torch.bool."),
    "target not a tensor": (Z, T.tolist(), "and target as tensors; got Tensor and list"),
    "integer logits": (Z.long(), T, "expects floating-point"),
    "scalar logits": (torch.tensor(1.0), torch.tensor(0), "; got a scalar"),
    "device": (Z, T.to("meta"), "are on cpu and target on meta; move them to one device"),
    "shape": (Z, T[:3], "of shape (4, 5) and target of shape (3,) do not fit; expected target shape (4,), the "),
    "rank": (Z, T.unsqueeze(1), "of shape (4, 5) and target of shape (4, 1) do not fit; expected target shape (4,)"),
    "empty batch, targets left": (torch.randn(0, 5), T, "of shape (0, 5) and target of shape (4,) do not fit"),
}


@pytest.mark.parametrize("site", SITES, ids=SITE_IDS)
@pytest.mark.parametrize("case", list(SAME_BAD_INPUT))
def test_every_site_raises_the_flatten_rows_message(site, case):
    logits, target, shared = SAME_BAD_INPUT[case]
    error, text = message(lambda: site.call(logits, target))
    assert (error, text) == message(lambda: site.rows(logits, target))
    assert shared in text


@pytest.mark.parametrize("case", list(SAME_BAD_INPUT))
def test_the_sites_differ_only_in_who_names_and_layout(case):
    logits, target, _ = SAME_BAD_INPUT[case]
    first_sentences = set()
    for site in SITES:
        _, text = message(lambda site=site: site.call(logits, target))
        text = re.sub(r"^(complement_entropy|metrics|COT|linear_cross_entropy):? ", "", text)
        text = text.replace("hidden states", "logits").replace("H", "C").replace("(N, C, d1, ...)", "(..., C)")
        first_sentences.add(text.split(". ")[0].split(", the logits' shape")[0])
    assert len(first_sentences) == 1, first_sentences


@pytest.mark.parametrize("site", SITES, ids=SITE_IDS)
def test_index_dtypes(site):
    """int16 targets: the losses' kernels take int64/int32 only (one message); the metrics and the
    objective pass any integer dtype on (torch's own losses and torchmetrics take uint8)."""
    bad = T.to(torch.int16)
    if site.strict_dtype:
        error, text = message(lambda: site.call(Z, bad))
        assert (error, text) == message(lambda: site.rows(Z, bad))
        assert "expects class indices of dtype int64 (or int32); got torch.int16. Convert with target.long()." in text
    else:
        assert site.rows(Z, bad)[1].dtype == torch.int16
        site.call(Z, T.to(torch.uint8))  # F.cross_entropy takes uint8 targets


@pytest.mark.parametrize("site", SITES, ids=SITE_IDS)
def test_an_empty_batch_is_not_an_error(site):
    result = site.call(torch.randn(0, 5), torch.zeros(0, dtype=torch.long))
    assert result is not None


@pytest.mark.parametrize("site", [s for s in SITES if s.name != "objective"], ids=lambda s: s.name)
def test_the_label_range_has_one_message(site):
    """The objective leaves the range to the losses it calls (plain cross-entropy is torch's own)."""
    who = {"loss": "complement_entropy", "metric": "metrics", "linear": "linear_cross_entropy"}[site.name]
    with pytest.raises(ValueError) as info:
        site.call(Z, torch.tensor([0, 1, 9, -100]))
    assert str(info.value) == (
        f"{who}: target contains class index 9, outside the valid range [0, {4 if site.name != 'linear' else 6}] "
        f"for logits with {5 if site.name != 'linear' else 7} classes (ignore_index=-100). Check that the label set "
        "matches the model's number of classes, and mark padding with ignore_index."
    )


def test_the_objective_keeps_its_advice_for_a_model_output_that_is_not_a_tensor():
    with pytest.raises(TypeError, match=r"COT got dict as the model's output.* It holds logits"):
        CotObjective().phase_loss("ce", {"logits": Z}, T)


def test_the_wrappers_return_flatten_rows_rows():
    logits, target = torch.randn(2, 3, 5), torch.tensor([[0, 1, -100], [4, 2, 3]])
    rows, flat, _ = flatten_rows(logits, target, who="x")
    assert all(torch.equal(a, b) for a, b in zip(flatten_class_last(logits, target), (rows, flat)))
    kept = flat != -100
    assert all(torch.equal(a, b) for a, b in zip(flatten_kept(logits, target), (rows[kept], flat[kept])))
