"""What a pairwise comparison decided, in words (issue 28): the level and power, the test of
each row, the family sentence and one verdict per row of `effects.compare_data`'s table
(`verdict`; `_category` reads the side back from a verdict text).

A verdict names the test and the p that decided, at its level, and quotes the Δmean interval;
never "no difference": a test that does not reject bounds nothing, the interval does. Numbers
are formatted by `tables` (`fmt_p`, `fmt_ci`).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from .tables import fmt_ci, fmt_p

DEVICE = "device"  # the normalize value of a device-stratified sensitivity row
ALPHA = 0.05  # the level of every test (Holm-adjusted over the family for primary rows)
POWER = 0.8  # the power of the minimum detectable shift (MDS)
#: The test of a row by its normalization: plain, complexity bins, devices.
TESTS = {"none": "rank test", "complexity": "within-bin permutation rank test",
         DEVICE: "within-device permutation rank test"}


def _ci_text(r: dict) -> str:
    return f"Δmean {fmt_ci(r['mean_diff'], r['mean_lo'], r['mean_hi'])}"


def _excludes_zero(r: dict) -> bool:
    return r["mean_lo"] > 0 or r["mean_hi"] < 0


def verdict(r: dict, m: int) -> tuple[str, str]:
    """(outcome, verdict text) of a row whose role and p-values are set; m = family size.

    Wording rules (issue 28): a primary row says "A better"/"B better" when its test rejects at
    the Holm level of the family, else "not decided"; a sensitivity row says what its own test
    gives at unadjusted α. Each names the test and p that decided and quotes the Δmean 95%
    interval; where the test does not reject but that interval excludes 0 it says so (the
    interval is per row and unadjusted, so it may); where the rank test rejects but the means
    order the other way it says that too. Never "no difference": not rejecting bounds nothing.
    A row with too few models for a test (`thin`, its note) is "not computed", with the note.
    """
    if r["role"] == "unavailable":
        return "not computed", r["verdict"]
    if isinstance(r.get("thin"), str):  # too few models for a test (`thin.note`)
        return "not computed", r["thin"]
    primary = r["role"] == "primary"
    p = r["rank_p_holm"] if primary else r["rank_p"]
    side = "A" if r["rank_prob"] > 0.5 else "B"
    iv = _ci_text(r)
    if p < ALPHA:
        outcome = f"{side} better"
        other = (side == "B" and r["mean_lo"] > 0) or (side == "A" and r["mean_hi"] < 0)
        tail = f"; {iv}" + ("; the means order the other way" if other else "")
    else:
        outcome = "not decided" if primary else "not rejected"
        tail = f"; {iv}" + ("; this unadjusted interval excludes 0" if _excludes_zero(r)
                            else "")
    if primary:
        level = f"Holm p = {fmt_p(p)} in a family of {m}" if m > 1 else f"p = {fmt_p(p)}"
        return outcome, f"{outcome} ({r['test']}, P(A<B) = {r['rank_prob']:.2f}, {level}){tail}"
    said = (f"rejected at unadjusted p = {fmt_p(p)}, {outcome}" if p < ALPHA else
            f"not rejected, unadjusted p = {fmt_p(p)}")
    return outcome, f"sensitivity ({r['test']}): {said}{tail}"


def _category(verdict_text: str) -> str:
    """"A better", "B better" or "none" from a verdict text (primary or sensitivity)."""
    for side in ("A better", "B better"):
        if verdict_text.startswith(side) or re.search(r"rejected at unadjusted p = \S+, "
                                                      + side, verdict_text):
            return side
    return "none"


def family_text(m: int, npairs: int, family: str, primary: str, others: Sequence[str], *,
                devices: bool = True) -> str:
    """The family sentence: which tests, how many, how they decide, what is outside."""
    test = TESTS["none" if primary == "none" else "complexity"]
    what = f"{test}, {'unnormalized' if primary == 'none' else primary + '-normalized'}"
    if family == "pairs" and m > 1:
        head = (f"Family: the primary test ({what}) of each of the {npairs} pairs asked for, "
                f"m = {m}; a verdict needs Holm-adjusted p < {ALPHA} over these {m} (KS p "
                f"adjusted over its own {m}).")
    elif family == "pairs":
        head = (f"Family: the primary test ({what}) of the one pair asked for, m = 1; a "
                f"verdict needs p < {ALPHA}.")
    else:
        head = (f"Family: each pair alone (m = 1): its primary test ({what}) at p < {ALPHA}, "
                f"no adjustment across the {npairs} pairs.")
    rest = [*others, *(["device (where the devices differ)"] if devices else [])]
    return head + (f" Sensitivity analyses, outside the family (unadjusted p): "
                   f"{', '.join(rest)}." if rest else " No sensitivity analyses.")
