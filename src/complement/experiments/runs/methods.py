"""The training methods a run or a comparison can use.

===================  ===================================================================
``ce``               cross-entropy (the baseline)
``cot``              COT, the authors' alternate steps (CE step, then complement step)
``cot_joint``        one step on CE + complement entropy
``ce_2x``            cross-entropy for twice the epochs: as many forward/backward passes as COT
``gce``              guided complement entropy alone (Chen et al., ICCV 2019)
``cce``              complement cross-entropy alone (Kim et al., 2021)
``ls``               label smoothing 0.1
``focal``            focal loss, gamma 2
``gen_ce``           generalized cross-entropy ``(1 - p_g^q) / q``, q 0.7 (Zhang & Sabuncu, 2018)
``mae``              mean absolute error on probabilities, ``2 (1 - p_g)`` (Ghosh et al., 2017)
``comp_sum_tau<τ>``  the comp-sum loss with that ``tau`` (Mao, Mohri and Zhong, ICML 2023)
``pgd_at``           CE on PGD adversarial examples (Madry et al., ICLR 2018)
``trades``           TRADES: CE + beta KL(clean ‖ adversarial) (Zhang et al., ICML 2019)
``cot_pgd``          COT with both phases on PGD adversarial examples (as the GCE paper trains)
===================  ===================================================================

The adversarial methods (image tasks only) take their radius, steps, step size and TRADES'
beta from the run's ``train.adv_*`` settings (the radius from the task's data card by
default); their attack's forward/backward passes count in the run's passes (equal compute).

The comp-sum methods carry their ``tau`` in the name, so that a comparison can hold several
(the paper compares the family over ``tau``): ``comp_sum_tau0`` (sum-exponential),
``comp_sum_tau0.5``, ``comp_sum_tau1`` (cross-entropy), ``comp_sum_tau1.5`` (generalized
cross-entropy, q 0.5), ``comp_sum_tau2`` (``1 - p_g``, MAE / 2). ``tau`` is written as a
plain decimal of at most 16 characters, digits with an optional fraction (no sign, exponent
or ``_``), in its one
spelling: no leading zeros, no trailing zeros after the point, no ``.0`` (``comp_sum_tau1``,
not ``comp_sum_tau1.0``), so that one ``tau`` is one method, one run folder
(``{method}-seed{seed}``) and one row of a report. A bare ``comp_sum`` is refused: the family
has no default ``tau``. ``METHODS`` lists the form under ``comp_sum_tau<τ>``, a pattern that
:func:`get_method` refuses as a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Method:
    """How a run trains: COT's ``mode``, the primary loss (a registered name) and its keyword
    arguments, the epochs' factor (``ce_2x``) and the adversarial training, if any."""

    mode: str = "off"
    primary_loss: str = "cross_entropy"
    epoch_factor: int = 1
    summary: str = ""
    primary_loss_kwargs: dict[str, Any] | None = None
    adversarial: str | None = None  # an AdversarialTraining kind: pgd_at or trades


METHODS: dict[str, Method] = {
    "ce": Method("off", summary="cross-entropy"),
    "cot": Method("alternate", summary="COT: CE step, then complement-entropy step"),
    "cot_joint": Method("joint", summary="one step on CE + complement entropy"),
    "ce_2x": Method("off", epoch_factor=2, summary="cross-entropy, 2x epochs (COT's forward/backward passes)"),
    "gce": Method("off", "guided_complement_entropy", summary="guided complement entropy alone"),
    "cce": Method("off", "complement_cross_entropy", summary="complement cross-entropy alone"),
    "ls": Method("off", "label_smoothing", summary="label smoothing 0.1"),
    "focal": Method("off", "focal", summary="focal loss, gamma 2"),
    "gen_ce": Method("off", "generalized_cross_entropy", summary="generalized cross-entropy, q 0.7 (comp-sum)"),
    "mae": Method("off", "mean_absolute_error", summary="mean absolute error on probabilities (comp-sum)"),
    "pgd_at": Method("off", summary="CE on PGD adversarial examples (Madry et al.)", adversarial="pgd_at"),
    "trades": Method("off", summary="TRADES: CE + beta KL to PGD examples (Zhang et al.)", adversarial="trades"),
    "cot_pgd": Method("alternate", summary="COT, both steps on PGD adversarial examples", adversarial="pgd_at"),
}

COMP_SUM_PATTERN = "comp_sum_tau<τ>"
"""How ``METHODS`` (and ``complement list``) shows the comp-sum methods; not a method name itself."""
METHODS[COMP_SUM_PATTERN] = Method(
    "off",
    "comp_sum",
    summary="comp-sum loss with τ >= 0 in the name, e.g. comp_sum_tau0.5 (τ 0 sum-exp, 1 CE, 2 MAE / 2)",
)

_COMP_SUM_NAME = re.compile(r"comp_sum_tau([0-9]+(?:\.[0-9]+)?)")
_MAX_TAU_TEXT = 16
_KNOWN_TAU = {0.0: "sum-exponential", 1.0: "= cross-entropy", 2.0: "1 - p_g, MAE / 2"}


def _plain_decimal(text: str) -> str:
    """``text`` (a decimal number) in its one spelling: no exponent, leading or trailing zeros, or ``.0``."""
    return format(Decimal(text).normalize(), "f")


def _comp_sum_method(name: str) -> Method | None:
    """The comp-sum method ``name`` names, ``None`` if it names none; a misspelled ``tau`` raises."""
    found = _COMP_SUM_NAME.fullmatch(name)
    if found is None:
        return None
    text = found.group(1)
    if len(text) > _MAX_TAU_TEXT:
        raise ValueError(
            f"unknown method {name!r}: tau is written with at most {_MAX_TAU_TEXT} characters in a method name "
            "(the name is a folder name too)"
        )
    spelled = _plain_decimal(text)
    if spelled != text:
        raise ValueError(
            f"unknown method {name!r}: write tau in its one spelling, comp_sum_tau{spelled} (no leading zeros, no "
            "trailing zeros after the point), so that one tau is one method and one run folder"
        )
    tau = float(text)
    known = _KNOWN_TAU.get(tau, f"GCE q {tau - 1:g}" if 1 < tau < 2 else "")
    return Method(
        "off",
        "comp_sum",
        summary=f"comp-sum loss, tau {text}" + (f" ({known})" if known else ""),
        primary_loss_kwargs={"tau": tau},
    )


def get_method(name: str) -> Method:
    """The method named ``name``: a key of ``METHODS``, or a comp-sum method such as ``comp_sum_tau0.5``."""
    if isinstance(name, str) and name in METHODS and name != COMP_SUM_PATTERN:
        return METHODS[name]
    method = _comp_sum_method(name) if isinstance(name, str) else None
    if method is not None:
        return method
    hint = ""
    if isinstance(name, str) and name.startswith("comp_sum"):
        hint = (
            " (a comp-sum method names its tau >= 0 as a plain decimal: comp_sum_tau<τ>, e.g. comp_sum_tau0.5; "
            "a bare comp_sum has no default tau)"
        )
    raise ValueError(f"unknown method {name!r}{hint}; choose from {sorted(METHODS)}")
