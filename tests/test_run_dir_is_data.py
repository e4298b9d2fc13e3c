"""A run directory is data, never code: names in it resolve only to what this program knows.

A crafted config.json that names a module placed next to it must not get that module imported
by `show`, `plot`, `export` or `Search.resume`; the caller allows more gene modules explicitly
(`gene_modules=` / `--import`). The saved dataset spec is checked against an allow-list.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.schema.spec import gene_type_from_name
from pytorch_devol.search import load_result
from pytorch_devol.search.report.export import load_exported_state_dict
from pytorch_devol.training import TrainConfig, load_dataset

from .cli_helpers import cli, main
from .conftest import REPO

EVIL = textwrap.dedent("""
    import pathlib
    pathlib.Path(__file__).with_name("IMPORTED").write_text("side effect ran")
    from pytorch_devol.schema import allele, gene

    @gene
    class Evil:
        active: bool = allele([False, True])
        def build(self, in_shape):
            return [], in_shape
""")

USER_GENES = textwrap.dedent("""
    from torch import nn
    from pytorch_devol.schema import allele, gene

    @gene
    class WidthGene:
        active: bool = allele([False, True])
        units: int = allele([8, 16])
        def build(self, in_shape):
            import math
            return [nn.Flatten(), nn.Linear(math.prod(in_shape), self.units), nn.ReLU()], \\
                (self.units,)
""")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, digits):
    """A small finished digits run (built-in genes only)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    schema = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                                max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
    Search(schema, digits, generations=1, population_size=2, epochs=1, run_dir=run,
           train_config=TrainConfig(precision="fp32"), verbose=False).run()
    return run


def _crafted(finished_run, tmp_path, edit) -> str:
    """A copy of ``finished_run`` in ``tmp_path`` whose config.json is changed by ``edit``."""
    run = tmp_path / "crafted"
    shutil.copytree(finished_run, run)
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))
    return str(run)


def _name_evil(config):
    config["schema"]["layers"][0]["type"] = "evilgenes:Evil"


def test_show_plot_export_and_resume_never_import_what_a_run_directory_names(
        finished_run, tmp_path, monkeypatch):
    (tmp_path / "evilgenes.py").write_text(EVIL)
    run = _crafted(finished_run, tmp_path, _name_evil)
    marker = tmp_path / "IMPORTED"
    # evilgenes.py is importable, as the working directory is for `python -m`: `show`, `plot`
    # and `export` run in this process (sys.modules tells), `search --resume` as a command.
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for args in (["show", run], ["plot", run], ["export", run], ["search", "--resume", run]):
        if args[0] == "search":
            code, err = (proc := cli(*args, cwd=tmp_path, check=False)).returncode, proc.stderr
        else:
            code, _, err = main(*args)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "unknown gene type 'evilgenes:Evil'" in lines[0], err
        assert "--import evilgenes" in lines[0]
        assert not marker.exists() and "evilgenes" not in sys.modules, args
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="nothing was imported"):
        Search.resume(run, verbose=False)
    with pytest.raises(ValueError, match="unknown gene type"):
        load_result(run)
    assert "evilgenes" not in sys.modules and not marker.exists()


def test_a_gene_module_the_caller_names_is_imported_and_resolves(tmp_path, monkeypatch):
    (tmp_path / "user_width_genes.py").write_text(USER_GENES)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from user_width_genes import WidthGene
        from pytorch_devol import GenomeSchema, Search, load_dataset
        from pytorch_devol.training import TrainConfig
        schema = GenomeSchema([(WidthGene, 2)], None, (1, 8, 8), 10)
        Search(schema, load_dataset("digits", limit=(200, 100)), generations=1,
               population_size=2, epochs=1, run_dir={str(tmp_path / "run")!r},
               train_config=TrainConfig(precision="fp32"), verbose=False).run()
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    run = str(tmp_path / "run")
    code, _, err = main("show", run)  # this process has never imported user_width_genes
    assert code == 2 and "--import user_width_genes" in err
    assert "user_width_genes" not in sys.modules
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code, shown, err = main("show", run, "--import", "user_width_genes")
        assert code == 0 and "WidthGene" in shown, err
        code, _, err = main("export", run, "--import", "user_width_genes")
        assert code == 0, err
        model, genome = load_exported_state_dict(tmp_path / "run" / "model_state_dict.pt",
                                                 gene_modules=["user_width_genes"])
    finally:
        sys.modules.pop("user_width_genes", None)
    assert model[-1].out_features == 10 and len(genome) == 4


def test_unknown_names_never_resolve_by_import():
    with pytest.raises(ValueError, match="nothing was imported"):
        gene_type_from_name("os:system")
    assert gene_type_from_name("pytorch_devol.schema.genes:Conv2dGene").__name__ == "Conv2dGene"


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["data"]["spec"].update(download=True), "keys"),
    (lambda c: c["data"]["spec"].update(name="../../etc"), "is not one of"),
    (lambda c: c["data"]["spec"].update(val_fraction="0.1; rm"), "val_fraction"),
    (lambda c: c["data"].update(spec=["digits"]), "keys"),
])
def test_the_saved_dataset_spec_is_checked_against_an_allow_list(finished_run, tmp_path, edit,
                                                                   message):
    run = _crafted(finished_run, tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        Search.resume(run, verbose=False)


def test_resume_loads_the_data_from_a_new_root(tmp_path, mnist_root):
    old = tmp_path / "old"
    shutil.copytree(mnist_root / "MNIST", old / "MNIST")
    data = load_dataset("mnist", root=old, limit=(300, 100))
    schema = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=1, max_filters=8,
                                max_dense_nodes=16, input_shape=(1, 28, 28), n_classes=10)
    run = tmp_path / "run"
    Search(schema, data, generations=1, population_size=2, epochs=1, run_dir=run,
           train_config=TrainConfig(precision="fp32"), verbose=False).run()
    new = tmp_path / "new"
    old.rename(new)
    with pytest.raises(FileNotFoundError):
        Search.resume(run, verbose=False)
    resumed = Search.resume(run, verbose=False, data_root=new)
    assert resumed.data.spec["root"] == str(new.resolve())
    assert len(resumed.run().history) == 2
    proc = cli("search", "--resume", str(run), "--data-root", str(new), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
