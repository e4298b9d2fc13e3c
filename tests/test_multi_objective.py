"""Multi-objective search: objectives and constraints checked up front, NSGA-II through the
search loop, the Pareto front in pareto.json / SearchResult / show / plot / export, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.schema import DenseGene, OptimizerGene
from pytorch_devol.search.front import ParetoFront, dominates
from pytorch_devol.search.objectives import (
    Objective,
    ObjectiveMeter,
    count_macs,
    parse_constraint,
)
from pytorch_devol.training import EvalResult, TrainConfig

from .cli_helpers import kill_when_logged, main, search_in_process

FP32 = TrainConfig(precision="fp32")


def tiny_schema() -> GenomeSchema:
    return GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                              max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)


# -- before training --------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"objectives": ["val_accuracy", "speed"]}, "unknown objective 'speed'"),
    ({"objectives": ["accuracy", "params"], "constraints": ["memory<=3"]},
     "unknown quantity 'memory'"),
    ({"objectives": ["accuracy", lambda result, model: 1.0]}, "needs a name and a direction"),
    ({"objectives": ["accuracy", "params"], "constraints": ["params=<3"]}, "QUANTITY<=NUMBER"),
    ({"objectives": ["accuracy", "params"], "strategy": "ga"}, "need strategy='nsga2'"),
    ({"objectives": ["val_mae", "params"]}, "does not apply to classification"),
])
def test_bad_objectives_are_refused_before_training(tmp_path, digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Search(tiny_schema(), digits, run_dir=tmp_path / "run", verbose=False, **kwargs)
    assert not (tmp_path / "run").exists()


def test_macs_are_counted_from_the_network():
    schema = GenomeSchema([(DenseGene.with_choices(units=[16], dropout=[0.0],
                                                   batch_norm=[False]), 1)],
                          OptimizerGene, (1, 8, 8), 10)
    genome = schema.encode([DenseGene.with_choices(units=[16], dropout=[0.0],
                                                   batch_norm=[False])(active=True, units=16),
                            OptimizerGene()])
    assert count_macs(schema, genome) == 64 * 16 + 16 * 10


def test_the_meter_measures_every_quantity_and_nan_for_failures():
    schema = tiny_schema()
    meter = ObjectiveMeter(schema, [Objective("val_accuracy", "max"), Objective("flops", "min"),
                                    Objective("latency_ms", "min"),
                                    Objective("depth", "min", lambda r, m: len(m))],
                           [parse_constraint("params<=1000", ["params"])], repeats=3)
    genome = schema.random(0)
    ok = EvalResult(status="ok", val_accuracy=0.5, params=2000)
    values = meter.measure(genome, ok)
    assert values["val_accuracy"] == 0.5 and values["flops"] > 0 and values["latency_ms"] > 0
    assert values["depth"] == len(schema.build_model(genome))
    assert meter.violation(values) == pytest.approx(1.0)  # twice the bound
    failed = meter.measure(genome, EvalResult.failed("x"))
    assert all(np.isnan(v) for v in failed.values())


def test_constrained_domination():
    up = [True, False]
    a, b = np.array([0.9, 10.0]), np.array([0.8, 20.0])
    assert dominates(a, 0, b, 0, up) and not dominates(b, 0, a, 0, up)
    assert dominates(b, 0, a, 0.1, up)  # feasible beats infeasible
    assert dominates(a, 0.1, b, 0.5, up)  # the smaller violation wins
    assert dominates(b, 0, np.array([np.nan, 1.0]), 0, up)  # a failure loses to anything
    front = ParetoFront(["acc", "params"], up)
    for i, point in enumerate([[0.8, 20], [0.9, 10], [0.95, 30], [0.7, 5], [0.9, 10]]):
        front.add(i, np.array(point, dtype=float), 0.0, {"genome": [i]})
    assert front.indices == [1, 2, 3]


# -- a real search ----------------------------------------------------------------------------
# Successive halving (rungs of 1 and 3 epochs) and a size constraint checked before training.
MO_CLI = ["--objectives", "accuracy,params", "--max-conv-layers", "1", "--max-dense-layers", "2",
          "--max-filters", "16", "--max-dense-nodes", "32", "--generations", "3",
          "--population", "6", "--epochs", "3", "--limit", "400", "--seed", "1",
          "--precision", "fp32", "--fidelity", "sh", "--constraint", "params<=3000"]


@pytest.fixture(scope="module")
def mo_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("mo") / "run"
    search_in_process(*MO_CLI, "--run-dir", str(run), "--quiet")
    return run


@pytest.mark.slow
def test_the_front_is_non_dominated_logged_and_kept(mo_run):
    from pytorch_devol.search import load_result

    result = load_result(mo_run)
    front = result.pareto_front
    assert front, "a search with successes has a front"
    logged = {r["index"]: r for r in result.history}
    up = [True, False]
    for r in front:
        assert logged[r["index"]]["objectives"] == r["objectives"]
        assert (mo_run / "front" / f"{r['index']}.pt").exists()
        assert isinstance(result.model(r["index"]), nn.Sequential)
        point = np.array([r["objectives"]["val_accuracy"], r["objectives"]["params"]])
        for other in result.history:
            if other["cached"] or other["metrics"]["status"] != "ok" or not other["final"]:
                continue
            q = np.array([other["objectives"]["val_accuracy"], other["objectives"]["params"]])
            assert not dominates(q, 0.0, point, 0.0, up), (other["index"], r["index"])
    saved = json.loads((mo_run / "pareto.json").read_text())
    assert [m["index"] for m in saved["front"]] == [r["index"] for r in front]
    assert sorted(p.name for p in (mo_run / "front").iterdir()) == \
        sorted(f"{r['index']}.pt" for r in front)


@pytest.mark.slow
def test_show_plot_and_export_a_front_member(mo_run, tmp_path):
    from pytorch_devol.search import load_result

    code, shown, _ = main("show", str(mo_run))
    assert code == 0 and "Pareto front" in shown and "--candidate" in shown
    png = tmp_path / "front.png"
    assert main("plot", str(mo_run), "--out", str(tmp_path / "progress.png"))[0] == 0
    assert (tmp_path / "progress.png").exists() and (mo_run / "pareto.png").exists()
    member = load_result(mo_run).pareto_front[-1]["index"]
    code, out, err = main("export", str(mo_run), "--candidate", str(member), "--format",
                          "torchscript", "--out", str(png.with_suffix(".pt")))
    assert code == 0 and "outputs checked" in out, err
    exported = torch.jit.load(str(png.with_suffix(".pt")))
    model = load_result(mo_run).model(member)
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(exported(x), model(x))


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_same_front(mo_run, tmp_path):
    run = tmp_path / "killed"
    log = run / "results.jsonl"
    kill_when_logged(["search", *MO_CLI, "--run-dir", str(run), "--quiet"], log, 10)
    total = (mo_run / "results.jsonl").read_text().count("\n")
    assert log.read_text().count("\n") < total, "finished before the kill"
    search_in_process("--resume", str(run), "--quiet")
    got = json.loads((run / "pareto.json").read_text())
    want = json.loads((mo_run / "pareto.json").read_text())
    assert got == want

    def records(path):
        return [{k: v for k, v in r.items() if k not in ("finished_at", "rung_seconds")}
                | {"metrics": {k: v for k, v in r["metrics"].items() if "seconds" not in k}}
                for r in map(json.loads, (path / "results.jsonl").read_text().splitlines())]

    assert records(run) == records(mo_run)
    skipped = [r for r in records(run) if r["metrics"]["status"] == "infeasible"]
    assert skipped and all(r["metrics"]["epochs"] == 0 for r in skipped)
    code, shown, _ = main("show", str(run))
    assert f"{len(skipped)} infeasible (skipped, never trained)" in shown


@pytest.mark.slow
def test_a_constrained_search_keeps_feasible_candidates_on_the_front(tmp_path, digits):
    search = Search(tiny_schema(), digits, generations=2, population_size=4, epochs=1,
                    run_dir=tmp_path / "run", train_config=FP32, verbose=False,
                    objectives=["val_accuracy", "flops"], constraints=["params<=3000"])
    result = search.run()
    feasible = [r for r in result.history if r["violation"] == 0 and not r["cached"]]
    front = result.pareto_front
    if feasible:
        assert all(r["violation"] == 0 for r in front)
    assert all(r["objectives"]["flops"] is None or r["objectives"]["flops"] > 0
               for r in result.history)
