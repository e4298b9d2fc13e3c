"""A full disk, an I/O error or a read-only file system at every place the package writes.

The error is injected where a durable write reports it, ``os.fsync`` (every write in
``search/durable.py`` ends there), at the first or a later write to one site, for ENOSPC, EIO
and EROFS. Each time the search (or retrain, export, plot) stops with an OSError that keeps the
errno and names the file, leaves nothing half-written that a resume trusts, and, once the disk
is back, ``resume`` (or a rerun) ends with exactly the records and files of an uninterrupted
run. The command line prints it in one line with exit status 2 (no traceback). A tracker that
cannot write is dropped with a warning and the search goes on. As root, a real tiny tmpfs.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.search import Callback, retrain
from pytorch_devol.search.report import export_model, plot_run

from .cli_helpers import main
from .scoring import ScoreEvaluator

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                                reason="needs /proc/self/fd (Linux) to see which file is written")
ERRNOS = {"ENOSPC": errno.ENOSPC, "EIO": errno.EIO, "EROFS": errno.EROFS}
SCHEMA = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                            max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
DEFAULT = dict(generations=2, population_size=6, epochs=9, seed=3)  # SH + heredity
OBJECTIVES = dict(DEFAULT, objectives=["accuracy", "params"])
# site -> the search settings that write it
SEARCH_SITES = {"config.json": DEFAULT, "results.jsonl": DEFAULT, "results.csv": DEFAULT,
                "checkpoint.json": DEFAULT, "best.pt": DEFAULT, "best_genome.json": DEFAULT,
                "states/": DEFAULT, "donors/": DEFAULT, "pareto.json": OBJECTIVES,
                "front/": OBJECTIVES, "warm/": dict(DEFAULT, warm_start="EARLIER")}
LATER = {"results.jsonl": 5, "results.csv": 5, "checkpoint.json": 4, "states/": 3}  # mid-run
TIMES = ("finished_at", "rung_seconds")


def site_of(path: str) -> str:
    """The site a path written belongs to (an atomic write's temporary file: its target)."""
    p = Path(path)
    if p.parent.name in ("states", "donors", "front", "warm"):
        return f"{p.parent.name}/"
    name = p.name[1:].rsplit(".", 1)[0] if p.name.startswith(".") else p.name
    if p.parent.parent.name == "retrain":
        return f"retrain/{'seed' if name.startswith('seed') else name}"
    return name


@pytest.fixture
def fail_at(monkeypatch):
    """``fail_at(site, code, nth)``: the nth fsync of a file of ``site`` raises ``code``."""
    real = os.fsync

    def arm(site: str, code: int, nth: int = 1) -> list[str]:
        hits: list[str] = []

        def fsync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if site_of(path) == site:
                hits.append(path)
                if len(hits) == nth:
                    raise OSError(code, os.strerror(code))
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        return hits

    arm.disarm = lambda: monkeypatch.setattr(os, "fsync", real)
    return arm


def _records(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMES} for r in rows]


def _files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*")
            if p.is_file() and p.name != "writer.lock"}


def _search(run: Path, digits, settings: dict, earlier: Path | None = None) -> Search:
    settings = dict(settings)
    if settings.get("warm_start") == "EARLIER":
        settings["warm_start"] = earlier
    return Search(SCHEMA, digits, run_dir=run, evaluator=ScoreEvaluator(), verbose=False,
                  **settings)


@pytest.fixture(scope="module")
def references(tmp_path_factory, digits):
    """Each setting's uninterrupted run (the earlier run for a warm start first)."""
    root = tmp_path_factory.mktemp("reference")
    earlier = root / "earlier"
    _search(earlier, digits, DEFAULT).run()
    runs = {}
    for name, settings in {"default": DEFAULT, "objectives": OBJECTIVES,
                           "warm": SEARCH_SITES["warm/"]}.items():
        _search(root / name, digits, settings, earlier).run()
        runs[name] = root / name
    return earlier, runs


def _reference(settings: dict, runs: dict) -> Path:
    return runs["objectives" if "objectives" in settings else
                "warm" if "warm_start" in settings else "default"]


