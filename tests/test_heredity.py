"""Heredity: slot-by-slot matching (properties over random genomes, a user's gene type, the
index shift a name match gets wrong), the trainer starting from inherited weights, the donor
pool, and real searches on digits: lineage fields, CSV, show, fidelity schedulers, a damaged
donor file, and kill -9 + resume giving the uninterrupted records."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.schema.heredity import (
    HEREDITY_RULES,
    inherited_state,
    layout,
    plan_inheritance,
)
from pytorch_devol.search import donors as donors_module
from pytorch_devol.search.donors import DonorPool
from pytorch_devol.search.layout import DONORS
from pytorch_devol.training import TrainConfig, Trainer
from pytorch_devol.training.state import overlay
from tests.cli_helpers import kill_when_logged, main, search_in_process
from tests.genes_for_tests import KernelConvGene
from tests.parallel_helpers import tiny_schema

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMAS = {
    "devol": GenomeSchema.devol(max_conv_layers=2, max_dense_layers=2, max_filters=16,
                                max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10),
    "user": GenomeSchema([(KernelConvGene, 2)], input_shape=(1, 8, 8), n_outputs=10),
}
CONFIG = TrainConfig(epochs=2, batch_size=64, patience=None, device="cpu", precision="fp32")


def _slot_of(schema, genome):
    """Child state-dict name -> (slot, its gene values, its input shape)."""
    owner, offset = {}, 0
    for part in schema.build_parts(genome):
        for i, module in enumerate(part.modules):
            for name in module.state_dict():
                owner[f"{offset + i}.{name}"] = (part.slot, part.values, part.input_shape)
        offset += len(part.modules)
    return owner


# -- matching --------------------------------------------------------------------------------
@FAST
@given(st.sampled_from(sorted(SCHEMAS)), st.integers(0, 2**31), st.integers(0, 2**31))
def test_a_plan_copies_only_equal_slots_and_loads_into_the_child(name, seed_a, seed_b):
    schema = SCHEMAS[name]
    child, donor = schema.random(seed_a), schema.random(seed_b)
    child_layout, donor_layout = layout(schema, child), layout(schema, donor)
    if child_layout is None or donor_layout is None:  # invalid genome: nothing inherits
        assert not plan_inheritance(child_layout, donor_layout)
        return
    plan = plan_inheritance(child_layout, donor_layout)
    ours, theirs = _slot_of(schema, child), _slot_of(schema, donor)
    for child_name, (donor_name, _, _) in plan.names.items():
        assert ours[child_name] == theirs[donor_name]  # same slot, values and input shape
    donor_model, child_model = schema.build_model(donor), schema.build_model(child)
    state = inherited_state(plan, donor_model.state_dict())
    missing, unexpected = child_model.load_state_dict(state, strict=False)
    rest = set(child_model.state_dict()) - set(state)  # BatchNorm fills in a missing count
    assert not unexpected and set(missing) == {n for n in rest if "num_batches" not in n}
    for child_name, tensor in state.items():
        assert torch.equal(child_model.state_dict()[child_name], tensor)
    copied = sum(child_model.state_dict()[n].numel() for n in state
                 if n in dict(child_model.named_parameters()))
    assert copied == plan.params
    # a genome can take all of itself, by every rule
    for rule in HEREDITY_RULES:
        whole = plan_inheritance(child_layout, child_layout, rule)
        assert whole.params == sum(p.numel() for p in child_model.parameters())


@FAST
@given(st.sampled_from(sorted(SCHEMAS)), st.integers(0, 2**31), st.integers(0, 2**31))
def test_looser_rules_copy_more_and_slices_fill_the_leading_block(name, seed_a, seed_b):
    """genes <= shapes <= slices in what is copied; "shapes" copies whole tensors of equal
    shape in the same slot; "slices" the overlap, which overlay puts in the leading block and
    nowhere else."""
    schema = SCHEMAS[name]
    child, donor = schema.random(seed_a), schema.random(seed_b)
    child_layout, donor_layout = layout(schema, child), layout(schema, donor)
    if child_layout is None or donor_layout is None:
        return
    plans = {rule: plan_inheritance(child_layout, donor_layout, rule)
             for rule in HEREDITY_RULES}
    assert plans["genes"].params <= plans["shapes"].params <= plans["slices"].params
    assert set(plans["genes"].names) <= set(plans["shapes"].names) <= set(plans["slices"].names)
    ours, theirs = _slot_of(schema, child), _slot_of(schema, donor)
    donor_model, child_model = schema.build_model(donor), schema.build_model(child)
    fresh = {n: t.clone() for n, t in child_model.state_dict().items()}
    for rule in ("shapes", "slices"):
        for child_name, (donor_name, shape, block) in plans[rule].names.items():
            assert ours[child_name][0] == theirs[donor_name][0]  # the same slot
            assert shape == tuple(donor_model.state_dict()[donor_name].shape)
            if rule == "shapes":
                assert block == shape == tuple(fresh[child_name].shape)
    overlay(child_model, inherited_state(plans["slices"], donor_model.state_dict()))
    after = child_model.state_dict()
    for n, before in fresh.items():
        if n not in plans["slices"].names:
            assert torch.equal(after[n], before)
            continue
        donor_name, _, block = plans["slices"].names[n]
        corner = tuple(slice(0, k) for k in block)
        assert torch.equal(after[n][corner], donor_model.state_dict()[donor_name][corner].to(
            after[n].dtype))
        untouched = torch.ones_like(before, dtype=torch.bool)
        untouched[corner] = False
        assert torch.equal(after[n][untouched], before[untouched])


def test_slices_copy_the_first_filters_of_a_wider_conv():
    schema = SCHEMAS["devol"]
    cols = {s.name: s for s in schema.slots}
    donor = schema.random(3)
    donor[cols["conv2d0"].start:cols["conv2d0"].stop] = [1, 1, 1, 0, 0, 0]
    child = donor.copy()
    child[cols["conv2d0"].start + 1] = 0  # fewer filters in conv0
    plan = plan_inheritance(layout(schema, child), layout(schema, donor), "slices")
    assert "0.weight" not in plan_inheritance(layout(schema, child), layout(schema, donor),
                                              "shapes").names
    (their, shape, block), = [v for n, v in plan.names.items() if n == "0.weight"]
    assert block[0] < shape[0] and block[1:] == shape[1:]
    with pytest.raises(ValueError, match="heredity rule"):
        plan_inheritance(layout(schema, child), layout(schema, donor), "names")


def test_overlay_refuses_a_tensor_that_does_not_fit():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="lacks"):
        overlay(model, {"1.weight": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="does not fit"):
        overlay(model, {"0.weight": torch.zeros(2, 4)})


def test_a_slot_that_switches_off_never_shifts_tensors_onto_another_layer():
    """The name match's failure: with conv0 off, nn.Sequential index 0 is conv1's module, of
    the same shape as the donor's conv0; a slot match copies neither conv (their inputs
    differ), while the name match would put conv0's tensors on conv1."""
    schema = SCHEMAS["devol"]
    donor = schema.random(3)
    cols = {s.name: s for s in schema.slots}
    donor[cols["conv2d0"].start:cols["conv2d0"].stop] = [1, 1, 1, 0, 0, 0]  # 16 filters, BN
    donor[cols["conv2d1"].start:cols["conv2d1"].stop] = [1, 1, 1, 0, 0, 0]
    child = donor.copy()
    child[cols["conv2d0"].start] = 0  # conv0 off
    donor_model, child_model = schema.build_model(donor), schema.build_model(child)
    shapes = {n: tuple(t.shape) for n, t in child_model.state_dict().items()}
    naive = {n for n, t in donor_model.state_dict().items() if shapes.get(n) == tuple(t.shape)}
    assert "1.running_mean" in naive  # the name match would copy conv0's BatchNorm stats
    plan = plan_inheritance(layout(schema, child), layout(schema, donor))
    assert not any(_slot_of(schema, child)[n][0].startswith("conv") for n in plan.names)


