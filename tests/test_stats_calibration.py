"""Calibration (DESIGN §8): false-positive rates on null data stay at alpha, per claim and
family-wise for both wrong "supported" and wrong "refuted"; power is reported.

Every rate is a Monte-Carlo estimate over N_SIM simulated claims, so every bound carries the
Monte-Carlo error: a rate r is "at most alpha" when r <= alpha + 3 * sqrt(alpha (1 - alpha) /
n_sim) (a true rate of alpha exceeds that with probability ~0.1 %). The simulations go through
`decide_rows`, the vectorised code path of `decide` (rows are checked against `decide_paired`
itself below). Seeds are fixed; widen them with UPLAB_TEST_SEED=<int> to re-draw every
simulation (the header line prints the seed).
"""

import os

import numpy as np
import pytest
from scipy import stats as sps

from harness.stats import (
    break_at_boundaries, decide_paired, decide_rows, holm, power, trend, verdict_rule, within_run,
)

SEED = int(os.environ.get("UPLAB_TEST_SEED", "0"))
ALPHA = 0.05
N_SIM = 2000
SHOWN = ("supported", "smaller")  # verdicts that assert an effect in the claimed direction


def mc_bound(rate: float, n_sim: int) -> float:
    """rate + 3 Monte-Carlo standard errors of a proportion estimated from n_sim trials."""
    return rate + 3 * np.sqrt(rate * (1 - rate) / n_sim)


def exact_size(n: int, alpha: float = ALPHA) -> float:
    """Largest attainable P(p < alpha) of the exact sign-flip test with n effects: k / 2^n."""
    return np.ceil(alpha * 2**n - 1) / 2**n


def rng_for(*labels) -> np.random.Generator:
    return np.random.default_rng([SEED, *[hash_label(s) for s in labels]])


def hash_label(label) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(str(label)))


def test_header_and_simulation_count():
    print(f"\nstats calibration: UPLAB_TEST_SEED={SEED}, n_sim={N_SIM}, alpha={ALPHA}")
    # the issue asks for >= 1000 simulations per calibration check
    assert N_SIM >= 1000, f"calibration uses only {N_SIM} simulations"


NULLS = {
    "normal": lambda rng, shape: rng.normal(size=shape),
    "t3": lambda rng, shape: rng.standard_t(3, size=shape),
}


@pytest.mark.parametrize("n", [8, 12])
@pytest.mark.parametrize("null", sorted(NULLS))
@pytest.mark.parametrize("direction", ["greater", "less"])
def test_supported_rate_on_null_effects(null, n, direction):
    data = NULLS[null](rng_for("null", null, n, direction), (N_SIM, n))
    rate = np.mean(np.isin(decide_rows(data, direction=direction, seed=SEED).verdict, SHOWN))
    print(f"null={null} n={n} {direction}: supported rate {rate:.4f} (exact size {exact_size(n):.4f})")
    assert rate <= mc_bound(ALPHA, N_SIM), (
        f"false-positive rate {rate:.4f} over {N_SIM} {null} nulls (n={n}, {direction}) exceeds "
        f"alpha={ALPHA} + 3 MC s.e. = {mc_bound(ALPHA, N_SIM):.4f}")
    # not needlessly conservative either: close to the test's attainable size
    floor = exact_size(n) - 3 * np.sqrt(exact_size(n) * (1 - exact_size(n)) / N_SIM)
    assert rate >= floor, f"rate {rate:.4f} far below the exact size {exact_size(n):.4f} (n={n})"


@pytest.mark.parametrize("n", [8, 12])
def test_paired_null_two_conditions_differing_only_by_seed(n):
    rng = rng_for("paired", n)
    seed_effect = rng.normal(0, 2, size=(N_SIM, n))  # what a seed does to both conditions
    a = seed_effect + rng.standard_t(3, size=(N_SIM, n))
    b = seed_effect + rng.standard_t(3, size=(N_SIM, n))
    rows = decide_rows(a - b, direction="greater", seed=SEED)
    rate = np.mean(np.isin(rows.verdict, SHOWN))
    print(f"paired null n={n}: supported rate {rate:.4f}")
    assert rate <= mc_bound(ALPHA, N_SIM), (
        f"paired false-positive rate {rate:.4f} (n={n}) exceeds {mc_bound(ALPHA, N_SIM):.4f}")
    for i in range(20):  # the public entry point gives the same verdicts
        d = decide_paired(a[i], b[i], direction="greater", seed=SEED)
        assert (d.verdict, d.p) == (rows.verdict[i], rows.p[i])


