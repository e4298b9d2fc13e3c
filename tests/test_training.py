"""Training one candidate: real tiny trainings, failures that never escape, determinism."""

from __future__ import annotations

import gc
import json
import math
import weakref

import numpy as np
import pytest
import torch
from torch import nn

from pytorch_devol.schema import GenomeSchema, OptimizerGene
from pytorch_devol.training import (
    EvalResult,
    TrainConfig,
    Trainer,
    as_splits,
    load_dataset,
    train_and_evaluate,
)

FAST = TrainConfig(epochs=5, batch_size=128, device="cpu")


def digits_schema() -> GenomeSchema:
    return GenomeSchema.devol(max_conv_layers=2, max_dense_layers=2, max_filters=32,
                              max_dense_nodes=64, input_shape=(1, 8, 8))


def good_genome(schema: GenomeSchema, optimizer: str = "adam") -> np.ndarray:
    """conv16-bn-relu, conv32-bn-relu-pool, dense64-relu: a sensible small CNN."""
    conv, dense, opt = (schema.slots[0].gene_type, schema.slots[-2].gene_type,
                        schema.slots[-1].gene_type)
    common = {"active": True, "batch_norm": True, "activation": "relu", "dropout": 0.0}
    return schema.encode([conv(filters=16, max_pool=False, **common),
                          conv(filters=32, max_pool=True, **common),
                          dense(units=64, **{**common, "batch_norm": False}),
                          opt(optimizer=optimizer)])


class Wrapped:
    """A schema that delegates to a real one but lets a test change one behaviour."""

    def __init__(self, schema, build=None, optimizer=None, overrides=None):
        self._schema, self._build, self._opt, self._over = schema, build, optimizer, overrides

    def __getattr__(self, name):
        return getattr(self._schema, name)

    def build_model(self, genome):
        model = self._schema.build_model(genome)
        return self._build(model) if self._build else model

    def make_optimizer(self, genome, params, device=None):
        if self._opt:
            return self._opt(params)
        return self._schema.make_optimizer(genome, params, device=device)

    def training_overrides(self, genome):
        return dict(self._over) if self._over is not None else {}


class Poison(nn.Module):
    """Multiplies by NaN (forced NaN loss) or raises a given exception in forward."""

    def __init__(self, exc: BaseException | None = None):
        super().__init__()
        self.exc = exc

    def forward(self, x):
        if self.exc is not None:
            raise self.exc
        return x * float("nan")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tiny models run fastest on one thread, and on a shared, busy machine two OpenMP
    threads waiting on each other make them 5-10x slower. Restored after the module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def schema():
    return digits_schema()


@pytest.fixture(scope="module")
def trainer(digits_splits):
    return Trainer(digits_splits, FAST)


# -- real training ------------------------------------------------------------------------------
def test_digits_trains_to_high_validation_accuracy(trainer, schema):
    result = trainer.evaluate(schema, good_genome(schema))
    assert result.status == "ok", result.reason
    assert result.val_accuracy > 0.9 and result.test_accuracy > 0.9
    assert result.val_loss < 0.5 and math.isfinite(result.test_loss)
    assert 1 <= result.best_epoch <= result.epochs <= 5
    assert result.params == sum(p.numel() for p in schema.build_model(good_genome(schema))
                                .parameters())
    assert len(result.history["val_loss"]) == result.epochs
    assert result.val_loss == pytest.approx(min(result.history["val_loss"]))
    assert result.train_seconds > 0 and result.total_seconds >= result.train_seconds
    assert result.fitness("accuracy") == result.val_accuracy
    assert result.fitness("loss") == result.val_loss


def test_mnist_from_disk_trains(mnist_root):
    data = load_dataset("mnist", root=mnist_root, limit=(1500, 500))
    schema = GenomeSchema.devol(max_conv_layers=2, max_dense_layers=2, max_filters=32,
                                max_dense_nodes=64)
    result = train_and_evaluate(schema, good_genome(schema), data,
                                TrainConfig(epochs=2, batch_size=64, device="cpu"))
    assert result.status == "ok", result.reason
    assert result.val_accuracy > 0.85 and result.test_accuracy > 0.85