# -- training from inherited weights --------------------------------------------------------
def test_trainer_starts_from_initial_weights(digits_splits):
    schema = tiny_schema()
    genome = schema.random(4)
    while layout(schema, genome) is None:
        genome = (genome + 1) % np.asarray(schema.cardinalities)
    trainer = Trainer(digits_splits, TrainConfig(epochs=4, patience=None, device="cpu"))
    donor = trainer.evaluate(schema, genome, seed=0, keep_weights=True)
    one = TrainConfig(epochs=1, patience=None, device="cpu")
    scratch = Trainer(digits_splits, one).evaluate(schema, genome, seed=1)
    inherited = Trainer(digits_splits, one).evaluate(schema, genome, seed=1,
                                                     initial=donor.state_dict)
    assert donor.ok and scratch.ok and inherited.ok
    assert inherited.val_loss < scratch.val_loss
    again = Trainer(digits_splits, one).evaluate(schema, genome, seed=1, initial=donor.state_dict)
    assert again.history == inherited.history  # deterministic


# -- the donor pool -------------------------------------------------------------------------
def _record(index, fitness, genome, final=True, cached=False):
    return {"index": index, "fitness": fitness, "genome": list(genome), "final": final,
            "key": list(genome), "cached": cached, "lineage_epochs": 0, "metrics": {"epochs": 2}}


