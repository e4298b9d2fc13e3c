"""Selection: ranking with NaN, elitism, fitness-proportional, tournament, truncation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol.evolution._selection import (
    best_first,
    elite_indices,
    fitness_proportional,
    fitness_proportional_weights,
    scale_fitness,
    tournament,
    truncation,
)

FAST = settings(max_examples=50, deadline=None)
fitness_lists = st.lists(
    st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")), st.sampled_from([0.0, 1.0])),
    min_size=1, max_size=30)


@FAST
@given(fit=fitness_lists, maximize=st.booleans())
def test_best_first_sorts_and_puts_nan_last(fit, maximize):
    f = np.array(fit)
    order = best_first(f, maximize)
    assert sorted(order.tolist()) == list(range(f.size))
    ranked = f[order]
    n_finite = int((~np.isnan(f)).sum())
    assert np.isnan(ranked[n_finite:]).all() and not np.isnan(ranked[:n_finite]).any()
    finite = ranked[:n_finite]
    assert (np.diff(finite) <= 0).all() if maximize else (np.diff(finite) >= 0).all()


def test_defect_fixed_elites_are_the_best_sorted():
    # DEvol's get_best returned the first n members: here that would be [0, 1, 2].
    f = np.array([0.1, 0.5, 0.2, 0.9, np.nan, 0.7])
    assert elite_indices(f, 3).tolist() == [3, 5, 1]
    assert elite_indices(f, 3, maximize=False).tolist() == [0, 2, 1]
    assert elite_indices(f, 6)[-1] == 4  # NaN last, for either direction
    assert elite_indices(f, 6, maximize=False)[-1] == 4


def test_scale_fitness_matches_devol():
    f = np.array([0.2, 0.9, 0.5, 0.6])
    devol = (f - f.min()) / (f - f.min()).max()
    np.testing.assert_allclose(scale_fitness(f), devol)
    np.testing.assert_allclose(scale_fitness(f, maximize=False), 1 - devol)
    assert np.isnan(scale_fitness(np.array([1.0, np.nan]))[1])
    np.testing.assert_array_equal(scale_fitness(np.array([3.0, 3.0])), [1.0, 1.0])
    big = scale_fitness(np.array([-1.7e308, 0.0, 1.7e308]))
    np.testing.assert_allclose(big, [0.0, 0.5, 1.0])


@FAST
@given(fit=fitness_lists, maximize=st.booleans(), floor=st.sampled_from([0.0, 0.05, 0.5]))
def test_weights_are_a_distribution_and_nan_gets_nothing(fit, maximize, floor):
    f = np.array(fit)
    w = fitness_proportional_weights(f, maximize, floor=floor)
    assert w.shape == f.shape and (w >= 0).all()
    assert abs(w.sum() - 1) < 1e-9
    nan = np.isnan(f)
    if (~nan).any():
        assert (w[nan] == 0).all()
        if floor > 0:
            assert (w[~nan] > 0).all()
        best = best_first(f, maximize)[0]
        assert w[best] == w.max()


def test_defect_fixed_worst_member_can_be_selected():
    f = np.array([0.0, 0.5, 0.9, 1.0])  # worst is member 0: DEvol scored it 0, never chosen
    w = fitness_proportional_weights(f)
    assert w[0] > 0
    assert w[0] == pytest.approx(0.05 * w[3])
    picks = fitness_proportional(np.random.default_rng(0), f, 20000)
    assert (picks == 0).sum() > 0
    # DEvol's behaviour (floor=0): the worst is never drawn.
    picks = fitness_proportional(np.random.default_rng(0), f, 20000, floor=0.0)
    assert (picks == 0).sum() == 0
    w = fitness_proportional_weights(f, maximize=False)  # minimising: member 3 is the worst
    assert w[3] > 0 and w[0] == w.max()


@pytest.mark.parametrize("maximize", [True, False])
def test_defect_fixed_ties_do_not_always_pick_member_zero(maximize):
    f = np.full(8, 0.25)  # DEvol: s_fit = 0, dart = 0, select() returns member 0 every time
    picks = fitness_proportional(np.random.default_rng(0), f, 8000, maximize=maximize)
    counts = np.bincount(picks, minlength=8)
    assert (counts > 800).all()  # roughly uniform: 1000 each
    picks = tournament(np.random.default_rng(1), f, 8000, size=3, maximize=maximize)
    assert (np.bincount(picks, minlength=8) > 800).all()


def test_fitness_proportional_frequencies_follow_weights():
    f = np.array([1.0, 2.0, np.nan, 4.0, 3.0])
    w = fitness_proportional_weights(f, floor=0.1)
    picks = fitness_proportional(np.random.default_rng(5), f, 50000, floor=0.1)
    freq = np.bincount(picks, minlength=5) / picks.size
    np.testing.assert_allclose(freq, w, atol=0.01)
    assert freq[2] == 0


def test_fitness_transform_is_applied_and_checked():
    f = np.array([0.0, 0.5, 1.0])
    w = fitness_proportional_weights(f, transform=lambda s: s**2, floor=0.0)
    np.testing.assert_allclose(w, np.array([0.0, 0.25, 1.0]) / 1.25)
    seen = []
    fitness_proportional_weights(np.array([1.0, np.nan, 3.0]), transform=lambda s: seen.append(
        s.copy()) or s)
    np.testing.assert_allclose(seen[0], [0.0, 1.0])  # finite members only, DEvol-scaled
    with pytest.raises(ValueError, match="finite values >= 0"):
        fitness_proportional_weights(f, transform=lambda s: s - 1)
    with pytest.raises(ValueError, match="shape"):
        fitness_proportional_weights(f, transform=lambda s: s[:2])
    with pytest.raises(ValueError, match="floor"):
        fitness_proportional_weights(f, floor=2.0)


def test_all_nan_population_selects_uniformly():
    f = np.full(4, np.nan)
    np.testing.assert_allclose(fitness_proportional_weights(f), 0.25)
    picks = fitness_proportional(np.random.default_rng(0), f, 4000)
    assert (np.bincount(picks, minlength=4) > 800).all()


@FAST
@given(fit=fitness_lists, maximize=st.booleans(), size=st.integers(1, 5), seed=st.integers(0, 99))
def test_tournament_and_truncation_return_valid_indices(fit, maximize, size, seed):
    f = np.array(fit)
    rng = np.random.default_rng(seed)
    t = tournament(rng, f, 30, size=size, maximize=maximize)
    assert t.shape == (30,) and t.dtype == np.int64
    assert ((t >= 0) & (t < f.size)).all()
    r = truncation(rng, f, 30, fraction=0.5, maximize=maximize)
    top = set(best_first(f, maximize)[: max(1, -(-f.size // 2))].tolist())
    assert set(r.tolist()) <= top


def test_tournament_prefers_better_and_never_picks_nan_over_finite():
    f = np.array([np.nan, 1.0, 2.0, 3.0, np.nan])
    picks = tournament(np.random.default_rng(0), f, 5000, size=5)
    # with 5 draws from 5 members, the best (3) wins most often; NaN only if drawn alone
    counts = np.bincount(picks, minlength=5)
    assert counts.argmax() == 3
    # NaN wins only when every contestant is NaN: (2/5)**5 ~ 1% of tournaments (~51 of 5000)
    assert 20 < counts[0] + counts[4] < 100
    picks_min = tournament(np.random.default_rng(0), f, 5000, size=5, maximize=False)
    assert np.bincount(picks_min, minlength=5).argmax() == 1


def test_selection_rejects_infinite_and_bad_sizes():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="finite"):
        fitness_proportional(rng, np.array([1.0, np.inf]), 3)
    with pytest.raises(ValueError, match="tournament size"):
        tournament(rng, np.array([1.0]), 3, size=0)
    with pytest.raises(ValueError, match="fraction"):
        truncation(rng, np.array([1.0]), 3, fraction=0.0)
    with pytest.raises(ValueError, match="non-empty"):
        best_first(np.array([]))
