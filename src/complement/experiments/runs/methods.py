"""The training methods a run or a comparison can use.

==============  ===================================================================
``ce``          cross-entropy (the baseline)
``cot``         COT, the authors' alternate steps (CE step, then complement step)
``cot_joint``   one step on CE + complement entropy
``ce_2x``       cross-entropy for twice the epochs: as many forward/backward passes as COT
``gce``         guided complement entropy alone (Chen et al., ICCV 2019)
``cce``         complement cross-entropy alone (Kim et al., 2021)
``ls``          label smoothing 0.1
``focal``       focal loss, gamma 2
``gen_ce``      generalized cross-entropy ``(1 - p_g^q) / q``, q 0.7 (Zhang & Sabuncu, 2018)
``mae``         mean absolute error on probabilities, ``2 (1 - p_g)`` (Ghosh et al., 2017)
==============  ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass


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
    "gen_ce": Method("off", "generalized_cross_entropy", summary="generalized cross-entropy, q 0.7 (comp-sum)"),
    "mae": Method("off", "mean_absolute_error", summary="mean absolute error on probabilities (comp-sum)"),
}


def get_method(name: str) -> Method:
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    return METHODS[name]