def test_pool_keeps_the_best_and_chooses_the_donor_sharing_most(tmp_path):
    schema = SCHEMAS["user"]
    pool = DonorPool(tmp_path, schema, size=2, maximize=True)
    a, b, c = ([1, 1, 2, 0, 1, 1, 2, 0], [1, 1, 2, 0, 1, 0, 0, 1], [1, 0, 0, 0, 1, 0, 0, 0])
    for record in (_record(0, 0.5, a), _record(1, 0.9, b), _record(2, 0.7, c),
                   _record(3, 0.99, c, final=False), _record(4, 0.99, c, cached=True)):
        pool.observe(record)
    assert [m["index"] for m in pool.members] == [1, 2] and pool.threshold() == 0.7
    assert not pool.would_join(_record(5, 0.6, a)) and pool.would_join(_record(5, 0.8, a))
    child = [1, 1, 2, 0, 1, 0, 0, 0]  # conv0 and the head's input as b's; c shares none
    assert pool.choose(child) == 1
    assert pool.choose(b) != 1  # never itself (the same network would be a cached copy)
    for index in (0, 1, 2):
        genome = a if index == 0 else b if index == 1 else c
        pool.save({"index": index, "key": list(schema.key(genome))},
                  schema.build_model(genome).state_dict())
    pool.prune(referenced={0})
    assert sorted(p.name for p in (tmp_path / DONORS).iterdir()) == ["0.pt", "1.pt", "2.pt"]
    pool.prune(referenced=set())
    assert sorted(p.name for p in (tmp_path / DONORS).iterdir()) == ["1.pt", "2.pt"]
    state, params = pool.initial(child, pool.members[0])
    assert params == plan_inheritance(layout(schema, child), layout(schema, b)).params > 0
    (tmp_path / DONORS / "1.pt").write_bytes(b"not a state dict")
    with pytest.warns(RuntimeWarning, match="donor weights"):
        assert pool.initial(child, pool.members[0]) is None


# -- searches -------------------------------------------------------------------------------
def _search(digits, run_dir, **options):
    options = {"generations": 3, "population_size": 5, "seed": 2, "inherit_weights": True,
               "fidelity": None, **options}
    return Search(tiny_schema(), digits, run_dir=run_dir, train_config=CONFIG, verbose=False,
                  **options)


def _check_lineage(history, generational=True):
    finals = {r["index"]: r for r in history if r["final"] and not r["cached"]}
    heirs = [r for r in history if r["parent"] is not None]
    assert heirs, "no candidate inherited"
    for r in heirs:
        donor = finals[r["parent"]]
        assert r["inherited_params"] > 0
        assert r["lineage_epochs"] == donor["lineage_epochs"] + donor["metrics"]["epochs"]
        if generational:
            assert donor["generation"] < r["generation"]
    for r in history:
        if r["parent"] is None:
            assert r["inherited_params"] == 0 and r["lineage_epochs"] == 0
    return heirs


