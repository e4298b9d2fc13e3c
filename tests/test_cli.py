"""The ``pytorch-devol`` command, run as a user would.

The search itself, the kill and the resumes run in subprocesses (a real command, a real kill);
checks that only read a run or reject arguments call ``cli.main`` in this process, which runs
the same code without paying a Python start-up (seconds) per check. One mistake also goes
through a subprocess, so the real entry point's one-line errors stay covered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli_helpers import cli, kill_when_logged, main, search_in_process

pytestmark = pytest.mark.slow

TINY = ["--max-conv-layers", "1", "--max-dense-layers", "2", "--max-filters", "16",
        "--max-dense-nodes", "32", "--generations", "3", "--population", "4", "--epochs", "2",
        "--seed", "5", "--precision", "fp32", "--fidelity", "none"]


def records(run: Path) -> list[dict]:
    lines = (run / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def comparable(recs: list[dict]) -> list[tuple]:
    return sorted((r["index"], tuple(r["genome"]), r["cached"], r["fitness"],
                   r["metrics"]["val_loss"]) for r in recs)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    out = cli("search", *TINY, "--run-dir", str(run)).stdout
    assert "Generation 2:" in out and str(run) in out
    return run


def test_search_show_and_existing_dir(finished_run):
    assert len(records(finished_run)) == 12
    code, shown, _ = main("show", str(finished_run))
    assert code == 0 and "Best (candidate" in shown and "head: Linear" in shown
    assert "Top" in shown
    code, _, err = main("search", *TINY, "--run-dir", str(finished_run))
    assert code == 2
    assert err.count("\n") == 1 and "already exists" in err


def test_user_mistakes_are_one_line_errors(tmp_path):
    for args, message in [
        (["search", "--dataset", "mnist", "--data-root", str(tmp_path)], "not found"),
        (["search", "--epochs", "0"], "--epochs must be >= 1"),
        (["search", "--fidelity", "none", "--eta", "2"], "need --fidelity sh, asha or hyperband"),
        (["search", "--fidelity", "sh", "--eta", "1"], "--eta must be >= 2"),
        (["search", "--fidelity", "asha"], "for steady-state strategies; 'ga' is not one"),
        (["search", "--strategy", "regularized", "--fidelity", "sh"], "generational"),
        (["search", "--fidelity", "sh", "--epochs", "2", "--min-epochs", "3"], "min_epochs"),
        (["show", str(tmp_path / "nope")], "not a pytorch-devol run directory"),
        (["search", "--workers", "two"], "integer >= 0 or 'auto'"),
    ]:
        code, _, err = main(*args)
        assert code == 2, args
        assert message in err and "Traceback" not in err, err
    # The same through the installed entry point, in its own process.
    proc = cli("search", "--resume", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "not a pytorch-devol run directory" in proc.stderr


def test_default_search_and_devol_algorithm_are_what_readme_says(tmp_path):
    """Without flags: the GA, successive halving and heredity (Search's defaults);
    --devol-algorithm: DEvol's GA, every candidate in full, no heredity (compat's)."""
    tiny = [a for a in TINY if a not in ("--fidelity", "none")]
    for flag, expected in [((), ("ga", "sh", "genes")),
                           (("--devol-algorithm",), ("ga", None, False)),
                           (("--inherit-weights", "none"), ("ga", "sh", False)),
                           (("--inherit-weights", "slices", "--strategy", "regularized"),
                            ("regularized", "asha", "slices"))]:
        run = tmp_path / "-".join(("run", *flag))
        search_in_process(*tiny, *flag, "--generations", "1", "--run-dir", str(run), "--quiet")
        saved = json.loads((run / "config.json").read_text())["search"]
        assert (saved["strategy"], (saved["fidelity"] or {}).get("kind"),
                saved["inherit_weights"]) == expected, flag
    code, _, err = main("search", "--devol-algorithm", "--fidelity", "sh")
    assert code == 2 and "drop --fidelity" in err and err.count("\n") == 1


def test_plot_and_export(finished_run, tmp_path):
    png = tmp_path / "p.png"
    assert main("plot", str(finished_run), "--out", str(png))[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = main("export", str(finished_run), "--format", "torchscript", "--out",
                          str(tmp_path / "m.pt"))
    assert code == 0, err
    assert "m.pt" in out and (tmp_path / "m.pt").stat().st_size > 0


def test_kill_9_twice_then_resume_loses_and_duplicates_nothing(finished_run, tmp_path):
    """Killed after 3 candidates, resumed and killed again 4 candidates later (a kill during
    a resumed run), then resumed to the end: the same 12 records and best as the run that
    was never interrupted."""
    run = tmp_path / "run"
    log = run / "results.jsonl"
    kill_when_logged(["search", *TINY, "--run-dir", str(run), "--quiet"], log, 3)
    first = len(records(run))
    assert first < 12, "the search finished before it could be killed"
    kill_when_logged(["search", "--resume", str(run), "--quiet"], log, 4)
    assert first <= len(records(run)) < 12, "the resumed search finished before the kill"
    search_in_process("--resume", str(run), "--quiet")
    after = records(run)
    indices = [r["index"] for r in after]
    assert len(indices) == len(set(indices)) == 12
    assert comparable(after) == comparable(records(finished_run))
    best = json.loads((run / "best_genome.json").read_text())
    reference = json.loads((finished_run / "best_genome.json").read_text())
    for key in ("index", "genome", "fitness", "layers"):
        assert best[key] == reference[key]


def test_search_with_a_worker_pool(tmp_path):
    run = tmp_path / "pool"
    cli("search", *TINY, "--workers", "2", "--run-dir", str(run), "--quiet")
    recs = records(run)
    assert sorted(r["index"] for r in recs) == list(range(12))
    assert (run / "best.pt").exists()


def test_file_system_mistakes_are_one_line_errors(finished_run, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    code, _, err = main("export", str(finished_run), "--out", str(tmp_path / "afile" / "m.pt"))
    assert code == 2 and "Traceback" not in err
    assert "afile" in err and err.count("\n") == 1
