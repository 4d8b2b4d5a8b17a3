"""Atomic file and folder writes, so a crash never leaves a half-written artefact that looks finished."""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tsvq.errors import ConfigError, DataError


def _default_mode(directory: bool) -> int:
    """The mode a plain open()/mkdir() would give under the current umask (mkstemp/mkdtemp use 0600/0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode(directory=False))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically, human-readable."""
    with atomic_file(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=False, default=_json_default)
        handle.write("\n")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


OWNER_MARKER = ".tsvq"  # written into every folder tsvq makes: only such a folder may ever be replaced


_TRAINING_RUN = {"checkpoints", "logs", "model", "cache", "training_summary.json", ".tsvq-lock"}
# Folders an earlier tsvq wrote before it marked them: an index file that only tsvq writes (holding the key named),
# and nothing beside it that such a folder does not hold. They stay tsvq's, so upgrading does not strand a run.
_EARLIER_OUTPUTS = [
    ("manifest.json", "config_hash", {"manifest.json", "windows.f32", "index.npz", "normalization.json"}),  # store
    ("pipeline.json", "components", {"pipeline.json", "codec", "priors", "diffusion", "wavenet"}),
    ("samples.json", "sampling_rate_hz", {"samples.json", "samples.npy", "codes.npy", "*.png", "wfdb"}),
    ("report.json", "format_version", {"report.json", "*.png"}),
    ("training_summary.json", "steps", _TRAINING_RUN),
    ("checkpoints", None, _TRAINING_RUN),  # a training run that was interrupted
    (
        "demo_settings.json",
        "fingerprint",
        {"demo_settings.json", "store", "codec", "diffusion", "wavenet", "maskgit", "pipeline", "report", "samples-*"},
    ),
    ("prior.json", "kind", {"prior.json", "model", "denoiser", "scheduler"}),
    ("diffusion_pytorch_model.safetensors", None, {"config.json", "diffusion_pytorch_model.safetensors"}),
]


def is_tsvq_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder tsvq made: it holds the ownership marker, or it is one of the folders an
    earlier tsvq wrote, recognised by its index file and its contents."""
    path = Path(path)
    if (path / OWNER_MARKER).is_file():
        return True
    if not path.is_dir() or path.is_symlink():
        return False
    names = {p.name for p in path.iterdir()}
    for index, key, allowed in _EARLIER_OUTPUTS:
        if index in names and all(any(fnmatch.fnmatchcase(n, pattern) for pattern in allowed) for n in names):
            if key is None:
                return True
            with contextlib.suppress(OSError, ValueError):
                content = json.loads((path / index).read_text())
                if isinstance(content, dict) and key in content:
                    return True
    return False


def _holds(parent: Path, child: Path) -> bool:
    return child == parent or parent in child.parents


def check_output_path(out: str | os.PathLike, inputs=(), what: str = "output", replaced: bool = True) -> None:
    """Refuse an output that is, sits inside, or (when it is ``replaced`` whole) holds one of ``inputs`` (files or
    folders a command reads): replacing a folder would destroy an input inside it, and an output inside an input
    folder would mix tsvq's files into the user's data."""
    target = Path(out).resolve()
    for item in inputs:
        if item is None:
            continue
        source = Path(item).resolve()
        if _holds(source, target) or (replaced and _holds(target, source)):
            relation = "is" if source == target else ("is inside" if _holds(source, target) else "holds")
            raise DataError(f"{out}: the {what} {relation} the input {item}; choose a path apart from the inputs")


def check_output_file(path: str | os.PathLike, overwrite: bool, made_by_tsvq: Callable[[Path], bool]) -> None:
    """A file output (a compressed record, a WFDB record's files) replaces an existing file only with ``overwrite``,
    and only a file tsvq wrote (``made_by_tsvq``, which reads what tsvq puts in its files): a user's is never
    replaced, whatever the flags."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; name the file to write")
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not made_by_tsvq(path):
        raise DataError(f"{path}: exists and is not a file tsvq wrote; choose another output (it is never replaced)")
    if not overwrite:
        raise DataError(f"{path}: already exists; pass --overwrite (overwrite=True) to replace it")


