"""Conversion: the bundle's files, determinism, and stage notebooks that run under papermill."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml
from conftest import EXAMPLES, cli, code, md, notebook, write

from jupyter_mlops.artifacts import ArtifactStore
from jupyter_mlops.bundle import read_bundle


def _pipeline_notebook(folder: Path) -> Path:
    return write(
        notebook(
            md("# A small pipeline"),
            code("import numpy as np", "setup"),
            code("n: int = 5  # how many\nscale = 2.0", "parameters"),
            code("values = np.arange(n) * scale", "stage:make"),
            code("total = float(values.sum())", "stage:sum", "metrics"),
        ),
        folder / "nb" / "small.ipynb",
    )


def _digest_tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_convert_writes_the_bundle(tmp_path):
    source = _pipeline_notebook(tmp_path)
    before = source.read_bytes()
    result = cli("convert", str(source), "-o", "bundle", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "bundle"
    assert sorted(p.name for p in out.iterdir()) == [
        "params.yaml",
        "pipeline.yaml",
        "requirements.txt",
        "stages",
    ]
    assert sorted(p.name for p in (out / "stages").iterdir()) == ["01_make.ipynb", "02_sum.ipynb"]
    spec = yaml.safe_load((out / "pipeline.yaml").read_text())
    assert spec["schema_version"] == 1 and spec["name"] == "small"
    assert spec["source"]["notebook"] == "../nb/small.ipynb"
    assert spec["source"]["sha256"] == hashlib.sha256(before).hexdigest()
    assert spec["parameters"]["n"] == {
        "type": "int",
        "default": 5,
        "help": "how many",
        "optional": False,
    }
    assert spec["stages"][1]["inputs"] == {"values": "make"}
    assert spec["stages"][1]["metrics"] == ["total"]
    assert spec["edges"] == [{"source": "make", "target": "sum", "variables": ["values"]}]
    assert yaml.safe_load((out / "params.yaml").read_text()) == {"n": 5, "scale": 2.0}
    requirements = (out / "requirements.txt").read_text().splitlines()
    import numpy

    assert f"numpy=={numpy.__version__}" in requirements
    assert any(line.startswith("jupyter-mlops==") for line in requirements)
    assert source.read_bytes() == before


def test_stage_notebook_layout(tmp_path):
    source = _pipeline_notebook(tmp_path)
    cli("convert", str(source), "-o", "bundle", cwd=tmp_path)
    nb = nbformat.read(tmp_path / "bundle" / "stages" / "02_sum.ipynb", as_version=4)
    kinds = [c.metadata.get("jupyter_mlops", {}) for c in nb.cells]
    assert [k.get("generated") or k.get("role") for k in kinds] == [
        "header",
        "parameters",
        "setup",
        "load-inputs",
        "stage",
        "save-outputs",
    ]
    assert nb.cells[1].metadata.tags == ["parameters"]
    assert "mlops_artifacts" in nb.cells[1].source
    assert kinds[2]["source_cell"] == 1 and kinds[4]["source_cell"] == 4
    assert "(values,) = _mlops.load_inputs(" in nb.cells[3].source
    assert "metrics=['total']" in nb.cells[5].source
    assert nb.metadata.kernelspec.name == "python3"
    nbformat.validate(nb)


def test_conversion_is_deterministic(tmp_path):
    source = _pipeline_notebook(tmp_path)
    cli("convert", str(source), "-o", "one", cwd=tmp_path)
    cli("convert", str(source), "-o", "two", cwd=tmp_path)
    first = _digest_tree(tmp_path / "one")
    assert first == _digest_tree(tmp_path / "two")
    cli("convert", str(source), "-o", "one", cwd=tmp_path)
    assert _digest_tree(tmp_path / "one") == first


def test_examples_convert_deterministically(tmp_path):
    for example in sorted(EXAMPLES.glob("*.ipynb")):
        before = example.read_bytes()
        for name in ("a", "b"):
            result = cli("convert", str(example), "-o", f"{example.stem}-{name}", cwd=tmp_path)
            assert result.returncode == 0, result.stderr
        a, b = (_digest_tree(tmp_path / f"{example.stem}-{n}") for n in ("a", "b"))
        assert a == b and len(a) > 4
        assert example.read_bytes() == before


def test_stages_renamed_away_are_removed(tmp_path):
    source = _pipeline_notebook(tmp_path)
    cli("convert", str(source), "-o", "bundle", cwd=tmp_path)
    nb = nbformat.read(source, as_version=4)
    nb.cells[4].metadata.tags = ["stage:add_up", "metrics"]
    nbformat.write(nb, source)
    cli("convert", str(source), "-o", "bundle", cwd=tmp_path)
    names = sorted(p.name for p in (tmp_path / "bundle" / "stages").iterdir())
    assert names == ["01_make.ipynb", "02_add_up.ipynb"]


def test_stage_notebooks_run_under_plain_papermill(tmp_path):
    source = _pipeline_notebook(tmp_path)
    cli("convert", str(source), "-o", "bundle", cwd=tmp_path)
    store = tmp_path / "handover"
    papermill = str(Path(sys.executable).parent / "papermill")
    for stage, extra in (("01_make", ["-p", "n", "4"]), ("02_sum", [])):
        result = subprocess.run(
            [
                papermill,
                f"bundle/stages/{stage}.ipynb",
                f"{stage}.out.ipynb",
                "-p",
                "mlops_artifacts",
                str(store),
                *extra,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
    artifacts = ArtifactStore(store)
    assert list(artifacts.load("make", ["values"])["values"]) == [0.0, 2.0, 4.0, 6.0]
    assert artifacts.read_record("sum").metrics == {"total": 12.0}


def test_read_bundle_round_trip(tmp_path):
    source = _pipeline_notebook(tmp_path)
    cli("convert", str(source), "-o", "bundle", cwd=tmp_path)
    bundle = read_bundle(tmp_path / "bundle" / "pipeline.yaml")
    assert bundle.stage_names == ["make", "sum"]
    assert bundle.stage("sum").inputs == {"values": "make"}
    assert [p.name for p in bundle.parameters] == ["n", "scale"]
    assert bundle.source_path == source.resolve()
    assert bundle.workdir_path == source.parent.resolve()


def test_convert_refuses_a_notebook_with_errors(tmp_path):
    path = write(notebook(code("print(nowhere)", "stage:one")), tmp_path / "bad.ipynb")
    result = cli("convert", str(path), "-o", "bundle", cwd=tmp_path)
    assert result.returncode == 2
    assert "cell 0" in result.stderr and "nowhere" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "bundle").exists()


def test_bad_bundles_are_clear_errors(tmp_path):
    (tmp_path / "p.yaml").write_text("schema_version: 99\n")
    result = cli("run", "p.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "schema_version" in result.stderr
    result = cli("run", "missing.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "no such file" in result.stderr


def test_the_distribution_map_is_kept_until_a_distribution_is_installed(
    tmp_path: Path, monkeypatch
) -> None:
    """requirements.txt's pins come from a map of every installed distribution, kept on
    disk; installing a distribution (a new `.dist-info` on sys.path) builds it again."""
    from jupyter_mlops import requirements

    site = tmp_path / "site"
    (site / "tidy").mkdir(parents=True)
    (site / "tidy" / "__init__.py").write_text("")
    monkeypatch.setenv("JUPYTER_MLOPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(site))
    requirements._module_distributions.cache_clear()
    assert requirements.pinned_requirements(["tidy"])[-1] == (
        "# tidy: no installed distribution provides it"
    )
    assert len(list((tmp_path / "cache" / "distributions").glob("*.json"))) == 1

    info = site / "tidy_data-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tidy-data\nVersion: 1.2\n")
    (info / "RECORD").write_text("tidy/__init__.py,,\n")
    requirements._module_distributions.cache_clear()
    assert "tidy-data==1.2" in requirements.pinned_requirements(["tidy"])
    assert len(list((tmp_path / "cache" / "distributions").glob("*.json"))) == 2
    requirements._module_distributions.cache_clear()

    # Each install leaves a map behind: only the newest few are kept.
    folder = tmp_path / "cache" / "distributions"
    for n in range(requirements.KEPT_MAPS + 3):
        (folder / f"old{n}.json").write_text("{}")
        os.utime(folder / f"old{n}.json", (n, n))  # older than the two above
    requirements._module_distributions.cache_clear()
    (site / "tidy_extra-0.1.dist-info").mkdir()
    requirements.pinned_requirements(["tidy"])
    assert len(list(folder.glob("*.json"))) == requirements.KEPT_MAPS
    requirements._module_distributions.cache_clear()
