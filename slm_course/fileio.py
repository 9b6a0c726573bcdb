"""Files that a crash cannot leave half-written: one atomic-write helper every writer uses.

A writer puts the bytes under a temporary name beside the target, flushes them to disk (fsync),
then renames over the target. A rename either happens or it doesn't, so a reader sees the old
file or the new one, never half of one. The temporary names follow one scheme, ``.<name>.tmp-*``,
so :func:`remove_temporaries` can clear what a killed writer left behind.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

TEMP_GLOB = ".*.tmp-*"  # every temporary name temporary_path() makes matches this


def temporary_path(path: str | os.PathLike) -> Path:
    """A hidden name beside ``path``, unique to this process and thread, to write and then rename.

    Example: ``temporary_path("runs/a/model.safetensors")`` -> ``runs/a/.model.safetensors.tmp-4242-1``
    """
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")


@contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open ``path`` for writing in binary, so that it only appears, complete, if the block succeeds.

    For writers that stream (a tokenized split of gigabytes); :func:`atomic_write` is the one-shot
    form. On an exception the temporary file is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` always holds either the old or the new bytes."""
    with atomic_open(path) as file:
        file.write(data)


def write_json(path: str | os.PathLike, values: dict[str, Any]) -> None:
    """Write ``values`` as indented JSON, atomically."""
    atomic_write(path, (json.dumps(values, indent=2) + "\n").encode())


def read_json(path: str | os.PathLike, what: str = "file") -> dict[str, Any]:
    """Read a JSON object, with an error that names the file and what to do if it is damaged."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing ({what})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); the {what} is damaged: delete it and "
                         f"recreate it (retrain, or prepare the data again)") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} should hold a JSON object ({what}), not {type(values).__name__}")
    return values


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename durable: on POSIX the directory entry itself must be flushed."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(directory: str | os.PathLike, keep_running: bool = False) -> list[Path]:
    """Delete the temporary files a killed writer left in ``directory``; return what was removed.

    ``keep_running`` spares the files of writers that are still alive (the process id is in the
    name), for a directory that several processes may fill at once, such as the data cache.

    Example: ``remove_temporaries("runs/a")`` -> ``[Path("runs/a/.state.pt.tmp-4242-1")]``
    """
    removed = []
    for tmp in Path(directory).glob(TEMP_GLOB):
        if keep_running and _writer_is_running(tmp):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _writer_is_running(tmp: Path) -> bool:
    """Whether the process that named ``tmp`` (``.<name>.tmp-<pid>-<thread>``) still exists."""
    match = re.search(r"\.tmp-(\d+)-\d+$", tmp.name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to someone else
        return True
    return True
