"""``pytorch-devol show``, ``plot`` and ``export``: read a run directory, never write to it
(except the file asked for)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import fmt

__all__ = ["run_export", "run_plot", "run_show"]


def run_show(args: argparse.Namespace) -> int:
    """Handle ``pytorch-devol show``."""
    from ..search import RunStore, load_result

    config = RunStore(args.run_dir).config()
    result = load_result(args.run_dir, args.gene_modules)
    s = config["search"]
    print(f"Run {args.run_dir}")
    print(f"  data: {config['data']['summary']}")
    print(f"  search: {s['strategy']}, {s['generations']} generations x {s['population_size']}, "
          f"seed {s['seed']}, metric {s['metric']}; epochs <= {config['train']['epochs']}")
    _show_rungs(s.get("fidelity"), config["train"]["epochs"], result)
    _show_warm_start(config.get("warm_start"), result.schema)
    counts = result.counts()
    counts["infeasible (skipped, never trained)"] = counts.pop("infeasible")
    print("  candidates: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if result.best_record is None:
        print("No candidate has trained successfully yet.")
        return 0
    m = result.best_metrics
    print(f"Best (candidate {result.best_record['index']}): val {s['metric']} "
          f"{fmt(result.best_fitness)}, val loss {fmt(m.get('val_loss'))}, "
          f"test accuracy {fmt(m.get('test_accuracy'))}, {m.get('params')} parameters")
    for line in result.describe():
        print(f"  {line}")
    _show_lineage(result)
    top = result.top(args.top)
    print(f"Top {len(top)}:")
    header = f"{'index':>6} {'gen':>4} {'rung':>4} {'val_acc':>8} {'val_loss':>8} " \
             f"{'test_acc':>8} {'params':>9} {'epochs':>6} {'seconds':>8}"
    print(header)
    for r in top:
        m = r["metrics"]
        print(f"{r['index']:>6} {r['generation']:>4} {r.get('rung', 0):>4} "
              f"{fmt(m.get('val_accuracy')):>8} "
              f"{fmt(m.get('val_loss')):>8} {fmt(m.get('test_accuracy')):>8} "
              f"{m.get('params', 0):>9} {m.get('epochs', 0):>6} "
              f"{fmt(m.get('train_seconds'), 1):>8}")
    _show_front(result)
    return 0


def _show_warm_start(saved: dict[str, Any] | None, schema: Any) -> None:
    """Which genomes the run started from, and where they came from (a damaged entry is a
    one-line ValueError)."""
    from ..search.warm import WarmStart

    warm = WarmStart.from_config(saved, schema)
    if warm is not None:
        print(f"  warm start: {warm.describe()}")


def _show_lineage(result: Any) -> None:
    """Where the best network's weights came from, when they came down a lineage (into a
    warm start's earlier run too)."""
    chain = result.lineage(result.best_record["index"])
    best = chain[0]
    if best["parent"] is None:
        return
    steps, run = [], None
    for r in chain:
        steps.append(str(r["index"]) if run is None else f"{r['index']} ({run})")
        run = r.get("parent_run") or run
    where = f" of {best['parent_run']}" if best.get("parent_run") else ""
    print(f"  weights: inherited from candidate {best['parent']}{where} "
          f"({best['inherited_params']} parameters copied; lineage {' <- '.join(steps)}; "
          f"{best['lineage_epochs']} epochs of training before its own)")


def _show_rungs(fidelity: dict[str, Any] | None, epochs: int, result: Any) -> None:
    """How many candidates reached each rung of a multi-fidelity run, and what it cost."""
    spent = sum(r["rung_epochs"] for r in result.history if not r["cached"])
    if not fidelity:
        print(f"  training: every candidate up to {epochs} epochs; {spent} epochs spent")
        return
    budgets = fidelity["budgets"]
    reached = [len({r["index"] for r in result.history if r["rung"] == k})
               for k in range(len(budgets))]
    kind = fidelity["type"] if fidelity["kind"] == "custom" else \
        f"{fidelity['kind']} (eta {fidelity['eta']})"
    print(f"  fidelity: {kind}; rungs: "
          + ", ".join(f"{b} epoch{'s' if b != 1 else ''}: {n} candidate{'s' if n != 1 else ''}"
                      for b, n in zip(budgets, reached))
          + f"; {spent} epochs spent")
    if fidelity["kind"] == "hyperband":
        _show_brackets(fidelity, epochs, result)


def _show_brackets(fidelity: dict[str, Any], epochs: int, result: Any) -> None:
    """Hyperband's bracket table beside what each bracket's candidates reached."""
    from ..search.fidelity import saved_fidelity

    hyperband = saved_fidelity(fidelity, None, None)  # plain values, checked
    top = len(fidelity["budgets"]) - 1
    reached: dict[tuple[int, int], set[int]] = {}
    for r in result.history:
        entry = hyperband.entry_rung(r["index"], top)
        reached.setdefault((entry, r["rung"]), set()).add(r["index"])
    brackets = hyperband.brackets(epochs)
    print(f"  brackets (per round of {sum(b.candidates for b in brackets)} new candidates; "
          "this run's counts after ';'):")
    for b in brackets:
        table = " -> ".join(f"{n} at {epochs}" for epochs, n in b.rungs)
        run = " -> ".join(str(len(reached.get((b.entry, k), ())))
                          for k in range(b.entry, top + 1))
        print(f"    bracket {b.entry}: {table} epochs; {run}")


def _show_front(result: Any) -> None:
    """The Pareto front of a multi-objective run, as a table best first by the first
    objective (export with --candidate N)."""
    front = result.pareto_front
    if not result.objectives:
        return
    names = [o["name"] for o in result.objectives]
    print(f"Pareto front ({len(front)} candidates; "
          + ", ".join(f"{o['name']} {o['direction']}" for o in result.objectives)
          + "); export one with: pytorch-devol export RUN_DIR --candidate N")
    print(f"{'index':>6} " + " ".join(f"{n:>14}" for n in names) + f" {'violation':>10}")
    first, sign = names[0], -1.0 if result.objectives[0]["direction"] == "max" else 1.0
    for r in sorted(front, key=lambda r: (sign * r["objectives"][first], r["index"])):
        values = [fmt(r["objectives"].get(n), 0 if n in ("params", "flops") else 4)
                  for n in names]
        print(f"{r['index']:>6} " + " ".join(f"{v:>14}" for v in values)
              + f" {fmt(r.get('violation'), 3):>10}")


def run_plot(args: argparse.Namespace) -> int:
    """Handle ``pytorch-devol plot``."""
    from ..search.report import plot_run

    print(plot_run(args.run_dir, out=args.out, gene_modules=args.gene_modules))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Handle ``pytorch-devol export``."""
    from ..search.report import export_model

    path = export_model(args.run_dir, format=args.format, out=args.out,
                        gene_modules=args.gene_modules, candidate=args.candidate,
                        retrained=args.retrained)
    print(f"{path} (outputs checked against the original model)")
    return 0
