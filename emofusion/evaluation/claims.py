"""The orderings the paper asserts, checked against one run's numbers.

A reproduction is only useful if it says plainly where the source's conclusions fail on the data at
hand. The paper (SPEC §5-6) argues five things from its Table 1; each is written here as "model A
beats models B1..Bk", judged separately on UA and on WA:

- every fusion model beats both of its single modalities (its own speech encoder's S- model and T-BL);
- L2 regularisation helps: M-CL-BLR beats M-CL-BL, M-CBLA-BLR beats M-CBLA-BL;
- CBLA is the best speech encoder: S-CBLA beats S-DNN, S-CNN and S-CL;
- T-BL beats T-LSTM;
- M-CBLA-BLR is the best model: it beats the other ten.

Verdicts compare A with each Bi using the spread over seeds (mean ± sample std):

- ``holds``: A's mean is above every Bi's and no interval [mean - std, mean + std] overlaps A's;
- ``does not hold``: some Bi is above A and their intervals do not overlap;
- ``within noise``: neither (intervals overlap somewhere, and no clear loss).

With a single seed there is no spread, so means are compared as they are (and the line says so).
The paper's own Table 1 is judged by the same rule (it has no spread): e.g. on UA its M-CBLA-BLR
(71.25) is below M-CBLA-BL (71.50), so "L2 helps CBLA" does not hold on the paper's UA either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from emofusion.evaluation.paper import PAPER_TABLE1
from emofusion.models.registry import MODEL_SPECS

HOLDS = "holds"
FAILS = "does not hold"
NOISE = "within noise"
NOT_TESTED = "not tested"


@dataclass(frozen=True)
class Claim:
    """"``winner`` beats each of ``rivals``", in the paper's words ``statement``."""

    statement: str
    winner: str
    rivals: tuple[str, ...]


def paper_claims() -> list[Claim]:
    """The paper's orderings over its eleven models, in the order a reader meets them.

    Which single-modality models a fusion model combines, and which model is the L2 twin of which,
    come from the registry's specs (`MODEL_SPECS`), not from the names.
    """
    table = {name: MODEL_SPECS[name] for name in PAPER_TABLE1}
    unimodal = {(spec.speech, spec.text): name for name, spec in table.items() if len(spec.modalities) == 1}
    fusion = {name: spec for name, spec in table.items() if len(spec.modalities) == 2}
    speech_models = tuple(name for name, spec in table.items() if spec.modalities == {"speech"})
    claims = []
    for name, spec in fusion.items():
        speech, text = unimodal[(spec.speech, None)], unimodal[(None, spec.text)]
        claims.append(Claim(f"fusion beats both single modalities: {name} > {speech} and {text}", name, (speech, text)))
    for name, spec in fusion.items():
        if spec.uses_l2:
            twin = next(n for n, s in fusion.items() if (s.speech, s.text, s.uses_l2) == (spec.speech, spec.text, False))
            claims.append(Claim(f"L2 regularisation helps: {name} > {twin}", name, (twin,)))
    rivals = tuple(m for m in speech_models if m != "S-CBLA")
    claims += [
        Claim(f"CBLA is the best speech encoder: S-CBLA > {', '.join(rivals)}", "S-CBLA", rivals),
        Claim("the Bi-LSTM beats the LSTM on text: T-BL > T-LSTM", "T-BL", ("T-LSTM",)),
        Claim(
            "M-CBLA-BLR is the best model (> the other ten)",
            "M-CBLA-BLR",
            tuple(m for m in PAPER_TABLE1 if m != "M-CBLA-BLR"),
        ),
    ]
    return claims


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    metric: str  # "ua" or "wa"
    ours: str  # one of HOLDS, FAILS, NOISE, NOT_TESTED
    paper: str  # the same rule applied to the paper's Table 1 (HOLDS or FAILS)
    line: str  # the report line, ending in the verdict


def judge(winner: Mapping[str, float], rivals: Sequence[Mapping[str, float]]) -> str:
    """HOLDS / FAILS / NOISE for "winner beats every rival"; stats are {"mean", "std"} (std may be NaN)."""
    outcomes = [_compare(winner, rival) for rival in rivals]
    if any(o < 0 for o in outcomes):
        return FAILS
    if all(o > 0 for o in outcomes):
        return HOLDS
    return NOISE


def _compare(a: Mapping[str, float], b: Mapping[str, float]) -> int:
    """+1 clear win, -1 clear loss, 0 overlap. Without spread (NaN std: one seed) means decide."""
    spread_a = 0.0 if math.isnan(a["std"]) else a["std"]
    spread_b = 0.0 if math.isnan(b["std"]) else b["std"]
    if a["mean"] - spread_a > b["mean"] + spread_b:
        return 1
    if b["mean"] - spread_b > a["mean"] + spread_a:
        return -1
    return 0


def check_claims(stats: Mapping[str, Mapping], metric: str) -> list[Verdict]:
    """Judge every claim on ``metric`` ("ua" or "wa") from ``stats``: model -> aggregate() output
    (fractions, as `emofusion.evaluation.metrics.aggregate` returns them)."""
    verdicts = []
    for claim in paper_claims():
        paper = _paper_verdict(claim, metric)
        needed = (claim.winner, *claim.rivals)
        missing = [m for m in needed if m not in stats or math.isnan(stats[m][metric]["mean"])]
        if missing:
            line = f"{claim.statement}: {', '.join(missing)} not run here: {NOT_TESTED}"
            verdicts.append(Verdict(claim, metric, NOT_TESTED, paper, line))
            continue
        ours = judge(stats[claim.winner][metric], [stats[m][metric] for m in claim.rivals])
        single_seed = any(math.isnan(stats[m][metric]["std"]) for m in needed)
        figures = f"{_fmt(stats[claim.winner][metric])} vs " + ", ".join(
            _fmt(stats[m][metric]) for m in claim.rivals
        )
        paper_figures = f"{PAPER_TABLE1[claim.winner][metric]:g} vs " + ", ".join(
            f"{PAPER_TABLE1[m][metric]:g}" for m in claim.rivals
        )
        note = " (one seed: no spread, means compared)" if single_seed else ""
        line = (
            f"{claim.statement}: {metric.upper()} {figures}{note}; "
            f"paper {paper_figures} ({paper} there): {ours}"
        )
        verdicts.append(Verdict(claim, metric, ours, paper, line))
    return verdicts


def _paper_verdict(claim: Claim, metric: str) -> str:
    def stat(model: str) -> dict:
        return {"mean": PAPER_TABLE1[model][metric], "std": math.nan}

    return judge(stat(claim.winner), [stat(m) for m in claim.rivals])


def _fmt(stat: Mapping[str, float]) -> str:
    if math.isnan(stat["std"]):
        return f"{100 * stat['mean']:.1f}"
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"
