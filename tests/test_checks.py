"""The private leaf helpers: ``check_int``, ``make_rng`` and DEvol's name lists."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import pytorch_devol._checks as checks
from pytorch_devol._checks import DEVOL_ACTIVATIONS, DEVOL_OPTIMIZERS, check_int, make_rng

INT_TYPES = [int, np.int8, np.int64, np.uint16, np.uint64]


@given(minimum=st.integers(-5, 5), offset=st.integers(0, 100),
       kind=st.sampled_from(INT_TYPES))
def test_check_int_accepts_integers_at_or_above_minimum_and_returns_a_plain_int(
        minimum, offset, kind):
    value = minimum + offset
    assume(value >= 0 or kind in (int, np.int8, np.int64))
    got = check_int(kind(value), "x", minimum)
    assert got == value and type(got) is int


@given(minimum=st.integers(-5, 5), below=st.integers(1, 100))
def test_check_int_rejects_values_below_minimum_naming_the_argument(minimum, below):
    with pytest.raises(ValueError, match=rf"^width must be an integer >= {minimum}, got "):
        check_int(minimum - below, "width", minimum)


@pytest.mark.parametrize("bad", [True, False, np.True_, 1.0, 2.5, np.float64(3), "3", [3],
                                 np.array(3), None])
def test_check_int_rejects_non_integers(bad):
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        check_int(bad, "n", 0)


def test_check_int_none_only_when_allowed():
    assert check_int(None, "n", allow_none=True) is None
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1 or None, got 0$"):
        check_int(0, "n", allow_none=True)
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got None$"):
        check_int(None, "n")


@given(seed=st.integers(0, 2**64))
def test_make_rng_same_seed_same_stream(seed):
    a, b = make_rng(seed), make_rng(seed)
    assert a is not b
    assert np.array_equal(a.integers(0, 1 << 30, 16), b.integers(0, 1 << 30, 16))


def test_make_rng_accepts_every_seed_form_numpy_takes():
    stream = make_rng(7).random(4)
    assert np.array_equal(make_rng(np.int64(7)).random(4), stream)
    assert np.array_equal(make_rng(np.random.SeedSequence(7)).random(4), stream)
    assert np.array_equal(make_rng(np.random.PCG64(7)).random(4), stream)
    assert make_rng([1, 2]).random() == np.random.default_rng([1, 2]).random()
    assert isinstance(make_rng(None), np.random.Generator)
    assert not np.array_equal(make_rng(8).random(4), stream)


def test_make_rng_passes_a_generator_through():
    g = np.random.default_rng(3)
    assert make_rng(g) is g
    first = make_rng(g).random()
    assert first == np.random.default_rng(3).random()  # the caller's generator advanced
    assert make_rng(g).random() != first


@pytest.mark.parametrize("bad", [True, False, np.True_, 1.5, np.float32(2.0), 1 + 0j])
def test_make_rng_rejects_bools_and_non_integral_numbers(bad):
    with pytest.raises(TypeError, match="seed must be an int"):
        make_rng(bad)


@pytest.mark.parametrize("bad", [-1, np.int64(-5), -(2**70)])
def test_make_rng_rejects_negative_seeds(bad):
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0"):
        make_rng(bad)


def test_devol_names_have_one_home():
    from pytorch_devol.compat import handler
    from pytorch_devol.schema import Conv2dGene, DenseGene, OptimizerGene, devol, gene_choices

    assert DEVOL_ACTIVATIONS == ("relu", "sigmoid")
    assert DEVOL_OPTIMIZERS == ("adam", "rmsprop", "adagrad", "adadelta")
    assert devol.DEVOL_OPTIMIZERS is handler.DEVOL_OPTIMIZERS is DEVOL_OPTIMIZERS
    assert devol.DEVOL_ACTIVATIONS is handler.DEVOL_ACTIVATIONS is DEVOL_ACTIVATIONS
    choices = {t: gene_choices(t) for t in (Conv2dGene, DenseGene, OptimizerGene)}
    assert choices[Conv2dGene]["activation"] == choices[DenseGene]["activation"] \
        == DEVOL_ACTIVATIONS
    assert choices[OptimizerGene]["optimizer"] == DEVOL_OPTIMIZERS


def test_checks_is_a_leaf():
    tree = ast.parse(Path(checks.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))
    assert imported <= {"__future__", "numbers", "typing", "numpy"}, imported