@pytest.mark.parametrize("code", sorted(ERRNOS))
@pytest.mark.parametrize("site", sorted(SEARCH_SITES))
def test_a_search_stops_naming_the_file_and_resumes_to_the_same_run(
        site, code, fail_at, references, digits, tmp_path):
    earlier, runs = references
    settings = SEARCH_SITES[site]
    run = tmp_path / "run"
    hits = fail_at(site, ERRNOS[code], nth=LATER.get(site, 1))
    with pytest.raises(OSError) as caught:
        _search(run, digits, settings, earlier).run()
    fail_at.disarm()
    assert caught.value.errno == ERRNOS[code] and hits
    assert site_of(caught.value.filename) == site and str(run) in caught.value.filename
    assert "\n" not in str(caught.value) and os.strerror(ERRNOS[code]) in str(caught.value)
    assert not [p for p in run.rglob(".*") if p.is_file()]  # no temporary file left
    if site == "config.json":  # nothing began: the same command starts it afresh
        assert _files(run) == set()
        _search(run, digits, settings, earlier).run()
    else:
        Search.resume(run, evaluator=ScoreEvaluator(), verbose=False).run()
    reference = _reference(settings, runs)
    assert _records(run) == _records(reference)
    assert _files(run) == _files(reference)
    for name in ("best_genome.json", "pareto.json"):
        if (reference / name).exists():
            assert json.loads((run / name).read_text()) == \
                json.loads((reference / name).read_text())


def _untimed(summary: dict) -> dict:
    """A retrain summary without its seconds (the only thing two runs may differ in)."""
    summary["seeds"] = [{k: v for k, v in s.items() if k != "train_seconds"}
                        for s in summary["seeds"]]
    summary["summary"].pop("train_seconds", None)
    return summary


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("writer.lock"))
    return to


@pytest.mark.parametrize("code", sorted(ERRNOS))
@pytest.mark.parametrize("site", ["retrain/seed", "retrain/metrics.json"])
def test_retrain_stops_naming_the_file_and_a_rerun_ends_as_an_uninterrupted_one(
        site, code, fail_at, references, tmp_path):
    """Real training, 1 epoch: a seed's weights or the summary cannot be written."""
    _, runs = references
    reference = _copy(runs["default"], tmp_path / "reference")
    whole = _untimed(retrain(reference, epochs=1, seeds=2).to_dict())
    run = _copy(runs["default"], tmp_path / "run")
    fail_at(site, ERRNOS[code], nth=2)
    with pytest.raises(OSError) as caught:
        retrain(run, epochs=1, seeds=2)
    fail_at.disarm()
    assert caught.value.errno == ERRNOS[code] and site_of(caught.value.filename) == site
    assert _untimed(retrain(run, epochs=1, seeds=2).to_dict()) == whole
    assert _files(run / "retrain") == _files(reference / "retrain")


@pytest.mark.parametrize("code", sorted(ERRNOS))
@pytest.mark.parametrize("what", ["export", "plot"])
def test_export_and_plot_stop_naming_the_file_and_leave_no_half_file(
        what, code, fail_at, references, tmp_path):
    pytest.importorskip("matplotlib", reason="plot needs matplotlib")
    _, runs = references
    run = _copy(runs["default"], tmp_path / "run")
    make = (lambda: export_model(run)) if what == "export" else (lambda: plot_run(run))
    name = "model_state_dict.pt" if what == "export" else "progress.png"
    fail_at(name, ERRNOS[code])
    with pytest.raises(OSError) as caught:
        make()
    fail_at.disarm()
    assert caught.value.errno == ERRNOS[code] and Path(caught.value.filename).name == name
    assert not (run / name).exists() and not [p for p in run.glob(".*") if p.is_file()]
    assert make() == run / name and (run / name).stat().st_size > 0


@pytest.mark.parametrize("code", sorted(ERRNOS))
def test_devols_csv_stops_naming_the_file_and_a_resume_rebuilds_it(code, fail_at, tmp_path):
    datasets = pytest.importorskip("sklearn.datasets", reason="digits need scikit-learn")
    from pytorch_devol.compat import DEvol, GenomeHandler

    from .test_compat import devol_digits

    data = devol_digits(datasets)
    handler = GenomeHandler(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                            max_dense_nodes=32, input_shape=(8, 8, 1), n_classes=10, seed=0)

    def devol(name: str, resume: bool = False) -> DEvol:
        return DEvol(handler, tmp_path / f"{name}.csv", run_dir=tmp_path / name,
                     evaluator=ScoreEvaluator(), resume=resume, verbose=False)

    devol("whole").run(data, 2, 4, 2)
    fail_at("killed.csv", ERRNOS[code], nth=3)
    with pytest.raises(OSError) as caught:
        devol("killed").run(data, 2, 4, 2)
    fail_at.disarm()
    assert caught.value.errno == ERRNOS[code] and caught.value.filename.endswith("killed.csv")
    devol("killed", resume=True).run(data, 2, 4, 2)
    assert (tmp_path / "killed.csv").read_text() == (tmp_path / "whole.csv").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(("command", "site"), [
    ("search", "checkpoint.json"), ("search", "results.jsonl"), ("retrain", "retrain/seed"),
    ("export", "model_state_dict.pt")])