@pytest.mark.parametrize("n", [8, 12])
def test_refuted_rate_at_the_boundary(n):
    """True mean exactly at sesoi: the claim is not false, so "refuted" (the refutation test,
    H0 mean >= sesoi) must fire at most at alpha (exact sign flips: no slack needed)."""
    sesoi = 0.5
    data = rng_for("boundary", n).normal(sesoi, 1.0, size=(N_SIM, n))
    rows = decide_rows(data, direction="greater", sesoi=sesoi, seed=SEED)
    rate = np.mean(rows.verdict == "refuted")
    print(f"true mean = sesoi, n={n}: refuted rate {rate:.4f} (nominal {ALPHA})")
    assert rate <= mc_bound(ALPHA, N_SIM), (
        f"refuted rate {rate:.4f} at the sesoi boundary (n={n}) exceeds {mc_bound(ALPHA, N_SIM):.4f}")


# Families as at tiny: 21 primaries, 12 seeds, Holm over each test of the family on its own.
FAMILY, N_FAMILIES, FAMILY_N = 21, 1000, 12


def _family_verdicts(means, sesoi, test, rng):
    """Verdicts of N_FAMILIES simulated families of FAMILY claims each (true means `means`,
    unit spread), both tests Holm-adjusted within each family."""
    data = rng.normal(np.broadcast_to(means, (N_FAMILIES, FAMILY))[..., None], 1.0,
                      size=(N_FAMILIES, FAMILY, FAMILY_N))
    rows = decide_rows(data.reshape(-1, FAMILY_N), direction="greater", sesoi=sesoi, seed=SEED, test=test)
    p, q = rows.p.reshape(N_FAMILIES, FAMILY), rows.p_ref.reshape(N_FAMILIES, FAMILY)
    p_adj = np.array([holm(r) for r in p])
    q_adj = np.array([holm(r) for r in q])
    return verdict_rule(p_adj, q_adj, alpha=ALPHA, test=test)


@pytest.mark.parametrize("planted", [0.0, 0.5, 1.0, 2.0])
def test_family_wise_wrong_verdicts_stay_at_alpha(planted):
    """Over many simulated families of 21 claims (n = 12, sesoi 0.4 sd), true means mixing the
    null (0) and a planted effect (planted x sesoi) on half the claims: the family-wise rate of a
    wrong "supported" (an effect asserted where the true mean is <= 0) and of a wrong "refuted"
    (no effect of interest asserted where the true mean is >= sesoi) each stay <= alpha + 3 MC
    s.e. Fails when either test escapes Holm or the rule mixes them up."""
    sesoi = 0.4
    means = np.where(np.arange(FAMILY) % 2 == 0, 0.0, planted * sesoi)
    verdicts = _family_verdicts(means, sesoi, "superiority", rng_for("family", planted))
    wrong_support = (np.isin(verdicts, SHOWN) & (means <= 0)).any(axis=1).mean()
    wrong_refute = ((verdicts == "refuted") & (means >= sesoi)).any(axis=1).mean()
    print(f"planted {planted} x sesoi: family-wise wrong supported {wrong_support:.4f}, "
          f"wrong refuted {wrong_refute:.4f} over {N_FAMILIES} families")
    bound = mc_bound(ALPHA, N_FAMILIES)
    assert wrong_support <= bound, f"family-wise wrong 'supported' {wrong_support:.4f} > {bound:.4f}"
    assert wrong_refute <= bound, f"family-wise wrong 'refuted' {wrong_refute:.4f} > {bound:.4f}"


def test_family_wise_rates_would_fail_without_holm():
    """The check above can fail: deciding each claim unadjusted gives family-wise error rates far
    above alpha on null families."""
    sesoi = 0.4
    rows = decide_rows(rng_for("unadjusted").normal(0.0, 1.0, size=(N_FAMILIES * FAMILY, FAMILY_N)),
                       direction="greater", sesoi=sesoi, seed=SEED)
    wrong = np.isin(rows.verdict, SHOWN).reshape(N_FAMILIES, FAMILY).any(axis=1).mean()
    assert wrong > 3 * ALPHA, wrong


def test_family_wise_equivalence_and_non_inferiority():
    """The same guarantee for the other test kinds: a wrong "supported" (equivalence claimed where
    |mean| >= sesoi; non-inferiority where mean <= -sesoi) and a wrong "refuted" (the reverse)."""
    sesoi = 0.4
    rng = rng_for("family-kinds")
    means = np.where(np.arange(FAMILY) % 2 == 0, sesoi, 0.0)  # on the margin, or inside it
    eq = _family_verdicts(means, sesoi, "equivalence", rng)
    assert ((eq == "supported") & (np.abs(means) >= sesoi)).any(axis=1).mean() <= mc_bound(ALPHA, N_FAMILIES)
    assert ((eq == "refuted") & (np.abs(means) < sesoi)).any(axis=1).mean() <= mc_bound(ALPHA, N_FAMILIES)
    means = np.where(np.arange(FAMILY) % 2 == 0, -sesoi, 0.0)
    ni = _family_verdicts(means, sesoi, "non-inferiority", rng)
    assert ((ni == "supported") & (means <= -sesoi)).any(axis=1).mean() <= mc_bound(ALPHA, N_FAMILIES)
    assert ((ni == "refuted") & (means > -sesoi)).any(axis=1).mean() <= mc_bound(ALPHA, N_FAMILIES)


