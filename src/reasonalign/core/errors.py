"""One exception type for everything the user can fix.

The CLI prints its message as a single line (`error: FILE:ROW: problem`) and exits with
status 2; `--debug` shows the traceback instead.
"""


class UserError(Exception):
    """A problem with the user's input (file, option, environment), not a bug."""


def at(path, row, problem: str) -> UserError:
    """Build the canonical `FILE:ROW: problem` error (row may be None for whole-file problems)."""
    where = f"{path}:{row}" if row is not None else f"{path}"
    return UserError(f"{where}: {problem}")