def test_the_command_line_says_it_in_one_line_with_status_2(command, site, fail_at,
                                                            references, tmp_path):
    _, runs = references
    run = _copy(runs["default"], tmp_path / "done")
    args = {"search": ["search", "--generations", "1", "--population", "3", "--epochs", "1",
                       "--max-conv-layers", "1", "--max-dense-layers", "1", "--max-filters",
                       "8", "--max-dense-nodes", "16", "--run-dir", str(tmp_path / "new"),
                       "--quiet"],
            "retrain": ["retrain", str(run), "--epochs", "1", "--seeds", "1"],
            "export": ["export", str(run)]}[command]
    fail_at(site, errno.ENOSPC, nth=2 if site == "checkpoint.json" else 1)
    code, _, err = main(*args)
    fail_at.disarm()
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"pytorch-devol {command}: error: ")
    assert "No space left on device" in err and site.split("/")[-1].split("seed")[0] in err


class FullDiskTracker(Callback):
    """A tracker whose disk is full after two records."""

    best_effort = True

    def __init__(self) -> None:
        self.records = 0

    def on_record(self, record):
        self.records += 1
        if self.records > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "tb/events.out")


class BuggyCallback(FullDiskTracker):
    best_effort = False


def test_a_tracker_that_cannot_write_is_dropped_with_one_warning(digits, tmp_path):
    tracker = FullDiskTracker()
    with pytest.warns(RuntimeWarning, match="FullDiskTracker cannot write") as warned:
        result = _search(tmp_path / "run", digits, dict(DEFAULT, callbacks=[tracker])).run()
    assert len([w for w in warned if "cannot write" in str(w.message)]) == 1
    assert tracker.records == 3 and len(result.history) > 3  # dropped, the search went on
    with pytest.raises(OSError, match="No space left"):  # not best-effort: it stops the search
        _search(tmp_path / "other", digits, dict(DEFAULT, callbacks=[BuggyCallback()])).run()


TMPFS_CHILD = """
import sys
from pytorch_devol import GenomeSchema, Search, load_dataset
sys.path.insert(0, sys.argv[2])
from tests.scoring import ScoreEvaluator
schema = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                            max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
run = sys.argv[1]
try:
    search = Search.resume(run, evaluator=ScoreEvaluator(), verbose=False)
except FileNotFoundError:
    search = Search(schema, load_dataset("digits"), generations=6, population_size=8,
                    epochs=9, seed=3, run_dir=run, evaluator=ScoreEvaluator(), verbose=False)
try:
    search.run()
except OSError as err:
    print(err.errno, err.filename, err, sep="|")
    sys.exit(2)
"""


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                    reason="mounting a tmpfs needs root")
def test_a_real_full_tmpfs_then_more_space_resumes_to_the_same_run(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    repo = str(Path(__file__).resolve().parents[1])
    try:
        full = subprocess.run([sys.executable, "-c", TMPFS_CHILD, str(mount / "run"), repo],
                              capture_output=True, text=True, timeout=300)
        assert full.returncode == 2, full.stderr[-2000:]
        number, filename, _ = full.stdout.strip().split("|", 2)
        assert int(number) == errno.ENOSPC and filename.startswith(str(mount / "run"))
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        resumed = subprocess.run([sys.executable, "-c", TMPFS_CHILD, str(mount / "run"), repo],
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        whole = subprocess.run([sys.executable, "-c", TMPFS_CHILD, str(tmp_path / "whole"),
                                repo], capture_output=True, text=True, timeout=300)
        assert whole.returncode == 0, whole.stderr[-2000:]
        assert _records(mount / "run") == _records(tmp_path / "whole")
        assert _files(mount / "run") == _files(tmp_path / "whole")
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
