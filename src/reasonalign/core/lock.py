"""One run per output folder: a lock file holding the owner's pid and command line.

Two `train` (or `eval`, ...) runs writing into one folder at once would each overwrite the
other's files and both exit 0; the lock makes the second one stop with one line before it does
any work. A lock left by a process that no longer exists (kill -9, a crashed machine) is taken
over, with a message saying so. The lock is created with O_EXCL, so two starting runs cannot
both take it.
"""

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from reasonalign.core.errors import UserError
from reasonalign.core.files import cannot_write

LOCK_FILE = ".reasonalign.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _owner(lock: Path) -> dict:
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # half-written by a process killed while taking it: treated as stale


def _stale(owner: dict) -> bool:
    """True when the owner is certainly gone: same host and its pid does not exist (or no owner at all)."""
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return True
    return owner.get("host") == socket.gethostname() and not _alive(pid)


def acquire(folder, command: str) -> Path:
    """Take the lock of `folder` (made if needed) or raise a one-line `UserError` naming its owner."""
    folder = Path(folder)
    lock = folder / LOCK_FILE
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                       "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    for _ in range(3):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if folder.exists() and not folder.is_dir():
                raise UserError(f"{folder}: is a file, not a folder; choose another --output") from None
            owner = _owner(lock)
            if not _stale(owner):
                raise UserError(f"{folder}: in use by another run (pid {owner.get('pid')} on {owner.get('host')}: "
                                f"{owner.get('command', '?')}); wait for it to finish or choose another --output")
            print(f"{folder}: taking over the lock of pid {owner.get('pid')}, which no longer runs "
                  f"({owner.get('command', '?')})", file=sys.stderr)
            lock.unlink(missing_ok=True)
            continue
        except OSError as exc:
            if folder.exists() and not folder.is_dir():
                raise UserError(f"{folder}: is a file, not a folder; choose another --output") from None
            raise cannot_write(exc, folder) from None
        try:
            os.write(fd, text.encode())
        except OSError as exc:
            os.close(fd)
            lock.unlink(missing_ok=True)
            raise cannot_write(exc, lock) from None
        os.close(fd)
        return lock
    raise UserError(f"{folder}: could not take the lock ({lock}); another run keeps taking it")


def release(lock: Path) -> None:
    """Remove the lock if it is still this process's."""
    if _owner(lock).get("pid") == os.getpid():
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def output_lock(folder, command: str, enabled: bool = True):
    """Hold the lock of `folder` for the block. A folder this call created and that is still empty
    (but for the lock) when the block fails is removed, so a refused run leaves nothing behind."""
    if not enabled:
        yield None
        return
    folder = Path(folder)
    created = not folder.exists()
    lock = acquire(folder, command)
    ok = False
    try:
        yield lock
        ok = True
    finally:
        release(lock)
        if created and not ok:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
