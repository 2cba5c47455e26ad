"""The paper's claims judged from numbers: the rule on hand-made cases, and on the paper's own table."""

from __future__ import annotations

import math

import pytest

from emofusion.evaluation.claims import FAILS, HOLDS, NOISE, NOT_TESTED, check_claims, judge, paper_claims
from emofusion.evaluation.paper import PAPER_TABLE1

NAN = math.nan


def s(mean: float, std: float = NAN) -> dict:
    return {"mean": mean, "std": std}


@pytest.mark.parametrize(
    "winner, rivals, expected",
    [
        (s(0.60, 0.01), [s(0.50, 0.02), s(0.55, 0.01)], HOLDS),  # 0.59 > 0.52 and 0.59 > 0.56
        (s(0.60, 0.03), [s(0.50, 0.02), s(0.55, 0.03)], NOISE),  # 0.57 < 0.58: overlaps the second
        (s(0.50, 0.01), [s(0.45, 0.01), s(0.60, 0.02)], FAILS),  # 0.58 > 0.51: a clear loss outweighs a win
        (s(0.50, 0.05), [s(0.52, 0.05)], NOISE),  # below, but the intervals overlap
        (s(0.71), [s(0.715)], FAILS),  # no spread (one seed): means decide
        (s(0.7040), [s(0.6937)], HOLDS),
    ],
)
def test_judge_by_intervals(winner, rivals, expected):
    assert judge(winner, rivals) == expected


def table_as_stats() -> dict:
    """The paper's Table 1 in aggregate() form (fractions, no spread)."""
    return {m: {k: s(row[k] / 100) for k in ("wa", "ua")} for m, row in PAPER_TABLE1.items()}


def test_the_paper_table_judged_by_the_same_rule():
    ua = {v.claim.statement: v.ours for v in check_claims(table_as_stats(), "ua")}
    wa = {v.claim.statement: v.ours for v in check_claims(table_as_stats(), "wa")}
    # UA: 71.25 (M-CBLA-BLR) < 71.50 (M-CBLA-BL): the paper's own table contradicts two of its claims.
    assert ua["L2 regularisation helps: M-CBLA-BLR > M-CBLA-BL"] == FAILS
    assert ua["M-CBLA-BLR is the best model (> the other ten)"] == FAILS
    # WA: 70.40 beats M-CBLA-BL's 69.37 and M-CL-BLR's 70.18.
    assert wa["L2 regularisation helps: M-CBLA-BLR > M-CBLA-BL"] == HOLDS
    assert wa["M-CBLA-BLR is the best model (> the other ten)"] == HOLDS
    for verdicts in (ua, wa):
        assert verdicts["L2 regularisation helps: M-CL-BLR > M-CL-BL"] == HOLDS
        assert verdicts["CBLA is the best speech encoder: S-CBLA > S-DNN, S-CNN, S-CL"] == HOLDS
        assert verdicts["the Bi-LSTM beats the LSTM on text: T-BL > T-LSTM"] == HOLDS
        assert all(v == HOLDS for k, v in verdicts.items() if k.startswith("fusion beats"))
    # The paper column of each verdict is the same rule on the same table.
    assert all(v.paper == v.ours for v in check_claims(table_as_stats(), "ua"))


def test_lines_end_in_the_verdict_and_show_both_sides():
    stats = table_as_stats()
    stats["T-BL"] = {"ua": s(0.40, 0.01), "wa": s(0.41, 0.01)}
    stats["T-LSTM"] = {"ua": s(0.43, 0.01), "wa": s(0.44, 0.01)}
    verdict = next(v for v in check_claims(stats, "ua") if v.claim.winner == "T-BL")
    assert verdict.ours == FAILS and verdict.paper == HOLDS
    assert verdict.line.endswith(": does not hold")
    assert "UA 40.0 ± 1.0 vs 43.0 ± 1.0" in verdict.line and "paper 64.25 vs 63.25 (holds there)" in verdict.line


def test_claims_about_models_not_run_are_not_tested():
    speech_only = {m: v for m, v in table_as_stats().items() if m.startswith("S-")}
    verdicts = {v.claim.statement: v for v in check_claims(speech_only, "ua")}
    assert verdicts["CBLA is the best speech encoder: S-CBLA > S-DNN, S-CNN, S-CL"].ours == HOLDS
    t = verdicts["the Bi-LSTM beats the LSTM on text: T-BL > T-LSTM"]
    assert t.ours == NOT_TESTED and t.line.endswith(f"T-BL, T-LSTM not run here: {NOT_TESTED}")


def test_every_claim_names_real_table1_models():
    for claim in paper_claims():
        assert claim.winner in PAPER_TABLE1 and all(r in PAPER_TABLE1 for r in claim.rivals)
        assert claim.winner not in claim.rivals