def claim_output_folder(path: str | os.PathLike, overwrite: bool, what: str = "output folder") -> None:
    """Check that writing ``path`` destroys nothing a user made: it must not exist, be an empty folder, or be a
    folder tsvq made (then only with ``overwrite``)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir() or path.is_symlink():
        raise DataError(f"{path}: exists and is not a folder tsvq made; choose another {what}")
    if is_tsvq_output(path):
        if not overwrite:
            raise DataError(
                f"{path}: a {what} tsvq made is already there; pass --overwrite (overwrite=True) to replace it"
            )
        return
    _refuse_foreign(path, what, "replaces")


def _refuse_foreign(folder: Path, what: str, action: str) -> None:
    """A folder that holds anything and is not tsvq's is the user's: refused, whatever the flags. Decided from one
    listing: tsvq writes its marker before anything else, so a listing that holds a file of tsvq's holds the marker
    (another process may be claiming the same folder this very moment)."""
    names = {entry.name for entry in folder.iterdir()} if folder.is_dir() else set()
    if names and OWNER_MARKER not in names and not is_tsvq_output(folder):
        raise DataError(
            f"{folder}: exists and was not made by tsvq (no {OWNER_MARKER} marker); tsvq never {action} "
            f"a folder it did not make: choose another {what}, or empty or remove it yourself"
        )


def _mark(folder: Path, what: str) -> None:
    """Write the ownership marker into a folder tsvq is making. Written in place, not through a temporary file:
    ownership is the file's existence, and a temporary file beside a missing marker would make the folder look like
    the user's to another process claiming it at the same moment (the ranks of one training do)."""
    (folder / OWNER_MARKER).write_text(json.dumps({"made_by": "tsvq", "what": what}) + "\n")


def claim_workspace(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Make (or reuse) a folder tsvq writes into over time (a training run, the demo): refused when it already
    holds files tsvq did not put there; marked as tsvq's otherwise."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: exists and is not a folder; choose another {what}")
    _refuse_foreign(folder, what, "writes into")
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / OWNER_MARKER).is_file():  # new, empty, or written by an earlier tsvq: marked now
        _mark(folder, what)
    return folder


@contextlib.contextmanager
def removed_if_refused(folder: str | os.PathLike) -> Iterator[None]:
    """A run refused before it wrote anything (a missing codec, too few windows for a batch) leaves no folder: when
    the block raises, ``folder`` goes if the block made it and it holds only the marker and lock that claiming it
    put there. A folder that was there before is left as it was; only the main process removes (``RANK``)."""
    folder = Path(folder)
    existed = folder.exists() or folder.is_symlink()
    try:
        yield
    except BaseException:
        claimed_only = folder.is_dir() and {p.name for p in folder.iterdir()} <= {OWNER_MARKER, ".tsvq-lock"}
        if not existed and claimed_only and os.environ.get("RANK", "0") == "0":
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}.tmp-{socket.gethostname()}-"


def _remove_abandoned(path: Path) -> None:
    """Temporary folders a killed tsvq process on this machine left beside ``path`` (its marker says tsvq made it;
    its process id is gone)."""
    prefix = _temporary_prefix(path)
    for leftover in path.parent.glob(glob.escape(prefix) + "*"):
        pid = leftover.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)) and is_tsvq_output(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = True, what: str = "output folder") -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds.

    Only a folder tsvq made (it holds the ``.tsvq`` marker, written here) or an empty one is ever replaced, and a
    tsvq folder only with ``overwrite``. A folder being written is named ``.<name>.tmp-<host>-<pid>-*`` and is never
    mistaken for a finished one; one a killed process left is removed by the next write of the same folder. The
    previous folder is kept until the new one is complete, then removed.
    """
    path = Path(path)
    if not path.name or path.resolve() == Path.cwd():
        raise DataError(f"{path}: name a folder to write, not the current folder")
    claim_output_folder(path, overwrite, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(path)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_temporary_prefix(path)}{os.getpid()}-", dir=path.parent))
    os.chmod(tmp, _default_mode(directory=True))
    try:
        _mark(tmp, what)
        yield tmp
        claim_output_folder(path, overwrite, what)  # nothing of the user's appeared there meanwhile
        old = None
        if path.exists():
            old = tmp.with_name(tmp.name.replace(".tmp-", ".old-", 1))
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold ``folder/.tsvq-lock`` for the block, so two runs never write one folder at once (the lock goes with
    the process, also when it is killed)."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".tsvq-lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConfigError(
                f"{folder}: {holder} is writing to this folder; wait for it to finish or choose another output folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"tsvq process {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read JSON with an error that names the file when it is missing or corrupt."""
    path = Path(path)
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: {what} not found") from error
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: {what} is not valid JSON ({error})") from error
