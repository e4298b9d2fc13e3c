"""Operators: random genomes, mutation, crossover (bounds, semantics, DEvol defects fixed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol.evolution._variation import (
    mutate,
    mutation_counts,
    random_genomes,
    single_point_crossover,
    uniform_crossover,
)
from tests.evolution_helpers import assert_in_bounds, cardinalities, seeds

FAST = settings(max_examples=40, deadline=None)


@FAST
@given(cards=cardinalities, n=st.integers(0, 30), seed=seeds)
def test_random_genomes_in_bounds_and_seeded(cards, n, seed):
    a = random_genomes(np.random.default_rng(seed), cards, n)
    assert_in_bounds(a, cards, rows=n)
    b = random_genomes(np.random.default_rng(seed), cards, n)
    np.testing.assert_array_equal(a, b)
    ones = np.array(cards) == 1
    assert (a[:, ones] == 0).all()


def test_random_genomes_reach_huge_alleles():
    cards = [2**62, 2**31]
    g = random_genomes(np.random.default_rng(0), cards, 200)
    assert g[:, 0].max() > 2**60  # uniform over the whole range, not truncated to int32
    assert g[:, 1].max() > 2**30


@FAST
@given(cards=cardinalities, n=st.integers(0, 20), seed=seeds, count=st.integers(0, 12),
       force=st.booleans(), distinct=st.booleans())
def test_mutate_count_in_bounds_and_pure(cards, n, seed, count, force, distinct):
    rng = np.random.default_rng(seed)
    pop = random_genomes(rng, cards, n)
    before = pop.copy()
    out = mutate(rng, pop, cards, count=count, force_change=force, distinct=distinct)
    assert_in_bounds(out, cards, rows=n)
    np.testing.assert_array_equal(pop, before)  # input untouched
    changed = (out != pop).sum(axis=1)
    assert (changed <= count).all()
    if force and distinct:
        # exactly min(count, changeable positions) positions change, each to a new value
        changeable = int((np.array(cards) > 1).sum())
        assert (changed == min(count, changeable)).all()


@FAST
@given(cards=cardinalities, n=st.integers(1, 20), seed=seeds,
       rate=st.sampled_from([0.0, 0.3, 1.0]))
def test_mutate_rate(cards, n, seed, rate):
    rng = np.random.default_rng(seed)
    pop = random_genomes(rng, cards, n)
    out = mutate(rng, pop, cards, rate=rate)
    assert_in_bounds(out, cards, rows=n)
    changeable = np.array(cards) > 1
    if rate == 0.0:
        np.testing.assert_array_equal(out, pop)
    if rate == 1.0:
        assert (out[:, changeable] != pop[:, changeable]).all()
    np.testing.assert_array_equal(out[:, ~changeable], pop[:, ~changeable])


def test_mutate_respects_mutable_positions():
    rng = np.random.default_rng(1)
    cards = [5] * 8
    pop = random_genomes(rng, cards, 500)
    out = mutate(rng, pop, cards, count=3, mutable=[2, 5])
    np.testing.assert_array_equal(np.delete(out, [2, 5], axis=1), np.delete(pop, [2, 5], axis=1))
    assert ((out != pop).sum(axis=1) == 2).all()  # count clipped to the 2 mutable positions
    mask = np.zeros(8, dtype=bool)
    mask[0] = True
    out = mutate(rng, pop, cards, rate=1.0, mutable=mask)
    assert (out[:, 0] != pop[:, 0]).all() and (out[:, 1:] == pop[:, 1:]).all()


@pytest.mark.parametrize("count", [1, 2, 5, 17, 25, 30])  # both position-drawing methods
def test_mutate_positions_are_uniform_and_distinct(count):
    rng = np.random.default_rng(count)
    cards = [3] * 30
    pop = np.zeros((20000, 30), dtype=np.int64)
    out = mutate(rng, pop, cards, count=count)
    changed = out != pop
    assert (changed.sum(axis=1) == count).all()
    np.testing.assert_allclose(changed.mean(axis=0), count / 30, atol=0.02)
    # pairs of positions are also uniform (a uniform subset, not just uniform marginals)
    pair = (changed[:, 0] & changed[:, 29]).mean()
    assert abs(pair - count * (count - 1) / (30 * 29)) < 0.02
    # varying counts per row
    counts = rng.integers(0, count + 1, size=20000)
    out = mutate(rng, pop, cards, count=counts)
    np.testing.assert_array_equal((out != pop).sum(axis=1), counts)


def test_mutate_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    pop = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="exactly one"):
        mutate(rng, pop, [2, 2, 2])
    with pytest.raises(ValueError, match="exactly one"):
        mutate(rng, pop, [2, 2, 2], count=1, rate=0.5)
    with pytest.raises(ValueError, match="shape"):
        mutate(rng, pop, [2, 2], count=1)
    with pytest.raises(ValueError, match="rate"):
        mutate(rng, pop, [2, 2, 2], rate=1.5)
    with pytest.raises(ValueError, match="count"):
        mutate(rng, pop, [2, 2, 2], count=-1)
    with pytest.raises(ValueError, match="mutable"):
        mutate(rng, pop, [2, 2, 2], count=1, mutable=[3])


def test_mutation_counts_schedule():
    rng = np.random.default_rng(0)
    early = mutation_counts(rng, 0, 5000)
    assert set(early.tolist()) == {1, 2}  # ours: never 0
    devol = mutation_counts(rng, 0, 5000, minimum=0)
    assert set(devol.tolist()) == {0, 1, 2}  # DEvol's np.random.choice(3)
    assert abs((devol == 0).mean() - 1 / 3) < 0.03
    late = mutation_counts(rng, 40, 5000)  # max(3, 40 // 4) = 10 -> 1..9
    assert late.min() == 1 and late.max() == 9
    assert mutation_counts(rng, 40, 10, base=3, divisor=4, minimum=5).min() >= 5


def test_defect_fixed_mutation_is_never_a_noop_by_default():
    # DEvol: choice(max(3, gen // 4)) mutations, each resampling the allele, so 63% of early
    # calls changed nothing. Ours changes every genome, in every generation.
    rng = np.random.default_rng(3)
    cards = [2, 3, 1, 4, 2, 11, 1, 5]
    for generation in range(0, 60, 7):
        pop = random_genomes(rng, cards, 2000)
        out = mutate(rng, pop, cards, count=mutation_counts(rng, generation, 2000))
        assert ((out != pop).sum(axis=1) >= 1).all()
    # DEvol's behaviour stays available and really does leave many genomes unchanged.
    pop = random_genomes(rng, cards, 2000)
    counts = mutation_counts(rng, 0, 2000, minimum=0)
    out = mutate(rng, pop, cards, count=counts, force_change=False, distinct=False)
    unchanged = (out == pop).all(axis=1).mean()
    assert 0.4 < unchanged < 0.8


@FAST
@given(length=st.integers(2, 30), n=st.integers(1, 50), seed=seeds)
def test_defect_fixed_crossover_child_never_copies_a_parent(length, n, seed):
    rng = np.random.default_rng(seed)
    a = np.zeros((n, length), dtype=np.int64)
    b = np.ones((n, length), dtype=np.int64)
    kids = single_point_crossover(rng, a, b)
    cut = (kids == 0).sum(axis=1)
    assert ((cut >= 1) & (cut <= length - 1)).all()
    # shape a[:cut] + b[cut:]
    expected = (np.arange(length) >= cut[:, None]).astype(np.int64)
    np.testing.assert_array_equal(kids, expected)


def test_crossover_devol_cut_can_copy_and_length_one():
    rng = np.random.default_rng(0)
    a, b = np.zeros((4000, 3), np.int64), np.ones((4000, 3), np.int64)
    kids = single_point_crossover(rng, a, b, allow_copies=True)
    cuts = (kids == 0).sum(axis=1)
    assert set(cuts.tolist()) == {0, 1, 2, 3}  # DEvol's randint(0, len): copies happen
    one = single_point_crossover(rng, a[:, :1], b[:, :1])
    assert set(one[:, 0].tolist()) == {0, 1}  # L == 1: a copy of either parent


@FAST
@given(cards=cardinalities, n=st.integers(0, 20), seed=seeds, p=st.sampled_from([0, 0.5, 1]))
def test_uniform_crossover_takes_each_gene_from_a_parent(cards, n, seed, p):
    rng = np.random.default_rng(seed)
    a, b = random_genomes(rng, cards, n), random_genomes(rng, cards, n)
    kids = uniform_crossover(rng, a, b, probability=p)
    assert_in_bounds(kids, cards, rows=n)
    assert ((kids == a) | (kids == b)).all()
    if p == 1:
        np.testing.assert_array_equal(kids, a)
    if p == 0:
        np.testing.assert_array_equal(kids, b)


def test_crossover_rejects_mismatched_parents():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="shape"):
        single_point_crossover(rng, np.zeros((2, 3), np.int64), np.zeros((3, 3), np.int64))
    with pytest.raises(ValueError, match="shape"):
        uniform_crossover(rng, np.zeros((2, 3), np.int64), np.zeros((2, 4), np.int64))
    with pytest.raises(ValueError, match="integers"):
        single_point_crossover(rng, np.zeros((2, 3)), np.zeros((2, 3)))