def test_ga_search_inherits_logs_its_lineage_and_keeps_the_final_pool(digits, tmp_path):
    on_disk = []
    run = tmp_path / "run"

    def count(record):
        folder = run / DONORS
        on_disk.append(len(list(folder.glob("*.pt"))) if folder.exists() else 0)

    result = _search(digits, run, on_record=count).run()
    heirs = _check_lineage(result.history)
    assert all(r["generation"] > 0 for r in heirs)
    assert 0 < max(on_disk) <= 5 + 5  # the pool and one generation of newcomers
    pool = {r["index"] for r in result.top(5)}  # the search is over: the final pool stays,
    assert {int(p.stem) for p in (run / DONORS).glob("*.pt")} == pool  # for a warm start
    with open(run / "results.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][-4:] == ["parent", "inherited_params", "lineage_epochs", "parent_run"]
    by_index = {int(row[rows[0].index("index")]): row for row in rows[1:]}
    for r in heirs:
        assert by_index[r["index"]][-4:] == [str(r["parent"]), str(r["inherited_params"]),
                                             str(r["lineage_epochs"]), ""]
    assert json.loads((run / "config.json").read_text())["search"]["inherit_weights"] == "genes"
    assert Search.resume(run, verbose=False).inherit_weights is True
    best = result.best_record
    chain = result.lineage(best["index"])
    assert chain[0] is best and all(a["parent"] == b["index"] for a, b in zip(chain, chain[1:]))
    assert chain[-1]["parent"] is None
    code, shown, _ = main("show", str(run))
    assert code == 0 and ("weights: inherited from" in shown) == (best["parent"] is not None)


def test_inheritance_with_asha_and_successive_halving(digits, tmp_path):
    asha = _search(digits, tmp_path / "asha", strategy="regularized", fidelity="asha",
                   epochs=3).run()
    _check_lineage(asha.history, generational=False)
    first = {r["index"]: r for r in asha.history if r["rung"] == 0}
    for r in asha.history:  # a promotion continues its own state: the same lineage
        assert r["parent"] == first[r["index"]]["parent"]
    assert any(r["rung"] > 0 for r in asha.history)
    sh = _search(digits, tmp_path / "sh", fidelity="sh", epochs=3).run()
    _check_lineage(sh.history)


def test_unreadable_donor_weights_start_from_scratch(digits, tmp_path, monkeypatch):
    def garbage(self, record, weights):
        self.folder.mkdir(exist_ok=True)
        (self.folder / f"{record['index']}.pt").write_bytes(b"\x00 damaged")

    monkeypatch.setattr(donors_module.DonorPool, "save", garbage)
    with pytest.warns(RuntimeWarning, match="donor weights"):
        result = _search(digits, tmp_path / "run", generations=2).run()
    assert all(r["parent"] is None for r in result.history)
    assert result.best_record is not None


def test_a_promotion_whose_state_is_lost_starts_over_with_no_parent(digits, tmp_path,
                                                                    monkeypatch):
    from pytorch_devol.search import store as store_module

    monkeypatch.setattr(store_module.RunStore, "load_state", lambda self, key, rung: None)
    result = _search(digits, tmp_path / "run", fidelity="sh", epochs=3).run()
    promoted = [r for r in result.history if r["rung"] > 0 and not r["cached"]]
    assert promoted and any(r["parent"] is not None for r in result.history if r["rung"] == 0)
    for r in promoted:  # trained again from random weights: no lineage to claim
        assert (r["parent"], r["inherited_params"], r["lineage_epochs"]) == (None, 0, 0)


TINY = ["--dataset", "digits", "--max-conv-layers", "1", "--max-dense-layers", "2",
        "--max-filters", "16", "--max-dense-nodes", "32", "--generations", "3",
        "--population", "5", "--epochs", "3", "--patience", "3", "--seed", "3",
        "--precision", "fp32", "--fidelity", "sh", "--min-epochs", "1", "--eta", "2",
        "--inherit-weights"]


def _records(run):
    recs = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()
            if line.strip()]
    return sorted((r["index"], r["rung"], r["cached"], r["fitness"], r["parent"],
                   r["inherited_params"], r["lineage_epochs"], r["metrics"]["val_loss"])
                  for r in recs)


@pytest.mark.slow
def test_killed_search_with_heredity_resumes_to_the_same_records(tmp_path):
    reference = tmp_path / "ref"
    search_in_process(*TINY, "--run-dir", str(reference), "--quiet")
    expected = _records(reference)
    assert any(r[4] is not None for r in expected)
    run = tmp_path / "killed"
    kill_when_logged(["search", *TINY, "--run-dir", str(run), "--quiet"],
                     run / "results.jsonl", 12)
    assert len(_records(run)) < len(expected), "the search finished before it was killed"
    search_in_process("--resume", str(run), "--quiet")
    assert _records(run) == expected


def test_each_slot_rule_runs_a_search_and_is_saved_for_resume(digits, tmp_path):
    for rule in HEREDITY_RULES:
        run = tmp_path / rule
        result = _search(digits, run, inherit_weights=rule, fidelity="sh", epochs=3).run()
        _check_lineage(result.history)
        assert json.loads((run / "config.json").read_text())["search"]["inherit_weights"] \
            == rule
        assert Search.resume(run, verbose=False).heredity == rule


def test_inherit_weights_refuses_an_unknown_rule_and_old_runs_resume_as_genes(digits, tmp_path):
    with pytest.raises(ValueError, match="slot rule.*genes, shapes, slices.*'names'"):
        _search(digits, tmp_path / "x", inherit_weights="names")
    with pytest.raises(ValueError, match="slot rule"):
        _search(digits, tmp_path / "x", inherit_weights=1)
    run = tmp_path / "old"
    _search(digits, run, generations=1).run()
    config = json.loads((run / "config.json").read_text())
    config["search"]["inherit_weights"] = True  # as runs saved before the slot rules
    (run / "config.json").write_text(json.dumps(config))
    assert Search.resume(run, verbose=False).heredity == "genes"


def test_cli_takes_a_slot_rule_and_its_choices_are_the_schemas():
    from pytorch_devol.cli.parser import _DEFAULT_HEREDITY, _HEREDITY_RULES, build_parser
    from pytorch_devol.search.donors import DEFAULT_HEREDITY

    assert _HEREDITY_RULES == HEREDITY_RULES and _DEFAULT_HEREDITY == DEFAULT_HEREDITY
    parse = build_parser().parse_args
    assert parse(["search", "--inherit-weights"]).inherit_weights is True
    assert parse(["search", "--inherit-weights", "slices"]).inherit_weights == "slices"
    with pytest.raises(SystemExit):
        parse(["search", "--inherit-weights", "names"])
