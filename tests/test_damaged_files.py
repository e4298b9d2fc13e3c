"""Damaged run directories: every file kind, every kind of damage, every reader.

A Hypothesis property picks a file of a run directory and damages it (truncated; bytes
flipped in the middle; valid JSON of the wrong shape; a ``.pt`` holding another genome's
tensors or a non-tensor object; missing). Then ``show``, ``plot``, ``export``, ``retrain``
and a resume each either recover (as docs/guide/run-directory.md's table says: the file is rebuilt
from the log, or ignored and its work redone) with the undamaged run's result, or refuse in
one line naming the file, as an error the command line prints with exit status 2. Never a
traceback, never a silently wrong result, never code executed (files are read with
``weights_only=True`` and plain JSON).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.cli import main as cli_main
from pytorch_devol.search import retrain

from .scoring import ScoreEvaluator
from .test_state_replay import Cut, Probe

pytestmark = pytest.mark.slow
SCHEMA = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                            max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
DAMAGES = ("truncate", "flip", "wrong shape", "other genome", "not tensors", "missing")
TIMES = ("finished_at", "rung_seconds")
# A donor's or a paused state's file that cannot be used costs its candidate a start from
# random weights (a warning says so): these fields of the records then differ, nothing else.
REDONE = ("parent", "inherited_params", "lineage_epochs", "parent_run", "rung_epochs")


def _search(run: Path, digits, evaluator, **kw) -> Search:
    return Search(SCHEMA, digits, generations=3, population_size=6, epochs=9, seed=4,
                  run_dir=run, evaluator=evaluator, verbose=False, **kw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits):
    """A search killed mid-run (states/, donors/, a checkpoint) and its uninterrupted
    twin; the same for a search warm-started from it (warm/); a finished multi-objective
    run (pareto.json, front/) and a retrain of its best (retrain/)."""
    root = tmp_path_factory.mktemp("damage")
    with pytest.raises(Cut):
        _search(root / "killed", digits, Probe(1, cut_at=14)).run()
    _search(root / "whole", digits, ScoreEvaluator()).run()
    with pytest.raises(Cut):  # warm/ exists while a warm-started search runs
        _search(root / "warm", digits, Probe(1, cut_at=12), warm_start=root / "whole").run()
    _search(root / "warm-whole", digits, ScoreEvaluator(), warm_start=root / "whole").run()
    _search(root / "front", digits, ScoreEvaluator(), objectives=["accuracy", "params"]).run()
    retrain(root / "front", epochs=1, seeds=1)  # real training: retrain/<best>/
    return root


def _records(run: Path, ignore: tuple[str, ...] = ()) -> list[dict]:
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMES + ignore} for r in rows]


def damage(path: Path, how: str, other: Path, where: float) -> None:
    """Damage ``path`` in place (``other``: a file of the same kind from another genome)."""
    data = path.read_bytes()
    if how == "missing":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(data[:int(len(data) * where)])
    elif how == "flip":
        at = max(0, min(len(data) - 8, int(len(data) * (0.25 + where / 2))))
        path.write_bytes(data[:at] + bytes(b ^ 0x5A for b in data[at:at + 8]) + data[at + 8:])
    elif how == "wrong shape":
        path.write_text(json.dumps([["not", "a"], {"run": 1}]) + "\n")
    elif how == "other genome":
        shutil.copyfile(other, path)
    else:  # not tensors: a valid .pt of plain objects
        buf = io.BytesIO()
        torch.save({"weights": "none", "layers": [1, 2, 3]}, buf)
        path.write_bytes(buf.getvalue())


def _files(run: Path) -> list[Path]:
    return sorted(p for p in run.rglob("*") if p.is_file() and p.name != "writer.lock"
                  and not p.name.startswith("."))


def _other(path: Path, run: Path) -> Path:
    """A file of the same kind belonging to another candidate (or another run's)."""
    same = [p for p in _files(run) if p.parent == path.parent and p.suffix == path.suffix
            and p != path]
    if same:
        return same[0]
    return next(p for p in _files(run.parent / "front") if p.suffix == path.suffix)


def _seeds(run: Path) -> list[dict]:
    (summary,) = (run / "retrain").glob("*/metrics.json")
    return [{k: v for k, v in s.items() if k != "train_seconds"}
            for s in json.loads(summary.read_text())["seeds"]]


def _command(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(list(args))
    return code, out.getvalue(), err.getvalue()


def _refused(err: str, command: str, path: Path) -> bool:
    """One line, from the command line's error handler, naming the damaged file."""
    return err.count("\n") == 1 and err.startswith(f"pytorch-devol {command}: error: ") and \
        (path.name in err or path.parent.name in err)


def _resume(run: Path):
    """A resume with the evaluator that trains nothing; an error as the CLI prints it."""
    try:
        Search.resume(run, evaluator=ScoreEvaluator(), verbose=False).run()
    except (ValueError, OSError, ImportError) as err:  # what the command line catches
        return 2, f"pytorch-devol search: error: {err}\n"
    return 0, ""


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(which=st.sampled_from(["killed", "warm", "front"]), pick=st.floats(0, 1),
       how=st.sampled_from(DAMAGES), where=st.floats(0.05, 0.95))
def test_a_damaged_file_is_recovered_or_refused_in_one_line(runs, which, pick, how, where):
    work = runs / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(runs / which, work)
    files = _files(work)
    path = files[min(len(files) - 1, int(pick * len(files)))]
    if how in ("other genome", "not tensors") and path.suffix != ".pt":
        how = "wrong shape"
    damage(path, how, _other(path, work), where)
    name = str(path.relative_to(work))
    commands = [("show",), ("plot",), ("export",)]
    if path.parent.name == "front":
        commands.append(("export", "--candidate", path.stem))
    if "retrain" in path.parts or (which == "front" and path.suffix in (".json", ".jsonl")):
        commands += [("export", "--retrained", "0"),
                     ("retrain", "--epochs", "1", "--seeds", "1")]
    for command, *extra in commands:
        code, _, err = _command(command, str(work), *extra)
        assert code == 0 or _refused(err, command, path), (name, how, command, err)
        if command == "retrain" and code == 0:  # recovered: the undamaged retrain's seeds
            assert _seeds(work) == _seeds(runs / "front"), (name, how)
    code, err = _resume(work)
    assert code == 0 or _refused(err, "search", path), (name, how, "resume", err)
    if code == 0:  # recovered: the run the undamaged directory would have given
        reference = runs / {"killed": "whole", "warm": "warm-whole", "front": "front"}[which]
        ignore = REDONE if path.parent.name in ("donors", "states", "warm") else ()
        assert _records(work, ignore) == _records(reference, ignore), (name, how)
