"""The package's imports point one way: each module may import only modules below it.

A module that imports one above it makes a circle waiting to happen (``model`` importing
``sample`` importing ``train`` importing ``model`` was one), and makes the lower module impossible
to read, test or reuse on its own. The order here is the architecture; a new module takes its
place in it. Imports inside functions count too: hiding an upward import in a function is how
such circles were dodged before.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "slm_course"

# Lowest first. A module may import the modules listed before it, never after.
LAYERS = [
    "config",  # model and training sizes: pure dataclasses
    "runtime",  # device, precision, seeding, eval mode, cache directory
    "fileio",  # atomic writes
    "bpe_train",
    "tokenizer",
    "fused_loss",  # the lm_head + cross-entropy of a CPU training step, in one pass
    "model",  # imports only torch, config and fused_loss
    "corpus.synthetic_templates",
    "corpus.synthetic",
    "corpus.sources",
    "corpus",
    "data",  # prepare, load_tokens, get_batch, what a run trains on
    "bigram",  # the count-based baseline every model must beat
    "checkpoint",  # saving and loading runs
    "sample",
    "presets",
    "optim",
    "distributed",
    "trainer",
    "train",  # the command line
    "export",  # Hugging Face transformers interop
    "lessons.style",
    "lessons.viz",
    "lessons.demo",
    "lessons.scaling",
    "lessons.widgets",
    "lessons.exercises",
    "lessons.solutions",
    "lessons",
]
RANK = {name: rank for rank, name in enumerate(LAYERS)}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """``slm_course/corpus/sources.py`` -> ``corpus.sources``; a package's ``__init__`` is the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """The slm_course modules that ``path`` imports, anywhere in it (inside functions too).

    Example: ``from slm_course import sample`` and ``from slm_course.sample import generate``
    both give ``{"sample"}``.
    """
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from .x import y
                base = package[: len(package) - node.level + 1]
                target = ".".join(["slm_course", *base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if _is_module(submodule, root) else target)
    return {m.removeprefix("slm_course.") for m in found if m.startswith("slm_course.")}


def _is_module(dotted: str, root: Path) -> bool:
    relative = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return dotted.startswith("slm_course.") and (
        (root / relative).with_suffix(".py").exists() or (root / relative / "__init__.py").exists()
    )


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if module_name(p))


def test_every_module_has_a_place_in_the_layers():
    unplaced = [module_name(p) for p in MODULES if module_name(p) not in RANK]
    assert not unplaced, f"modules with no place in LAYERS (add them where they belong): {unplaced}"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_imports_one_above_it(path):
    name = module_name(path)
    imports = package_imports(path)
    unknown = sorted(m for m in imports if m not in RANK)
    upward = sorted(m for m in imports if m in RANK and RANK[m] >= RANK[name] and m != name)
    assert not unknown, f"{name} imports modules with no place in LAYERS: {unknown}"
    assert not upward, f"{name} imports modules above it in the layering: {upward}"


@pytest.mark.parametrize("module, allowed", [("model", {"config", "fused_loss"}), ("fused_loss", set())])
def test_the_model_imports_only_torch_and_its_own_parts(module, allowed):
    """nanoGPT's rule: the model file reads on its own, with nothing of training or sampling in it."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert roots <= {"__future__", "math", "torch", "slm_course"}
    assert package_imports(PACKAGE / f"{module}.py") <= allowed


def test_the_checker_sees_imports_hidden_in_functions_and_relative_ones(tmp_path):
    """The layering test can fail: imports planted in a fake package are all found."""
    fake = tmp_path / "slm_course"
    (fake / "corpus").mkdir(parents=True)
    for name in ("__init__.py", "trainer.py", "sample.py", "corpus/__init__.py", "corpus/sources.py"):
        (fake / name).write_text("")
    (fake / "config.py").write_text(
        "import slm_course.sample\n"
        "def f():\n    from slm_course.trainer import train_model\n"
        "from . import corpus\n"
    )
    (fake / "corpus" / "synthetic.py").write_text("from .sources import Stories\nfrom .. import trainer\n")
    assert package_imports(fake / "config.py", fake) == {"sample", "trainer", "corpus"}
    assert package_imports(fake / "corpus" / "synthetic.py", fake) == {"corpus.sources", "trainer"}