@pytest.mark.xfail(strict=True, reason=(
    "known limitation: the sign-flip test's H0 is symmetry about 0, not mean 0; a left-skewed "
    "per-run effect with mean 0 (median > 0) is 'supported' far above alpha (~13 % at n = 8)"))
def test_supported_rate_on_skewed_null():
    data = 1.0 - rng_for("skewed").exponential(size=(N_SIM, 8))  # mean 0, long left tail
    rate = np.mean(np.isin(decide_rows(data, direction="greater", seed=SEED).verdict, SHOWN))
    print(f"skewed null n=8: supported rate {rate:.4f}")
    assert rate <= mc_bound(ALPHA, N_SIM)


@pytest.mark.parametrize("d", [1.0, 1.5])
def test_power_at_stated_effect(d):
    n = 8
    got = power(d, n, alpha=ALPHA, n_sim=N_SIM, seed=SEED)
    # reference: one-sided one-sample t-test, the best scale-invariant test for normal data
    crit = sps.t.ppf(1 - ALPHA, n - 1)
    t_power = float(sps.nct.sf(crit, n - 1, d * np.sqrt(n)))
    print(f"power d={d} n={n}: {got.power:.4f} +- {got.se:.4f} (t-test {t_power:.4f})")
    assert got.power > ALPHA, f"power {got.power} at d={d}, n={n} is not above alpha"
    assert t_power - 0.08 <= got.power <= t_power + 3 * got.se, (
        f"power {got.power:.4f} at d={d}, n={n} is not within [-0.08, +3 s.e.] of the "
        f"t-test's {t_power:.4f}")


def test_power_grows_with_effect_and_n():
    p = [power(d, n, n_sim=500, seed=SEED).power for d, n in [(0.5, 8), (1.0, 8), (1.0, 12)]]
    assert p[0] < p[1] < p[2], p


def test_power_direction_less_mirrors_greater():
    less = power(1.0, 8, n_sim=1000, seed=SEED, direction="less")
    greater = power(1.0, 8, n_sim=1000, seed=SEED)
    assert abs(less.power - greater.power) <= 4 * np.hypot(less.se, greater.se), (less, greater)


@pytest.mark.parametrize("kw, message", [
    ({"n": 1}, "n must be an integer >= 2"), ({"n_sim": 0}, "n_sim"),
    ({"effect_size": float("nan")}, "effect_size"), ({"direction": "up"}, "'greater' or 'less'"),
])
def test_power_bad_input(kw, message):
    with pytest.raises(ValueError, match=message):
        power(**{"effect_size": 1.0, "n": 8, **kw})


N_SIM_BLOCKS = 400
N_PERM_BLOCKS = 199


def _blocks_rate(make_p) -> float:
    rng = rng_for("blocks", make_p.__name__)
    return float(np.mean([make_p(rng, i) < ALPHA for i in range(N_SIM_BLOCKS)]))


def _trend_null(rng, i):
    return trend(np.arange(12), rng.normal(size=12), n_perm=N_PERM_BLOCKS, seed=i).p


def _break_null(rng, i):
    profile = np.cumsum(rng.normal(size=24))  # a random walk: smooth-ish, no boundaries
    return break_at_boundaries(profile, [8, 16], n_perm=N_PERM_BLOCKS, seed=i).p


def _within_run_null(rng, i):
    x = rng.standard_t(3, size=20)
    return within_run(x[:6], x[6:], direction="greater", n_perm=N_PERM_BLOCKS, seed=i).p


@pytest.mark.parametrize("make_p", [_trend_null, _break_null, _within_run_null],
                         ids=["trend", "break", "within_run"])
def test_building_block_p_values_are_calibrated(make_p):
    rate = _blocks_rate(make_p)
    print(f"{make_p.__name__}: rate of p < {ALPHA} = {rate:.4f} over {N_SIM_BLOCKS}")
    assert rate <= mc_bound(ALPHA, N_SIM_BLOCKS), (
        f"{make_p.__name__}: p < alpha in {rate:.4f} of {N_SIM_BLOCKS} null runs, above "
        f"{mc_bound(ALPHA, N_SIM_BLOCKS):.4f}")
