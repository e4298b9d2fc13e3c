"""Richer search spaces: gene contracts checked at declaration, training genes that compose,
modern layer genes and the modern preset, on-device augmentation."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from pytorch_devol import GenomeSchema
from pytorch_devol.schema import (
    AugmentGene,
    BatchSizeGene,
    ConvBlockGene,
    DenseGene,
    GlobalPoolGene,
    LabelSmoothingGene,
    LayerGene,
    LearningRateGene,
    OptimizerGene,
    ResidualBlockGene,
    ScheduleGene,
    TrainingOverrides,
    WeightDecayGene,
    allele,
    gene,
)
from pytorch_devol.training import TrainConfig
from pytorch_devol.training.augment import augment_batch
from pytorch_devol.training.schedules import make_schedule

MODERN = GenomeSchema.modern(input_shape=(1, 8, 8), n_classes=10, max_blocks=4,
                             widths=(4, 8), dense_units=(8, 16), augment=True)
MODERN_REGRESSION = GenomeSchema.modern(input_shape=(3, 9, 7), n_classes=2, max_blocks=3,
                                        widths=(4,), task="regression")


# -- contracts at declaration -----------------------------------------------------------------
def test_an_annotated_constant_is_refused_at_declaration():
    with pytest.raises(TypeError, match=r"Bad\.kernel_size is annotated but is not an allele"):
        @gene
        class Bad:
            width: int = allele([4, 8])
            kernel_size: int = 3

            def build(self, in_shape):
                return [], in_shape


def test_a_classvar_constant_is_fine():
    @gene
    class Good:
        width: int = allele([4, 8])
        kernel_size: ClassVar[int] = 3

        def build(self, in_shape):
            return [], in_shape

    assert list(Good.__allele_choices__) == ["width"]


def test_a_gene_without_build_or_training_method_is_refused():
    with pytest.raises(TypeError, match="Nothing defines neither build"):
        @gene
        class Nothing:
            width: int = allele([4, 8])


def test_a_build_that_returns_a_bare_module_is_refused_at_declaration():
    with pytest.raises(TypeError, match=r"Bare\.build\(\) returned a bare module"):
        @gene
        class Bare:
            width: int = allele([4, 8])

            def build(self, in_shape):
                return nn.Identity()


def test_a_build_that_returns_no_shape_is_refused_at_declaration():
    with pytest.raises(TypeError, match=r"NoShape\.build\(\) must return the output shape"):
        @gene
        class NoShape:
            width: int = allele([4, 8])

            def build(self, in_shape):
                return [nn.Identity()], None


def test_a_training_gene_may_override_only_allowed_fields():
    with pytest.raises(TypeError, match=r"Dev\.overrides\(\) sets \['device'\]"):
        @gene
        class Dev:
            x: int = allele([1])

            def overrides(self):
                return {"device": "cpu"}


def test_protocols_describe_the_builtins():
    assert isinstance(ConvBlockGene(), LayerGene)
    assert isinstance(ScheduleGene(), TrainingOverrides)
    assert not isinstance(LearningRateGene(), LayerGene)


# -- training genes compose -------------------------------------------------------------------
TRAINING = [OptimizerGene, LearningRateGene, WeightDecayGene, BatchSizeGene, ScheduleGene,
            LabelSmoothingGene, AugmentGene]
COMPOSED = GenomeSchema([(DenseGene.with_choices(units=[8]), 1)], TRAINING, (1, 8, 8), 10)


def test_two_training_genes_setting_the_same_thing_are_refused():
    with pytest.raises(ValueError, match="BatchSizeGene and Batch2 both set .batch_size."):
        @gene
        class Batch2:
            size: int = allele([16])

            def overrides(self):
                return {"batch_size": self.size}

        GenomeSchema([DenseGene], [BatchSizeGene, Batch2], (1, 8, 8), 10)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_merged_training_settings_come_from_the_choices(seed):
    vector = COMPOSED.random(seed)
    genes = {type(g).__name__: g for g in COMPOSED.decode(vector)}
    overrides = COMPOSED.training_overrides(vector)
    assert overrides == {"batch_size": genes["BatchSizeGene"].batch_size,
                         "schedule": genes["ScheduleGene"].schedule,
                         "label_smoothing": genes["LabelSmoothingGene"].label_smoothing,
                         "augment_shift": genes["AugmentGene"].shift,
                         "augment_flip": genes["AugmentGene"].flip}
    TrainConfig().with_overrides(overrides)  # every merged choice is a valid config
    params = [nn.Parameter(torch.zeros(3))]
    optimizer = COMPOSED.make_optimizer(vector, params)
    name = genes["OptimizerGene"].optimizer
    base_lr = {"adam": 1e-3, "rmsprop": 1e-3, "adagrad": 1e-2, "adadelta": 1.0}[name]
    scale = genes["LearningRateGene"].lr_scale
    assert optimizer.defaults["lr"] == pytest.approx(base_lr * scale)
    assert optimizer.defaults["weight_decay"] == genes["WeightDecayGene"].weight_decay


def test_composed_training_genes_round_trip_through_the_spec():
    again = GenomeSchema.from_spec(COMPOSED.to_spec())
    assert again == COMPOSED and again.column_names == COMPOSED.column_names
    assert [s.name for s in COMPOSED.slots if s.training] == [
        "optimizer", "lr", "weightdecay", "batch", "schedule", "smoothing", "augment"]


# -- modern genes and presets: every genome builds and runs -----------------------------------
@pytest.mark.parametrize("schema", [MODERN, MODERN_REGRESSION], ids=["image", "regression"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_every_modern_genome_builds_runs_and_round_trips(schema, seed):
    vector = schema.random(seed)
    assert np.array_equal(schema.encode(schema.decode(vector)), vector)
    canonical = schema.canonical(vector)
    assert np.array_equal(schema.canonical(canonical), canonical)
    model = schema.build_model(vector).eval()
    with torch.no_grad():
        out = model(torch.rand(2, *schema.input_shape))
    assert out.shape == (2, schema.n_outputs)


def test_the_modern_preset_is_for_images_only():
    with pytest.raises(ValueError, match="image inputs"):
        GenomeSchema.modern(input_shape=(20,), n_classes=3)


def test_block_shapes_and_skips():
    conv = ConvBlockGene(filters=16, kernel=5, downsample="stride", separable=True)
    modules, shape = conv.build((3, 9, 7))
    x = nn.Sequential(*modules)(torch.rand(2, 3, 9, 7))
    assert shape == (16, 5, 4) and tuple(x.shape[1:]) == shape
    same = ResidualBlockGene(filters=16, downsample=False)
    (block,), shape = same.build((16, 6, 6))
    assert isinstance(block.skip, nn.Identity) and shape == (16, 6, 6)
    wider = ResidualBlockGene(filters=32, downsample=True)
    (block,), shape = wider.build((16, 6, 6))
    assert not isinstance(block.skip, nn.Identity) and shape == (32, 3, 3)
    assert block(torch.rand(2, 16, 6, 6)).shape == (2, 32, 3, 3)
    modules, shape = GlobalPoolGene(pool="average").build((16, 3, 3))
    assert shape == (16,) and nn.Sequential(*modules)(torch.rand(2, 16, 3, 3)).shape == (2, 16)


# -- the trainer's per-candidate settings -----------------------------------------------------
def test_augmentation_keeps_shapes_and_is_deterministic_given_the_seed():
    x = torch.rand(16, 3, 8, 8)
    a = augment_batch(x, 2, True, torch.Generator().manual_seed(7))
    b = augment_batch(x, 2, True, torch.Generator().manual_seed(7))
    c = augment_batch(x, 2, True, torch.Generator().manual_seed(8))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(augment_batch(x, 0, False, torch.Generator()), x)
    # A translation moves content, it does not invent it: every value comes from x or padding.
    assert set(a.unique().tolist()) <= set(x.unique().tolist()) | {0.0}


def test_flip_only_mirrors():
    x = torch.arange(4.0).reshape(1, 1, 1, 4).repeat(64, 1, 1, 1)
    y = augment_batch(x, 0, True, torch.Generator().manual_seed(0))
    flipped = (y == x.flip(3)).all(dim=(1, 2, 3))
    kept = (y == x).all(dim=(1, 2, 3))
    assert bool((flipped | kept).all()) and 10 < int(flipped.sum()) < 54


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_schedules_peak_at_the_optimizer_lr_and_decay_to_zero(schedule):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = make_schedule(opt, schedule, 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert max(lrs) == pytest.approx(0.5, rel=0.02) and lrs[-1] < 0.01
    if schedule == "onecycle":
        assert lrs[0] < 0.05 and np.argmax(lrs) == pytest.approx(25, abs=1)
    assert make_schedule(opt, "constant", 100) is None


# -- a real search with the modern preset -----------------------------------------------------
MODERN_CLI = ["--space", "modern", "--max-blocks", "2", "--augment", "--generations", "2",
              "--population", "4", "--epochs", "2", "--limit", "300", "--seed", "3"]


def _records(run):
    import json

    return sorted((r["index"], tuple(r["genome"]), r["cached"], r["fitness"],
                   r["metrics"]["val_loss"]) for r in map(json.loads, open(run / "results.jsonl")))


@pytest.mark.slow
def test_a_modern_search_resumes_after_kill_9_and_exports(tmp_path):
    from .cli_helpers import kill_when_logged, main, search_in_process

    whole = tmp_path / "whole"
    search_in_process(*MODERN_CLI, "--run-dir", str(whole), "--quiet")
    killed = tmp_path / "killed"
    log = killed / "results.jsonl"
    kill_when_logged(["search", *MODERN_CLI, "--run-dir", str(killed), "--quiet"], log, 3)
    assert log.read_text().count("\n") < 8, "finished before the kill"
    search_in_process("--resume", str(killed), "--quiet")
    assert _records(killed) == _records(whole)
    for fmt in ("onnx", "torchscript"):
        code, out, err = main("export", str(killed), "--format", fmt)
        assert code == 0 and "outputs checked" in out, err


# -- DEvol's space is the compatibility contract: pinned ---------------------------------------
DEVOL_CARDINALITIES = [2, 6, 2, 2, 11, 2] * 6 + [2, 7, 2, 2, 11] * 3 + [4]
DEVOL_HEADER = ["Conv0 active", "Conv0 num filters", "Conv0 batch normalization",
                "Conv0 activation", "Conv0 dropout", "Conv0 max pooling", "Dense0 active",
                "Dense0 num nodes", "Dense0 batch normalization", "Dense0 activation",
                "Dense0 dropout", "Optimizer"]


@pytest.mark.slow
def test_devols_space_and_csv_are_unchanged(tmp_path, digits):
    import csv

    from pytorch_devol import Search
    from pytorch_devol.schema import devol_columns

    assert GenomeSchema.devol().cardinalities.tolist() == DEVOL_CARDINALITIES
    schema = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                                max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
    assert devol_columns(schema) == DEVOL_HEADER
    assert [t.__name__ for t in schema.training] == ["OptimizerGene"]
    Search(schema, digits, generations=1, population_size=2, epochs=1, run_dir=tmp_path / "r",
           train_config=TrainConfig(precision="fp32"), verbose=False).run()
    with open(tmp_path / "r" / "results.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:len(DEVOL_HEADER) + 2] == DEVOL_HEADER + ["Val Loss", "Val Accuracy"]


@pytest.mark.slow
def test_a_candidate_with_every_training_gene_trains_deterministically(digits):
    from pytorch_devol.training import Trainer

    schema = GenomeSchema([(ConvBlockGene.with_choices(filters=[8]), 1), (GlobalPoolGene, 1)],
                          TRAINING, (1, 8, 8), 10)
    genes = {s.name: s for s in schema.slots}
    vector = np.zeros(len(schema), dtype=np.int64)
    for name, field, value in [("schedule", "schedule", "onecycle"),
                               ("smoothing", "label_smoothing", 0.1), ("augment", "shift", 2),
                               ("augment", "flip", True), ("batch", "batch_size", 64)]:
        slot = genes[name]
        vector[slot.start + slot.fields.index(field)] = \
            slot.choices[slot.fields.index(field)].index(value)
    trainer = Trainer(digits, TrainConfig(epochs=2, patience=None, precision="fp32"))
    first, again = (trainer.evaluate(schema, vector, seed=5) for _ in range(2))
    assert first.ok and first.epochs == 2, first.reason
    assert first.val_loss == again.val_loss and first.history == again.history
    other = trainer.evaluate(schema, vector, seed=6)
    assert other.history != first.history


# -- DEvol's layers plus training genes (--space devol+training) -------------------------------
DEVOL_TRAINING = GenomeSchema.devol(max_conv_layers=2, max_dense_layers=2, max_filters=32,
                                    max_dense_nodes=128, input_shape=(1, 12, 12), n_classes=10,
                                    training_genes=True)


def test_devol_training_adds_the_training_genes_after_devols_layers():
    devol = GenomeSchema.devol(max_conv_layers=2, max_dense_layers=2, max_filters=32,
                               max_dense_nodes=128, input_shape=(1, 12, 12), n_classes=10)
    assert len(DEVOL_TRAINING) == len(devol) + 4
    assert list(DEVOL_TRAINING.column_names[:len(devol)]) == list(devol.column_names)
    assert list(DEVOL_TRAINING.cardinalities[:len(devol)]) == list(devol.cardinalities)
    assert [s.name for s in DEVOL_TRAINING.slots if s.training] == [
        "optimizer", "lr", "weightdecay", "batch", "schedule"]
    with pytest.raises(TypeError, match="training_genes"):
        GenomeSchema.devol(training_genes="yes")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_every_devol_training_genome_builds_runs_and_sets_its_training(seed):
    vector = DEVOL_TRAINING.random(seed)
    assert np.array_equal(DEVOL_TRAINING.encode(DEVOL_TRAINING.decode(vector)), vector)
    model = DEVOL_TRAINING.build_model(vector).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 12, 12)).shape == (2, 10)
    genes = DEVOL_TRAINING.decode(vector)
    overrides = DEVOL_TRAINING.training_overrides(vector)
    assert overrides["batch_size"] == next(g.batch_size for g in genes
                                           if hasattr(g, "batch_size"))
    assert overrides["schedule"] == next(g.schedule for g in genes if hasattr(g, "schedule"))


def test_the_cli_default_space_is_devol_training():
    from pytorch_devol.cli.parser import build_parser

    assert build_parser().parse_args(["search"]).space == "devol+training"


@pytest.mark.slow
@pytest.mark.parametrize("space", [None, "devol"])
def test_the_cli_searches_devol_training_by_default_and_devols_space_on_request(tmp_path, space):
    import json

    from .cli_helpers import search_in_process

    run = tmp_path / "run"
    search_in_process(*(["--space", space] if space else []), "--generations", "1",
                      "--population", "3", "--epochs", "1", "--max-conv-layers", "1",
                      "--max-dense-layers", "2", "--run-dir", str(run), "--quiet")
    records = [json.loads(line) for line in open(run / "results.jsonl")]
    extra = 5 if space is None else 1            # the training genes, or the optimizer only
    assert len(records) == 3 and all(len(r["genome"]) == 6 + 5 + extra for r in records)
    header = (run / "results.csv").read_text().splitlines()[0].split(",")
    if space is None:
        assert "lr.lr_scale" in header and "batch.batch_size" in header
    else:
        assert header[:12] == DEVOL_HEADER
