"""The search benchmark's statistics (benchmarks/efficiency_analysis.py): incumbent traces,
paired mean differences and their bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.efficiency_analysis import at, bootstrap_mean, paired, t_interval, trace

diffs = st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(d=diffs)
def test_the_bootstrap_interval_holds_the_mean_within_the_range(d):
    low, high = bootstrap_mean(d)
    assert min(d) - 1e-12 <= low <= np.mean(d) + 1e-12 <= high + 2e-12 <= max(d) + 3e-12
    assert bootstrap_mean(d) == [low, high]          # seeded: the same every time


def test_the_t_interval_is_the_textbook_one_and_wider_than_the_bootstrap_at_8_seeds():
    d = [0.02, -0.01, 0.03, 0.0, 0.01, 0.04, -0.02, 0.01]
    low, high = t_interval(d)
    half = 2.3646 * np.std(d, ddof=1) / np.sqrt(8)     # t(0.975, 7) = 2.3646
    assert (low, high) == pytest.approx((np.mean(d) - half, np.mean(d) + half), abs=1e-6)
    b_low, b_high = bootstrap_mean(d)
    assert high - low > b_high - b_low


def test_the_interval_separates_only_a_consistent_difference():
    assert paired(_cuts([0.02, 0.03, 0.01, 0.02, 0.04, 0.03, 0.02, 0.01]), "a", "b")[
        "separated"]
    mixed = paired(_cuts([0.02, -0.03, 0.01, -0.02, 0.0, 0.03, -0.02, 0.01]), "a", "b")
    assert not mixed["separated"] and mixed["ci95"][0] < 0 < mixed["ci95"][1]
    assert (mixed["wins"], mixed["ties"], mixed["losses"]) == (4, 1, 3)
    assert not paired(_cuts([0.05]), "a", "b")["separated"]   # one seed: no interval
    missing = paired([{"a": None, "b": 0.5}], "a", "b")
    assert missing["mean"] is None and "no incumbent" in missing["note"]


def _cuts(d):
    return [{"a": 0.5 + x, "b": 0.5} for x in d]


def _event(epochs, val=None, test=None):
    return {"epochs": epochs, "seconds": 1.0, "val_accuracy": val, "test_accuracy": test,
            "new_incumbent": test is not None}


def test_the_trace_follows_new_incumbents_only():
    tr = trace([_event(1), _event(3, 0.7, 0.68), _event(0, 0.9), _event(3, 0.8, 0.79)])
    assert [p["epochs"] for p in tr] == [1, 4, 4, 7]
    assert [p["test"] for p in tr] == [None, 0.68, 0.68, 0.79]
    assert math.isnan(at(tr, 3)) and at(tr, 4) == 0.68 and at(tr, 6.5) == 0.68
    assert at(tr, 100) == pytest.approx(0.79)


def _saved(path, seeds, arms, **setting):
    import json
    runs = {a: [{"seed": s, "arm": a} for s in seeds] for a in arms}
    path.write_text(json.dumps({"date": str(path), "setting": {
        "seeds": len(seeds), "first_seed": seeds[0], "arms": arms, "epochs": 3,
        "arm_labels": {a: a.upper() for a in arms}, "skipped_seeds_by_time": [], **setting},
        "summary": {}, "verdicts": {}, "runs": runs}))
    return path


def test_merging_saved_runs_keeps_the_shared_arms_in_seed_order(tmp_path):
    from benchmarks.common import merge_saved

    a = _saved(tmp_path / "a.json", [0, 1], ["ga", "random", "optuna"])
    b = _saved(tmp_path / "b.json", [3, 2], ["random", "ga"])
    meta, runs = merge_saved([a, b])
    assert list(runs) == ["ga", "random"]                       # optuna ran in one file only
    assert [r["seed"] for r in runs["random"]] == [0, 1, 2, 3]
    assert meta["date"] == str(a) and meta["setting"]["seeds"] == 4
    assert meta["setting"]["arm_labels"] == {"ga": "GA", "random": "RANDOM"}
    assert meta["setting"]["merged_from"] == ["a.json", "b.json"]


def test_merging_saved_runs_of_other_arms_on_the_same_seeds_keeps_them_all(tmp_path):
    from benchmarks.common import merge_saved

    a = _saved(tmp_path / "a.json", [0, 1], ["ga", "optuna"])
    b = _saved(tmp_path / "b.json", [1, 0], ["ga+tournament"])
    c = _saved(tmp_path / "c.json", [0], ["ga+slices"])  # one seed short: left out
    meta, runs = merge_saved([a, b, c])
    assert list(runs) == ["ga", "optuna", "ga+tournament"]
    assert [r["seed"] for r in runs["ga+tournament"]] == [0, 1]
    assert meta["setting"]["arm_labels"]["ga+tournament"] == "GA+TOURNAMENT"


def test_ablation_arms_are_labelled_and_paired_with_their_base():
    from benchmarks.efficiency_analysis import ARM_LABELS, verdicts
    from benchmarks.levers import LEVERS, lever_settings, split_arm

    assert split_arm("ga_sh_inherit+tournament+slices") == ("ga_sh_inherit",
                                                            ("tournament", "slices"))
    assert ARM_LABELS["ga_sh_inherit+slices"] == 'GA + SH + heredity + slot rule "slices"'
    with pytest.raises(KeyError):
        ARM_LABELS["nothing"]
    both = lever_settings(("tournament", "nocrossover", "eta2"))
    assert both == {"strategy_options": {**LEVERS["tournament"][1]["strategy_options"],
                                         **LEVERS["nocrossover"][1]["strategy_options"]},
                    "eta": 2}
    cuts = [{"seed": s, "epochs": 96, "ga_sh_inherit": 0.80 + s / 100,
             "ga_sh_inherit+slices": 0.81 + s / 100, "optuna": 0.8} for s in range(8)]
    summary = {"arms": {a: {} for a in ("ga_sh_inherit", "ga_sh_inherit+slices", "optuna")},
               "equal_epochs": cuts}
    pairs = verdicts(summary, "devol+training")["pairs"]
    assert pairs["ga_sh_inherit+slices-ga_sh_inherit"]["mean"] == pytest.approx(0.01)
    assert "ga_sh_inherit+slices-optuna" in pairs


def test_merging_refuses_other_settings_and_a_seed_run_twice(tmp_path):
    from benchmarks.common import merge_saved

    a = _saved(tmp_path / "a.json", [0, 1], ["ga"])
    with pytest.raises(SystemExit, match="settings differ"):
        merge_saved([a, _saved(tmp_path / "b.json", [2], ["ga"], epochs=9)])
    with pytest.raises(SystemExit, match="a seed in two files"):
        merge_saved([a, _saved(tmp_path / "c.json", [1], ["ga"])])


def test_the_default_verdict_states_each_target_from_the_pairs():
    from benchmarks.default_verdict import targets

    def summary(default, optuna, dehb):
        cuts = [{"seed": s, "epochs": 96, "d": default + (s % 2) / 1000, "optuna": optuna,
                 "dehb": dehb} for s in range(8)]
        return {"equal_epochs": cuts, "arms": {
            a: {"mean_equal_epochs_test_accuracy": sum(c[a] for c in cuts) / 8}
            for a in ("d", "optuna", "dehb")}}

    ahead = summary(0.85, 0.83, 0.86)        # +2 points on Optuna, behind DEHB
    level = summary(0.80, 0.80, 0.79)
    found = targets("d", ahead, ahead, level)
    assert [t["met"] for t in found] == [True, True, False, True]
    found = targets("d", level, level, summary(0.79, 0.80, 0.70))
    assert [t["met"] for t in found] == [False, False, True, True]
