"""The README's two commands are the ones CI runs."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)
    return blocks[:2]


def test_readme_has_setup_and_test_commands_and_ci_runs_them():
    setup, test = readme_commands()
    ci = (REPO / ".ci" / "run").read_text()
    install = re.search(r"(pip install -e \S+)", setup).group(1)
    assert install in ci, "CI must install the package the way the README does"
    test_command = test.split("&&")[-1].strip()
    assert test_command == "python -m pytest --nbval"
    assert test_command in ci, "CI must run exactly the README's test command"
    assert "torch==2.13.0" in ci, "CI pins the CPU torch build that lies on this machine's disk"