def test_kept_weights_are_the_reported_best(digits_splits, schema):
    """keep_weights returns the restored best-validation weights: they reproduce val_loss."""
    config = TrainConfig(epochs=6, batch_size=64, patience=None, precision="fp32",
                         device="cpu")
    genome = good_genome(schema, optimizer="rmsprop")
    result = Trainer(digits_splits, config).evaluate(schema, genome, keep_weights=True)
    assert result.status == "ok" and result.state_dict is not None
    assert result.best_epoch < result.epochs == 6  # the restore really happened
    assert all(t.device.type == "cpu" for t in result.state_dict.values())
    model = schema.build_model(genome)
    model.load_state_dict(result.state_dict)
    model.eval()
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(digits_splits.x_val), digits_splits.y_val).item()
    assert loss == pytest.approx(result.val_loss, rel=1e-4)
    assert result.val_loss == pytest.approx(min(result.history["val_loss"]))
    assert "state_dict" not in result.to_dict()


def test_early_stopping_on_validation_loss(digits_splits, schema):
    # lr 0: the validation loss never improves after epoch 1, so patience 1 stops at epoch 2.
    frozen = Wrapped(schema, optimizer=lambda params: torch.optim.SGD(params, lr=0.0))
    result = Trainer(digits_splits, TrainConfig(epochs=5, device="cpu")).evaluate(
        frozen, good_genome(schema))
    assert result.status == "ok"
    assert (result.epochs, result.best_epoch, result.stop_reason) == (2, 1, "early_stopping")
    patient = Trainer(digits_splits, TrainConfig(epochs=5, patience=3, device="cpu")).evaluate(
        frozen, good_genome(schema))
    assert (patient.epochs, patient.best_epoch) == (4, 1)


def test_time_cap_stops_training_but_still_scores(trainer, digits_splits, schema):
    capped = Trainer(digits_splits, TrainConfig(epochs=50, max_seconds=1e-6, device="cpu"))
    result = capped.evaluate(schema, good_genome(schema))
    assert result.status == "ok" and result.stop_reason == "max_seconds"
    assert result.epochs == 1 and math.isfinite(result.val_accuracy)


def test_training_overrides_are_applied(digits_splits, schema):
    result = Trainer(digits_splits, TrainConfig(epochs=5, patience=None, device="cpu")).evaluate(
        Wrapped(schema, overrides={"epochs": 2}), good_genome(schema))
    assert result.status == "ok" and result.epochs == 2
    bad = Trainer(digits_splits, FAST).evaluate(Wrapped(schema, overrides={"lr": 1.0}),
                                         good_genome(schema))
    assert bad.status == "failed" and "only, not ['lr']" in bad.reason
    fixed = Trainer(digits_splits, FAST).evaluate(Wrapped(schema, overrides={"device": "cuda"}),
                                           good_genome(schema))
    assert fixed.status == "failed" and "only, not ['device']" in fixed.reason


# -- regression -------------------------------------------------------------------------------
def test_regression_end_to_end():
    from pytorch_devol.schema import DenseGene

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 6)).astype(np.float32)
    y = x @ rng.normal(size=6) + 0.5 * np.sin(3 * x[:, 0]) + 0.05 * rng.normal(size=600)
    data = as_splits(((x[:500], y[:500]), (x[500:], y[500:])))
    assert data.task == "regression"
    dense = DenseGene.with_choices(units=[64], activation=["relu"], dropout=[0.0],
                                   batch_norm=[False])
    schema = GenomeSchema(layers=[(dense, 2)], training=OptimizerGene, input_shape=(6,),
                          n_outputs=1, task="regression")
    genome = schema.encode([dense(active=True, units=64, batch_norm=False, activation="relu",
                                  dropout=0.0)] * 2 + [OptimizerGene(optimizer="adam")])
    result = train_and_evaluate(schema, genome, data,
                                TrainConfig(epochs=30, batch_size=32, patience=3, device="cpu"))
    assert result.status == "ok", result.reason
    variance = float(data.y_val.var())
    assert result.val_loss < 0.1 * variance  # far better than predicting the mean
    assert math.isfinite(result.val_mae) and math.isfinite(result.test_mae)
    assert math.isnan(result.val_accuracy)
    assert result.fitness("loss") == result.val_loss
    assert result.fitness("mae") == result.val_mae
    with pytest.raises(ValueError, match="undefined for regression"):
        result.fitness("accuracy")


