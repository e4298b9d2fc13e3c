"""Properties of the genome schema: layout, round trips, validation, canonical form, building."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from pytorch_devol.schema import (
    Conv2dGene,
    DenseGene,
    GenomeSchema,
    InvalidGenomeError,
    OptimizerGene,
    allele,
    devol_columns,
    from_devol,
    gene,
    to_devol,
)

from .genes_for_tests import KernelConvGene

SMALL_DEVOL = GenomeSchema.devol(max_conv_layers=3, max_dense_layers=3, max_filters=16,
                                 max_dense_nodes=32, input_shape=(1, 12, 12), n_classes=10)
DENSE_ONLY = GenomeSchema(layers=[(DenseGene.with_choices(units=[4, 8]), 3)],
                          training=OptimizerGene, input_shape=(1, 6, 6), n_outputs=3)
FLAT = GenomeSchema(layers=[(DenseGene.with_choices(units=[4, 8, 16]), 2)], training=None,
                    input_shape=(7,), n_outputs=2, task="regression")
CUSTOM = GenomeSchema(layers=[(KernelConvGene, 2), (Conv2dGene.with_choices(filters=[4, 8]), 1),
                              (DenseGene.with_choices(units=[8]), 1)],
                      training=OptimizerGene, input_shape=(3, 9, 9), n_outputs=4)
SCHEMAS = {"devol": SMALL_DEVOL, "dense_only": DENSE_ONLY, "flat": FLAT, "custom": CUSTOM}
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def genomes(schema: GenomeSchema):
    return st.tuples(*[st.integers(0, int(c) - 1) for c in schema.cardinalities]).map(
        lambda t: np.array(t, dtype=np.int64))


@st.composite
def schema_and_genome(draw):
    name = draw(st.sampled_from(sorted(SCHEMAS)))
    schema = SCHEMAS[name]
    return schema, draw(genomes(schema))


@FAST
@given(schema_and_genome())
def test_decode_encode_round_trip(sg):
    schema, v = sg
    genes = schema.decode(v)
    assert np.array_equal(schema.encode(genes), v)
    assert schema.decode(schema.encode(genes)) == genes


@FAST
@given(schema_and_genome())
def test_every_valid_genome_builds_and_runs(sg):
    schema, v = sg
    model = schema.build_model(v)
    assert isinstance(model, nn.Sequential)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(3, *schema.input_shape))
    assert out.shape == (3, schema.n_outputs)
    assert torch.isfinite(out).all()
    assert isinstance(model[-1], nn.Linear) and model[-1].out_features == schema.n_outputs


@FAST
@given(schema_and_genome(), st.data())
def test_every_invalid_vector_is_rejected(sg, data):
    schema, v = sg
    i = data.draw(st.integers(0, len(schema) - 1))
    bad = v.copy()
    bad[i] = data.draw(st.one_of(st.integers(-(2**40), -1),
                                 st.integers(int(schema.cardinalities[i]), 2**40)))
    with pytest.raises(InvalidGenomeError, match=schema.column_names[i].replace(".", r"\.")):
        schema.validate(bad)
    with pytest.raises(InvalidGenomeError):
        schema.build_model(bad)
    with pytest.raises(InvalidGenomeError, match="length"):
        schema.decode(v[:-1])
    with pytest.raises(InvalidGenomeError, match="length"):
        schema.validate(np.append(v, 0))


@pytest.mark.parametrize("bad, match", [
    (lambda v: v.astype(float), "integers"),
    (lambda v: v.astype(bool), "integers"),
    (lambda v: v.reshape(1, -1), "1-D"),
    (lambda v: [*v[:-1].tolist(), 0.5], "integer"),
    (lambda v: np.array([*v[:-1].tolist(), None]), "not an integer"),
    (lambda v: [*v[:-1].tolist(), "1"], "integer"),
])
def test_non_integer_vectors_are_rejected(bad, match):
    v = SMALL_DEVOL.random(0)
    with pytest.raises(InvalidGenomeError, match=match):
        SMALL_DEVOL.validate(bad(v))


@FAST
@given(schema_and_genome(), st.data())
def test_canonical_is_idempotent_and_ignores_inactive_slots(sg, data):
    schema, v = sg
    c = schema.canonical(v)
    assert np.array_equal(schema.canonical(c), c)
    # Scramble every position of every inactive slot except `active`: same canonical form.
    other = v.copy()
    for s in schema.slots:
        if not schema.is_active(s, v):
            for j, f in enumerate(s.fields):
                if f != "active":
                    other[s.start + j] = data.draw(st.integers(0, len(s.choices[j]) - 1))
    assert np.array_equal(schema.canonical(other), c)
    assert schema.key(other) == schema.key(v)
    n = sum(p.numel() for p in schema.build_model(c).parameters())
    assert n == sum(p.numel() for p in schema.build_model(v).parameters())


def test_layout_names_and_cardinalities():
    s = GenomeSchema.devol()
    assert len(s) == 6 * 6 + 3 * 5 + 1
    assert s.column_names[:2] == ["conv2d0.active", "conv2d0.filters"]
    assert s.column_names[-1] == "optimizer.optimizer"
    assert s.cardinalities.dtype == np.int64
    assert list(s.cardinalities[:6]) == [2, 6, 2, 2, 11, 2]
    assert list(s.cardinalities[36:41]) == [2, 7, 2, 2, 11]
    assert s.cardinalities[-1] == 4
    with pytest.raises(ValueError):
        s.cardinalities[0] = 5


def test_devol_csv_columns_match_devols_header():
    s = GenomeSchema.devol(max_conv_layers=2, max_dense_layers=2)
    conv = ["active", "num filters", "batch normalization", "activation", "dropout",
            "max pooling"]
    dense = ["active", "num nodes", "batch normalization", "activation", "dropout"]
    expected = ([f"Conv{i} {k}" for i in range(2) for k in conv]
                + [f"Dense0 {k}" for k in dense] + ["Optimizer"])
    assert devol_columns(s) == expected
    assert devol_columns(CUSTOM) is None


def test_devol_value_genome_round_trip_and_pool_choice_two():
    s = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2)
    v = s.encode([Conv2dGene(True, 64, True, "sigmoid", 0.25, True),
                  DenseGene(True, 512, False, "relu", 0.5), OptimizerGene("adagrad")])
    assert to_devol(s, v) == [1, 64, 1, 1, 5, 1, 1, 512, 0, 0, 10, 2]
    assert np.array_equal(from_devol(s, to_devol(s, v)), v)
    pooled_two = from_devol(s, [1, 64, 1, 1, 5, 2, 1, 512, 0, 0, 10, 2])
    assert s.decode(pooled_two)[0].max_pool is False  # DEvol's 2 never pooled
    with pytest.raises(InvalidGenomeError, match="num filters"):
        from_devol(s, [1, 63, 1, 1, 5, 1, 1, 512, 0, 0, 10, 2])
    for i, bad in [(0, 5), (4, 5.9), (5, 3), (2, 2), (11, 2.2), (11, 4)]:
        genome = [1, 64, 1, 1, 5, 1, 1, 512, 0, 0, 10, 2]
        genome[i] = bad
        with pytest.raises(InvalidGenomeError, match=f"DEvol gene {i} "):
            from_devol(s, genome)
    as_floats = from_devol(s, [1.0, 64.0, 1, 1, 5, 1, 1, 512, 0, 0, 10, 2])  # as CSVs hold them
    assert np.array_equal(as_floats, v)


def test_parameter_count_matches_hand_count():
    s = GenomeSchema.devol(max_conv_layers=2, max_dense_layers=2, input_shape=(1, 28, 28))
    v = s.encode([Conv2dGene(True, 32, True, "relu", 0.0, True),
                  Conv2dGene(True, 64, False, "relu", 0.1, True),
                  DenseGene(True, 128, True, "relu", 0.5), OptimizerGene("adam")])
    conv1 = 1 * 32 * 9 + 32 + 2 * 32           # weights, bias, batch-norm affine
    conv2 = 32 * 64 * 9 + 64                    # 28 -> 14 -> 7 after two pools
    dense = 64 * 7 * 7 * 128 + 128 + 2 * 128
    head = 128 * 10 + 10
    model = s.build_model(v)
    assert sum(p.numel() for p in model.parameters()) == conv1 + conv2 + dense + head


def test_pooling_stops_while_the_map_is_small():
    s = GenomeSchema.devol(max_conv_layers=6, max_dense_layers=1, max_filters=8)
    v = s.encode([Conv2dGene(True, 8, False, "relu", 0.0, True)] * 6 + [OptimizerGene("adam")])
    model = s.build_model(v)
    pools = [m for m in model if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3                       # 28 -> 14 -> 7 -> 4, then no more
    assert model[-1].in_features == 8 * 4 * 4


def test_zero_conv_slots_and_all_inactive_give_head_only():
    s = GenomeSchema.devol(max_conv_layers=0, max_dense_layers=3)
    assert s.column_names[0] == "dense0.active"
    v = s.random(1)
    out = s.build_model(v)(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 10)
    off = s.encode([DenseGene(active=False)] * 2 + [OptimizerGene()])
    model = s.build_model(off)
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear]
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_gene_that_cannot_take_its_input_names_gene_slot_and_shape():
    s = GenomeSchema(layers=[(DenseGene, 1), (Conv2dGene, 1)], input_shape=(1, 8, 8),
                     n_outputs=3)
    v = s.encode([DenseGene(), Conv2dGene()])
    with pytest.raises(InvalidGenomeError, match=r"Conv2dGene.*conv2d0.*\(16,\)"):
        s.build_model(v)


def test_bad_schemas_are_refused_early():
    with pytest.raises(ValueError, match="head"):
        GenomeSchema(layers=[(DenseGene, 1)], input_shape=(4,), n_outputs=0)
    with pytest.raises(ValueError, match="classification needs >= 2"):
        GenomeSchema(layers=[(DenseGene, 1)], input_shape=(4,), n_outputs=1)
    with pytest.raises(ValueError, match="task"):
        GenomeSchema(layers=[], input_shape=(4,), n_outputs=2, task="ranking")
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        GenomeSchema(layers=[(DenseGene.with_choices(activation=["relu", "swishy"]), 1)],
                     input_shape=(4,), n_outputs=2)
    with pytest.raises(ValueError, match="unknown optimizer 'adamz'"):
        GenomeSchema(layers=[], training=OptimizerGene.with_choices(optimizer=["adamz"]),
                     input_shape=(4,), n_outputs=2)
    with pytest.raises(ValueError, match="input_shape"):
        GenomeSchema(layers=[], input_shape=(0, 4), n_outputs=2)
    with pytest.raises(TypeError, match="@gene"):
        GenomeSchema(layers=[(int, 1)], input_shape=(4,), n_outputs=2)
    with pytest.raises(ValueError, match="no allele 'kernel'"):
        Conv2dGene.with_choices(kernel=[3, 5])
    with pytest.raises(ValueError, match="devol|max_filters"):
        GenomeSchema.devol(max_filters=0)


def test_gene_values_are_checked_and_declarations_too():
    with pytest.raises(ValueError, match="filters=7"):
        Conv2dGene(filters=7)
    with pytest.raises(TypeError, match="not an allele"):
        @gene
        class Broken:
            width: int = 3
    with pytest.raises(ValueError, match="distinct"):
        allele([1, 1])


def test_with_choices_changes_only_the_named_fields_and_keeps_behaviour():
    narrow = Conv2dGene.with_choices(filters=[4, 12])
    assert narrow(filters=12).build((2, 5, 5))[1] == (12, 5, 5)
    with pytest.raises(ValueError):
        narrow(filters=64)
    assert Conv2dGene(filters=64).filters == 64   # the original is untouched
    twice = narrow.with_choices(dropout=[0.0, 0.5])
    s = GenomeSchema(layers=[(twice, 1)], input_shape=(1, 6, 6), n_outputs=2)
    assert list(s.cardinalities) == [2, 2, 2, 2, 2, 2]


def test_schema_survives_spec_and_pickle_with_derived_and_user_genes():
    for schema in [*SCHEMAS.values(), GenomeSchema.devol()]:
        again = GenomeSchema.from_spec(schema.to_spec())
        assert again == schema
        assert np.array_equal(again.cardinalities, schema.cardinalities)
        unpickled = pickle.loads(pickle.dumps(schema))
        v = schema.random(3)
        assert unpickled.describe(v) == schema.describe(v)


def test_devol_accepts_channels_last_shape_and_fixes_devols_small_maxima():
    s = GenomeSchema.devol(input_shape=(28, 28, 1), max_filters=4, max_dense_nodes=8,
                           max_pooling=False, dropout=False, batch_normalization=False)
    assert s.input_shape == (1, 28, 28)
    assert list(s.cardinalities[:6]) == [2, 1, 1, 2, 1, 1]
    assert s.build_model(s.random(0))(torch.rand(1, 1, 28, 28)).shape == (1, 10)


def test_optimizer_comes_from_the_training_gene_and_defaults_to_adam():
    s = GenomeSchema.devol(max_conv_layers=0, max_dense_layers=1)
    model = nn.Linear(2, 2)
    for i, cls in enumerate([torch.optim.Adam, torch.optim.RMSprop, torch.optim.Adagrad,
                             torch.optim.Adadelta]):
        assert type(s.make_optimizer([i], model.parameters())) is cls
    assert s.training_overrides([0]) == {}
    assert type(FLAT.make_optimizer(FLAT.random(0), model.parameters())) is torch.optim.Adam


def test_random_is_seeded_and_in_bounds():
    s = GenomeSchema.devol()
    a, b = s.random(7, size=50), s.random(np.random.default_rng(7), size=50)
    assert np.array_equal(a, b) and a.shape == (50, len(s)) and a.dtype == np.int64
    assert ((a >= 0) & (a < s.cardinalities)).all()


@pytest.mark.slow
def test_devol_space_for_regression_searches_for_real(tmp_path, digits):
    """DEvol issue #15: GenomeSchema.devol(task="regression"), ``n_classes`` outputs."""
    import csv
    import math

    import attrs

    from pytorch_devol import Search

    kw = dict(max_conv_layers=1, max_dense_layers=2, max_filters=16, max_dense_nodes=32,
              input_shape=(8, 8, 1))
    schema = GenomeSchema.devol(n_classes=1, task="regression", **kw)
    classifier = GenomeSchema.devol(**kw)
    assert schema.task == "regression" and schema.n_outputs == 1
    assert list(schema.cardinalities) == list(classifier.cardinalities)  # DEvol's layout
    assert devol_columns(schema) == devol_columns(classifier)
    with pytest.raises(ValueError, match="task"):
        GenomeSchema.devol(task="ranking", **kw)

    def target(y: torch.Tensor) -> torch.Tensor:  # the digit's value, scaled to [0, 1]
        return (y.float() / 9.0)[:, None]

    data = attrs.evolve(digits, y_train=target(digits.y_train), y_val=target(digits.y_val),
                        y_test=target(digits.y_test), task="regression", n_outputs=1,
                        name="digits-value", spec=None)
    result = Search(schema, data, generations=2, population_size=3, epochs=1, metric="mae",
                    run_dir=tmp_path / "r", verbose=False).run()
    best = result.best_metrics
    assert math.isfinite(best["val_mae"]) and 0.0 <= best["val_mae"] < 0.5
    with torch.no_grad():
        assert result.best_model(data.x_test[:5]).shape == (5, 1)
    with open(tmp_path / "r" / "results.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:len(schema)] == devol_columns(schema)
