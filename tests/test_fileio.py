"""fileio: the one atomic-write helper, its temporary names, and clearing what killed writers left."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from slm_course import fileio


def test_atomic_open_streams_and_publishes_only_on_success(tmp_path):
    path = tmp_path / "tokens.bin"
    with fileio.atomic_open(path) as file:
        file.write(b"first half ")
        assert not path.exists()  # a reader sees nothing until the block ends
        file.write(b"second half")
    assert path.read_bytes() == b"first half second half"
    with pytest.raises(RuntimeError, match="encoder crashed"), fileio.atomic_open(path) as file:
        file.write(b"partial")
        raise RuntimeError("encoder crashed")
    assert path.read_bytes() == b"first half second half" and [p.name for p in tmp_path.iterdir()] == ["tokens.bin"]


def test_temporary_names_follow_the_one_scheme_recovery_knows(tmp_path):
    tmp = fileio.temporary_path(tmp_path / "model.safetensors")
    assert tmp.parent == tmp_path and tmp.match(fileio.TEMP_GLOB) and str(os.getpid()) in tmp.name


def test_remove_temporaries_can_spare_the_files_of_writers_still_running(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_tmp = tmp_path / f".train.bin.tmp-{int(dead.stdout)}-1"
    live_tmp = fileio.temporary_path(tmp_path / "validation.bin")  # this process: alive
    for tmp in (dead_tmp, live_tmp, tmp_path / "train.bin"):
        tmp.write_bytes(b"x")
    assert fileio.remove_temporaries(tmp_path, keep_running=True) == [dead_tmp]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live_tmp.name, "train.bin"])
    assert fileio.remove_temporaries(tmp_path) == [live_tmp]  # a run directory has one writer: clear all
    assert [p.name for p in tmp_path.iterdir()] == ["train.bin"]


def test_json_round_trip_and_errors_that_name_the_file(tmp_path):
    path = tmp_path / "config.json"
    fileio.write_json(path, {"lr": 0.001, "steps": [1, 2]})
    assert fileio.read_json(path) == {"lr": 0.001, "steps": [1, 2]} and path.read_text().endswith("\n")
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"config\.json should hold a JSON object \(run config\)"):
        fileio.read_json(path, "run config")
    path.write_text(json.dumps({"cut": "short"})[:-3])
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON .*delete it and recreate it"):
        fileio.read_json(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.json is missing \(sidecar\)"):
        fileio.read_json(tmp_path / "missing.json", "sidecar")