# -- failures never escape ----------------------------------------------------------------------
def test_nan_loss_fails_and_the_next_candidate_trains(trainer, schema):
    poisoned = Wrapped(schema, build=lambda m: nn.Sequential(m, Poison()))
    result = trainer.evaluate(poisoned, good_genome(schema))
    assert result.status == "failed"
    assert result.reason.startswith("NonFiniteLossError: training loss is nan in epoch 1")
    assert math.isnan(result.fitness("accuracy")) and math.isnan(result.fitness("loss"))
    assert result.epochs == 1 and result.params > 0
    assert trainer.evaluate(schema, good_genome(schema)).val_accuracy > 0.9


def test_simulated_out_of_memory_fails_cleanly(trainer, schema, monkeypatch):
    built = []

    def boom(model):
        built.append(weakref.ref(model))
        return nn.Sequential(model, Poison(torch.cuda.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 20.00 GiB")))

    cleaned = []
    monkeypatch.setattr(gc, "collect", lambda *a: cleaned.append(1) or 0)
    result = trainer.evaluate(Wrapped(schema, build=boom), good_genome(schema))
    monkeypatch.undo()
    assert result.status == "failed"
    assert result.reason == "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB"
    assert cleaned, "the failure path must collect garbage"
    gc.collect()
    assert built[0]() is None, "the failed model must not be kept alive (traceback frames)"
    assert trainer.evaluate(schema, good_genome(schema)).status == "ok"


def test_build_errors_and_bad_genomes_fail_without_raising(trainer, schema):
    short = trainer.evaluate(schema, good_genome(schema)[:-1])
    assert short.status == "failed" and short.reason.startswith("InvalidGenomeError")
    out_of_range = good_genome(schema)
    out_of_range[0] = 99
    assert trainer.evaluate(schema, out_of_range).status == "failed"
    wrong_head = Wrapped(schema, build=lambda m: nn.Sequential(m, nn.Linear(10, 3)))
    result = trainer.evaluate(wrong_head, good_genome(schema))
    assert result.status == "failed" and "model outputs shape" in result.reason


def test_keyboard_interrupt_propagates_and_rng_is_restored(trainer, schema):
    state = torch.get_rng_state()
    with pytest.raises(KeyboardInterrupt):
        trainer.evaluate(Wrapped(schema, build=lambda m: nn.Sequential(
            m, Poison(KeyboardInterrupt()))), good_genome(schema))
    assert torch.equal(torch.get_rng_state(), state)


def test_incompatible_schema_is_a_clear_error(trainer):
    mnist_schema = GenomeSchema.devol()
    with pytest.raises(ValueError, match=r"\(1, 8, 8\).*\(1, 28, 28\)"):
        trainer.evaluate(mnist_schema, mnist_schema.random(0))


# -- determinism ---------------------------------------------------------------------------------
def test_same_seed_same_result_on_cpu(digits_splits, schema):
    genome = good_genome(schema)
    genome[4] = 4  # dropout 0.2 in conv0: dropout masks must be seeded too
    config = TrainConfig(epochs=3, batch_size=128, patience=None, device="cpu")
    state = torch.get_rng_state()
    a = Trainer(digits_splits, config).evaluate(schema, genome, keep_weights=True)
    other = Trainer(digits_splits, config)
    other.evaluate(schema, good_genome(schema, optimizer="rmsprop"))  # must not disturb b
    b = other.evaluate(schema, genome, keep_weights=True)
    assert torch.equal(torch.get_rng_state(), state), "evaluate must not touch the global RNG"
    assert a.status == b.status == "ok"
    for field in ("val_loss", "val_accuracy", "test_loss", "test_accuracy", "epochs"):
        assert getattr(a, field) == getattr(b, field), field
    assert a.history == b.history
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    c = other.evaluate(schema, genome, seed=1, keep_weights=True)
    assert not all(torch.equal(a.state_dict[k], c.state_dict[k]) for k in a.state_dict)


# -- config and result ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, pattern", [
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"patience": 0}, "patience must be an integer >= 1 or None"),
    ({"device": "gpu9"}, "device must be 'auto' or a torch device"),
    ({"precision": "fp16"}, "precision must be one of"),
    ({"channels_last": "yes"}, "channels_last"),
    ({"max_seconds": 0}, "max_seconds"),
    ({"seed": -1}, "seed"),
    ({"eval_batch_size": 0}, "eval_batch_size"),
])
def test_train_config_rejects_bad_values(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        TrainConfig(**kwargs)


def test_train_config_resolution():
    cpu = TrainConfig(device="cpu")
    assert cpu.resolve_device() == torch.device("cpu")
    assert TrainConfig(precision="fp32").use_bf16(torch.device("cpu")) is False
    assert TrainConfig(precision="bf16").use_bf16(torch.device("cpu")) is True
    assert TrainConfig(precision="fp32").use_channels_last(torch.device("cpu")) is False
    assert TrainConfig(precision="bf16").use_channels_last(torch.device("cpu")) is True
    assert TrainConfig(channels_last=False).use_channels_last(torch.device("cuda")) is False
    assert cpu.use_channels_last(torch.device("cuda")) is True
    assert cpu.with_overrides({"batch_size": 64}).batch_size == 64
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            TrainConfig(device="cuda").resolve_device()


def test_eval_result_json_round_trip_is_nan_safe():
    ok = EvalResult(status="ok", val_loss=0.25, val_accuracy=0.9, test_loss=0.3,
                    test_accuracy=0.88, epochs=3, best_epoch=2, params=10,
                    history={"val_loss": [0.3, 0.25, float("nan")]})
    failed = EvalResult.failed("OutOfMemoryError: CUDA out of memory", epochs=1)
    for r in (ok, failed):
        text = json.dumps(r.to_dict(), allow_nan=False)
        back = EvalResult.from_dict(json.loads(text))
        assert back == r
    assert EvalResult.from_dict({**ok.to_dict(), "added_later": 1}) == ok
    assert math.isnan(failed.fitness("loss"))
    with pytest.raises(ValueError, match="metric must be one of"):
        ok.fitness("f1")


# -- CUDA ----------------------------------------------------------------------------------------
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
@pytest.mark.cuda
def test_cuda_fast_path_trains_and_frees_memory(digits_splits, schema):
    trainer = Trainer(digits_splits, TrainConfig(epochs=5, device="cuda"))
    assert trainer.data.x_train.is_cuda and trainer.bf16 and trainer.channels_last
    assert torch.backends.cudnn.benchmark
    result = trainer.evaluate(schema, good_genome(schema))
    assert result.status == "ok" and result.val_accuracy > 0.9
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    huge = Wrapped(schema, build=lambda m: nn.Sequential(m, nn.Linear(10, 10), Poison(
        torch.cuda.OutOfMemoryError("simulated"))))
    failed = trainer.evaluate(huge, good_genome(schema))
    assert failed.status == "failed" and failed.reason.startswith("OutOfMemoryError")
    assert torch.cuda.memory_allocated() == baseline
    assert trainer.evaluate(schema, good_genome(schema)).status == "ok"


@needs_cuda
@pytest.mark.cuda
def test_cuda_same_seed_same_metrics(digits_splits, schema, monkeypatch):
    # cuDNN's benchmark mode may pick kernels that sum in a different order; with its
    # deterministic kernels, the same seed must give the same numbers exactly.
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    config = TrainConfig(epochs=2, patience=None, device="cuda", precision="fp32")
    trainer = Trainer(digits_splits, config)
    a = trainer.evaluate(schema, good_genome(schema))
    b = trainer.evaluate(schema, good_genome(schema))
    assert a.status == b.status == "ok"
    assert a.history == b.history
    assert (a.val_accuracy, a.test_accuracy) == (b.val_accuracy, b.test_accuracy)
