"""Sequential comparison of two design spaces: stop training models when the answer is clear
(`dsd decide`, issue 28).

Models of spaces A and B are trained in model-index order, both spaces interleaved. At each
look the comparison is made on the models finished so far; it stops when it is decided, at a
maximum of `max_n` models per space, or (optionally) for futility. Two procedures:

**group** — group-sequential Mann–Whitney test at planned looks (after `look_sizes()` models of
each space). Statistic: z = (U − n_a·n_b/2)/sd(U), U = #{a_i < b_j} + ½·#{a_i = b_j}, with the
tie-corrected permutation variance sd(U)² = n_a·n_b/12·[(N+1) − Σ(t³−t)/(N(N−1))], N = n_a+n_b.
Boundaries: two-sided, symmetric, Lan–DeMets O'Brien–Fleming-type error spending; each side
spends α/2 by `spending(t, α/2)` = 2 − 2Φ(z_{α/4}/√t) (gsDesign's sfLDOF at α/2, so α = 0.05
gives ldbounds' two-sided 5-look values 4.877, 3.357, 2.680, 2.290, 2.031). The boundaries come
from the canonical joint distribution by recursive numerical integration (Armitage, McPherson &
Rowe 1969; Jennison & Turnbull 2000, ch. 19), not by simulation. Information is taken from the
actual sizes: I = n_a·n_b/(n_a+n_b+1), which makes corr(Z_j, Z_k) = √(I_j/I_k) EXACTLY for
nested Mann–Whitney statistics under H0 (Cov(U_j, U_k) = a_j·b_j·(a_k+b_k+1)/12); the fraction
is t = I/I(max_n, max_n), ≈ n/max_n for equal sizes (0.096 instead of 0.1 at n = 10 of 100).
A failed model leaves a hole (NaN) at its index: the look uses the sizes that remain, and the
final planned look spends all the α left (t := 1 for spending, the actual information for the
correlations).
  *Question answered:* is P(A < B) + ½P(A = B) ≠ ½, i.e. does one space's error tend to be lower
  (stochastic ordering)? *Null:* A's and B's errors have one distribution (models of a space
  are independent draws, in index order, of its sampler). Type I error ≤ α rests on the normal
  approximation of the look statistics (their covariance is exact) and on looks that do not
  depend on the data (sizes are planned; failures may move them, not the statistic). It is not
  a test of a mean shift: a rejection says the error distributions differ, with the direction of
  P(A < B); only under a location-shift model does it say which mean is lower.
  *Futility* (`futility=True`, non-binding): at an interim look with t ≥ FUTILITY_FROM, stop as
  "futile" when the conditional power under the current trend (drift θ̂ = z/√t, final boundary
  of the planned design) is below FUTILITY_CP. The efficacy boundaries are computed without it,
  so α holds whether or not a futility stop is obeyed; obeying it lowers power.

**anytime** — an anytime-valid test by betting on sequential ranks. The models enter in the
order a_0, b_0, a_1, b_1, … (failed ones skipped); each new error's rank among all errors so
far, R_t ∈ {1..n_t} (ties broken by an independent uniform draw per model and space, seeded by
the design: a randomized test, exact over that draw; without tied errors the draw plays no
part), gives V_t = (2R_t − n_t − 1)/(n_t − 1) ∈ [−1, 1], and the signal
s_t = −V_t for an A model, +V_t for a B model (positive when A's errors come out lower). Under
H0 the sequential ranks are independent and uniform (the interleaved sequence is exchangeable),
so E[s_t | past ranks] = 0 and for any bet λ ∈ (−1, 1) the wealth Π(1 + λ·s_t) is a test
martingale. The bettor mixes a fixed grid of λ (LAMBDAS, uniform on (0, 1)) in each direction
and averages the two directions with weight ½ each (α split evenly: the wealth
W = ½·W₊ + ½·W₋ is a test martingale), rejecting when W ≥ 1/α. By Ville's inequality,
P(sup_t W_t ≥ 1/α) ≤ α under H0, so the error holds at ANY stopping time and look schedule,
including stopping after every pair or for reasons that peek at the data. The direction is
that of the larger of W₊, W₋. Statistic reported: log W; threshold: log(1/α).
  *Question answered:* as for group (stochastic ordering): a new A model tends to rank lower
  among the errors so far than a B model. *Null:* the interleaved sequence of errors is
  exchangeable (A's and B's models independent draws of one distribution). It needs no normal
  approximation and no planned looks; it pays for that with power (s uses each error's rank
  among the past only).

Pure numpy/scipy: nothing here imports torch or reads a store. The step-wise work is vectorized
over many replays (`replay`), which the simulations and scripts/bench_sequential.py use;
`decide` is the same computation on one sequence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy import optimize, special
from scipy.stats import norm

from ..errors import DsdError

METHODS = ("group", "anytime")
DECISIONS = ("continue", "A better", "B better", "futile", "max n")
CONTINUE, A_BETTER, B_BETTER, FUTILE, MAX_N = range(5)
#: non-binding futility rule (group): conditional power under the current trend below this ...
FUTILITY_CP = 0.10
#: ... at an interim look whose information fraction is at least this
FUTILITY_FROM = 0.5
#: the anytime bettor's fixed mixture of bets, per direction (uniform grid on (0, 1))
LAMBDAS = (np.arange(20) + 0.5) / 20
#: sequences replayed at once by `replay` (its memory is about CHUNK·2·max_n·len(LAMBDAS)·24 B)
CHUNK = 1000


@dataclass(frozen=True)
class SequentialDesign:
    """A sequential comparison fixed before any data: see the module docstring for each method.

    method: "group" (Lan–DeMets O'Brien–Fleming-type spending at planned looks) or "anytime"
    (betting on sequential ranks; valid at any look). alpha: two-sided, per pair. max_n: models
    per space at most. looks: planned looks (group); for anytime, how often `decide` reports.
    futility: non-binding futility stop (group only; rule in the module docstring). seed: the
    anytime test's tie-breaking draws (one uniform per model index and space).
    """

    method: str = "group"
    alpha: float = 0.05
    max_n: int = 100
    looks: int = 10
    futility: bool = False
    seed: int = 0

    def look_sizes(self) -> list[int]:
        """Models per space at each planned look: ⌈k·max_n/looks⌉, k = 1..looks."""
        self.validate()
        return [-(-k * self.max_n // self.looks) for k in range(1, self.looks + 1)]

    def validate(self) -> None:
        """DsdError naming the first bad field, its value and what is allowed."""
        if self.method not in METHODS:
            raise DsdError(f"method {self.method!r} is not one of {', '.join(METHODS)}")
        if not (isinstance(self.alpha, float | int) and 0 < self.alpha < 1):
            raise DsdError(f"alpha {self.alpha!r} must be a number in (0, 1)")
        for name in ("max_n", "looks", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool):
                raise DsdError(f"{name} {v!r} must be an integer")
        if self.max_n < 1:
            raise DsdError(f"max_n {self.max_n} must be at least 1")
        if not 1 <= self.looks <= self.max_n:
            raise DsdError(f"looks {self.looks} must be between 1 and max_n ({self.max_n})")
        if not isinstance(self.futility, bool):
            raise DsdError(f"futility {self.futility!r} must be true or false")
        if self.futility and self.method != "group":
            raise DsdError(f"futility applies to method 'group' only, not {self.method!r}")


class LookResult(NamedTuple):
    look: int  # 1-based
    n_a: int  # models of A used at this look (finished, finite error)
    n_b: int
    statistic: float  # group: Mann–Whitney z; anytime: log of the wealth (e-value)
    threshold: float  # group: the z boundary; anytime: log(1/alpha)
    alpha_spent: float  # cumulative α spent (anytime: alpha, usable at every look)
    p_prob: float  # P(A < B) + ½P(A = B) estimate, U/(n_a·n_b), as dsd compare's rank_prob
    decision: str  # "continue" | "A better" | "B better" | "futile" | "max n"


class Replays(NamedTuple):
    """Many sequences at once (`replay`): one entry per sequence, at its last look replayed
    (the first decided one, else the last that the data reach)."""

    look: np.ndarray  # 1-based; 0 where no look was reached
    decision: np.ndarray  # codes into DECISIONS
    n_a: np.ndarray
    n_b: np.ndarray
    statistic: np.ndarray
    p_prob: np.ndarray


# ---------------------------------------------------------------------------------------------
# error spending and boundaries

def spending(t, alpha):
    """The O'Brien–Fleming-type spending function α(t) = 2 − 2Φ(z_{α/2}/√t) (Lan & DeMets 1983):
    error spent by information fraction t; 0 at t ≤ 0, alpha at t ≥ 1. Float for a scalar t,
    else an array. A two-sided design spends α/2 per side by it (see `boundaries`)."""
    arr = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore"):
        out = np.where(arr <= 0, 0.0,
                       2 * norm.sf(norm.isf(alpha / 2) / np.sqrt(np.clip(arr, 1e-300, 1.0))))
    return float(out) if out.ndim == 0 else out


def boundaries(fractions, alpha) -> np.ndarray:
    """Two-sided symmetric z boundaries c_k at increasing information fractions (the last may be
    below 1), each side spending α/2 by `spending`: P(|Z_j| < c_j for j < k, |Z_k| ≥ c_k) =
    2·[spending(t_k, α/2) − spending(t_{k−1}, α/2)] under the canonical joint distribution
    (corr(Z_j, Z_k) = √(t_j/t_k)). inf where nothing is spent (no new information)."""
    t = np.asarray(fractions, dtype=float)
    if t.ndim != 1 or len(t) == 0 or np.any(t < 0) or np.any(np.diff(t) < 0):
        raise DsdError(f"information fractions {t.tolist()} must be non-decreasing and ≥ 0")
    if not 0 < alpha < 1:
        raise DsdError(f"alpha {alpha!r} must be in (0, 1)")
    cum = 2 * np.asarray(spending(np.minimum(t, 1.0), alpha / 2), dtype=float).reshape(-1)
    return _boundaries(tuple(t.tolist()), tuple(cum.tolist())).copy()


def _simpson(m: int) -> np.ndarray:
    w = np.ones(m)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return w / 3


@lru_cache(maxsize=4096)
def _boundaries(t: tuple, cum: tuple) -> np.ndarray:
    """Boundaries for information fractions t and cumulative two-sided spending cum, by
    recursive integration on the score scale S = Z·√t (independent increments): the density of
    S_k on the continuation region is the previous one convolved with N(0, t_k − t_{k−1}),
    integrated by Simpson's rule on a grid of step ≤ σ/12 (σ the increment's sd)."""
    c = np.full(len(t), np.inf)
    prev_t, prev_cum = 0.0, 0.0
    grid = None  # (points u, Simpson weight × density of S at u) on the last continuation region
    last_b, last_sd = None, None  # that region's half-width on the S scale; its increment sd
    for k, (tk, ck) in enumerate(zip(t, cum)):
        sd = math.sqrt(max(tk - prev_t, 0.0))
        if sd < 1e-6:  # no new information: nothing to spend, the statistic did not move
            c[k] = c[k - 1] if k else np.inf
            continue
        target = ck - prev_cum
        if last_b is None:  # first look with information
            c[k] = norm.isf(target / 2) if target > 0 else np.inf
        else:
            h = min(sd, last_sd) / 12
            m = int(min(4001, 2 * math.ceil(last_b / h) + 1))
            u = np.linspace(-last_b, last_b, m)
            if grid is None:  # S_prev ~ N(0, prev_t)
                dens = norm.pdf(u, scale=math.sqrt(prev_t))
            else:
                pu, pw = grid
                dens = pw @ (norm.pdf((u[None, :] - pu[:, None]) / last_sd) / last_sd)
            wf = _simpson(m) * (u[1] - u[0]) * dens
            grid = (u, wf)
            root = math.sqrt(tk)

            def cross(ck_, u=u, wf=wf, sd=sd, root=root):
                b = ck_ * root
                return float(wf @ (special.ndtr((-b - u) / sd) + special.ndtr((u - b) / sd)))

            if target <= 0:
                c[k] = np.inf
            elif cross(0.0) <= target:
                c[k] = 0.0
            else:
                c[k] = optimize.brentq(lambda x: cross(x) - target, 0.0, 60.0, xtol=1e-10)
        # next grid lives on this look's continuation region (±10 sd when nothing was spent)
        last_b = min(c[k], 10.0) * math.sqrt(tk)
        last_sd = sd
        prev_t, prev_cum = tk, ck
    c.flags.writeable = False
    return c


def information(n_a, n_b):
    """Information of the Mann–Whitney statistic, n_a·n_b/(n_a + n_b + 1) (1/var of U/(n_a n_b)
    up to the factor 12); 0 where a side has no model."""
    n_a, n_b = np.asarray(n_a, dtype=float), np.asarray(n_b, dtype=float)
    return np.where((n_a > 0) & (n_b > 0), n_a * n_b / np.maximum(n_a + n_b + 1, 1), 0.0)


@lru_cache(maxsize=256)
def _planned_final(max_n: int, looks: int, alpha: float) -> float:
    d = SequentialDesign(max_n=max_n, looks=looks, alpha=alpha)
    s = np.array(d.look_sizes())
    t = information(s, s) / information(max_n, max_n)
    return float(boundaries(t, alpha)[-1])


# ---------------------------------------------------------------------------------------------
# the step-wise pass over interleaved sequences

class _Steps(NamedTuple):
    U: np.ndarray  # (R, 2m) cumulative Mann–Whitney count after each step
    ties: np.ndarray  # cumulative Σ(t³ − t) over tie groups of the pooled valid errors
    n_a: np.ndarray
    n_b: np.ndarray
    signal: np.ndarray  # the anytime test's s_t (0 for a failed model or the first one)


def _pass(A: np.ndarray, B: np.ndarray, seed: int) -> _Steps:
    """One pass over a_0, b_0, a_1, b_1, …: Mann–Whitney counts, tie sums and sequential-rank
    signals after every step, vectorized over rows (O(rows·steps²))."""
    R, m = A.shape
    X = np.empty((R, 2 * m))
    X[:, 0::2], X[:, 1::2] = A, B
    X[~np.isfinite(X)] = np.nan
    # model i's draws are the (2i)th and (2i+1)th of the stream: the same however many models
    # there are, so a look's result never changes when later models arrive
    T = np.random.default_rng(seed).random(2 * m)  # a_0, b_0, a_1, b_1, …
    valid = ~np.isnan(X)
    dU, dT, s = np.zeros((R, 2 * m)), np.zeros((R, 2 * m)), np.zeros((R, 2 * m))
    count = np.cumsum(valid, axis=1)
    for k in range(2 * m):
        x = X[:, k:k + 1]
        past = X[:, :k]
        lt, eq = past < x, past == x  # NaN compares False: failed models drop out
        is_a = k % 2 == 0
        other = slice(1, k, 2) if is_a else slice(0, k, 2)
        n_eq_other = eq[:, other].sum(1)
        if is_a:  # B's above this a, ½ for ties
            dU[:, k] = (past[:, other] > x).sum(1) + 0.5 * n_eq_other
        else:  # A's below this b
            dU[:, k] = lt[:, other].sum(1) + 0.5 * n_eq_other
        e = eq.sum(1)
        dT[:, k] = 3.0 * e * (e + 1)  # a tie group of size e grows to e + 1
        below = lt.sum(1) + (eq & (T[:k] < T[k])).sum(1)
        n = count[:, k]
        v = np.where(n > 1, (2 * (below + 1) - n - 1) / np.maximum(n - 1, 1), 0.0)
        s[:, k] = np.where(valid[:, k], -v if is_a else v, 0.0)
    dU[~valid], dT[~valid] = 0.0, 0.0
    side_a = (np.arange(2 * m) % 2 == 0)[None, :]
    na, nb = np.cumsum(valid & side_a, axis=1), np.cumsum(valid & ~side_a, axis=1)
    return _Steps(np.cumsum(dU, 1), np.cumsum(dT, 1), na, nb, s)


def _z(U, ties, na, nb):
    """Standardized Mann–Whitney statistic (positive: A's errors lower); 0 without variance."""
    N = na + nb
    var = na * nb / 12.0 * ((N + 1) - ties / np.maximum(N * (N - 1), 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (U - na * nb / 2.0) / np.sqrt(var)
    return np.where((var > 1e-12) & (na > 0) & (nb > 0), z, 0.0)


def _log_wealth(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log W, log W₊ − log W₋) after each step: W = ½·mean_λ Π(1 + λs) + ½·mean_λ Π(1 − λs)."""
    lam = LAMBDAS[None, None, :]
    up = np.cumsum(np.log1p(lam * signal[:, :, None]), axis=1)
    down = np.cumsum(np.log1p(-lam * signal[:, :, None]), axis=1)
    lup = special.logsumexp(up, axis=2) - math.log(len(LAMBDAS))
    ldown = special.logsumexp(down, axis=2) - math.log(len(LAMBDAS))
    return np.logaddexp(lup, ldown) - math.log(2), lup - ldown


# ---------------------------------------------------------------------------------------------
# looks and decisions

class _Looks(NamedTuple):
    n_a: np.ndarray  # (R, K)
    n_b: np.ndarray
    statistic: np.ndarray
    threshold: np.ndarray
    alpha_spent: np.ndarray
    p_prob: np.ndarray
    decision: np.ndarray


def _looks(A: np.ndarray, B: np.ndarray, design: SequentialDesign) -> _Looks:
    """Every look that columns of A and B reach, for all rows (no stopping yet)."""
    sizes = [n for n in design.look_sizes() if n <= A.shape[1]]
    K = len(sizes)
    R = A.shape[0]
    if K == 0:
        empty = np.zeros((R, 0))
        return _Looks(*(empty,) * 6, np.zeros((R, 0), int))
    A, B = A[:, :sizes[-1]], B[:, :sizes[-1]]
    steps = _pass(A, B, design.seed)
    at = np.array(sizes) * 2 - 1  # index of the step after b_{n−1}
    na, nb = steps.n_a[:, at].astype(float), steps.n_b[:, at].astype(float)
    U = steps.U[:, at]
    with np.errstate(invalid="ignore", divide="ignore"):
        p_prob = np.where(na * nb > 0, U / (na * nb), np.nan)
    final = np.array(sizes) == design.max_n  # the last planned look
    decision = np.full((R, K), CONTINUE)
    if design.method == "group":
        z = _z(U, steps.ties[:, at], na, nb)
        t = information(na, nb) / information(design.max_n, design.max_n)
        cum = 2 * np.asarray(spending(t, design.alpha / 2)).reshape(R, K)
        cum[:, final] = design.alpha  # the final look spends what is left
        thr = np.empty((R, K))
        keys = np.concatenate([np.round(t, 12), cum], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        for i, key in enumerate(uniq):
            thr[inv.ravel() == i] = _boundaries(tuple(key[:K]), tuple(key[K:]))
        stat, spent = z, cum
        hit = np.abs(z) >= thr
        decision[hit] = np.where(z[hit] > 0, A_BETTER, B_BETTER)
        if design.futility:
            cfin = _planned_final(design.max_n, design.looks, float(design.alpha))
            tt = np.clip(t, 1e-12, 1 - 1e-12)
            cp = norm.cdf((np.abs(z) * np.sqrt(tt) + np.abs(z) / np.sqrt(tt) * (1 - tt) - cfin)
                          / np.sqrt(1 - tt))
            fut = (~hit) & (~final[None, :]) & (t >= FUTILITY_FROM) & (cp < FUTILITY_CP)
            decision[fut] = FUTILE
    else:
        logw, lean = _log_wealth(steps.signal)
        stat = logw[:, at]
        thr = np.full((R, K), math.log(1 / design.alpha))
        spent = np.full((R, K), float(design.alpha))
        hit = stat >= thr
        decision[hit] = np.where(lean[:, at][hit] > 0, A_BETTER, B_BETTER)
    decision[(decision == CONTINUE) & final[None, :]] = MAX_N
    return _Looks(na, nb, stat, thr, spent, p_prob, decision)


def _as_rows(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise DsdError(f"{name}: errors must be numbers (NaN for a failed model)") from None
    return arr


def replay(A, B, design: SequentialDesign) -> Replays:
    """`decide` for many sequences at once: A, B of shape (sequences, models) in model-index
    order (NaN = failed model). Each sequence stops at its first decided look; where none is
    decided, the entry is its last reached look (decision "continue" or "max n")."""
    design.validate()
    A, B = _as_rows(A, "A"), _as_rows(B, "B")
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise DsdError(f"A and B must be 2-D with one row per sequence, got shapes {A.shape} "
                       f"and {B.shape}")
    m = min(A.shape[1], B.shape[1], design.max_n)
    parts = [_looks(A[i:i + CHUNK, :m], B[i:i + CHUNK, :m], design)
             for i in range(0, max(len(A), 1), CHUNK)]  # bounded memory: (CHUNK, 2m, bets)
    lk = _Looks(*(np.concatenate(f) for f in zip(*parts)))
    R, K = lk.decision.shape
    if K == 0:
        z = np.zeros(R, int)
        nan = np.full(R, np.nan)
        return Replays(z, z, z, z, nan, nan)
    stopped = lk.decision != CONTINUE
    idx = np.where(stopped.any(1), stopped.argmax(1), K - 1)
    r = np.arange(R)
    return Replays(idx + 1, lk.decision[r, idx], lk.n_a[r, idx].astype(int),
                   lk.n_b[r, idx].astype(int), lk.statistic[r, idx], lk.p_prob[r, idx])


def decide(a, b, design: SequentialDesign) -> list[LookResult]:
    """Replay the looks that errors `a` and `b` reach and stop at the first decided one.

    a, b: errors of space A's and B's models IN MODEL-INDEX ORDER (a[i] = error of model i;
    NaN or inf for a model that failed: its slot counts toward the look, its error does not).
    Look k needs `design.look_sizes()[k-1]` models of each side (group: the test at that look;
    anytime: the wealth after that many pairs, updated pair by pair). Models past max_n are
    ignored. The last row's decision is the current state: "continue" when undecided and the
    data for the next look are missing, "max n" when max_n is reached undecided. [] when no
    look is reached yet. "A better" means A's errors are lower (Δ = B − A > 0, as dsd compare).
    """
    design.validate()
    a, b = _as_rows(a, "a"), _as_rows(b, "b")
    if a.ndim != 1 or b.ndim != 1:
        raise DsdError(f"a and b must be 1-D lists of errors, got shapes {a.shape} and {b.shape}")
    m = min(len(a), len(b), design.max_n)
    lk = _looks(a[None, :m], b[None, :m], design)
    rows = []
    for k in range(lk.decision.shape[1]):
        rows.append(LookResult(k + 1, int(lk.n_a[0, k]), int(lk.n_b[0, k]),
                               float(lk.statistic[0, k]), float(lk.threshold[0, k]),
                               float(lk.alpha_spent[0, k]), float(lk.p_prob[0, k]),
                               DECISIONS[lk.decision[0, k]]))
        if lk.decision[0, k] != CONTINUE:
            break
    return rows
