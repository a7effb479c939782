"""`reasonalign` command line: one sub-command per module, user errors as one line + exit 2.

Each command module imports its implementation (torch, transformers, ...) inside its `run()`, so
building the parser for `--help` or a recipe check stays fast; tests/test_layers.py checks that.
"""

import argparse
import os
import sys

from reasonalign.core.distributed import is_main
from reasonalign.core.errors import UserError
from reasonalign.pipeline import Commands


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Every command's parser; `argv` picks what `eval` lists (the options of its `--task` only)."""
    from reasonalign.cli import (align, annotate, baselines, data, demo, eval, export, generate, judge, model,
                                 recipe, reproduce, sample, train)

    parser = argparse.ArgumentParser(prog="reasonalign", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (data, model, train, eval, generate, sample, align, export, baselines, judge, annotate, recipe,
                   demo, reproduce):
        if module is eval:
            module.register(sub, argv)
        else:
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not is_main():  # under a launcher, one process speaks
        sys.stdout = open(os.devnull, "w")
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    # the command table a pipeline (recipe, demo, reproduce) runs its steps through: handed down, not imported
    args.commands = Commands(run=main, unknown_options=lambda line: build_parser(line).parse_known_args(line)[1])
    try:
        return args.run(args) or 0
    except UserError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, read-only, a file in the way: the path and the reason, not a traceback
        if args.debug or exc.filename is None:
            raise
        print(f"error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def locked(folder, command: str):
    """The lock of an output folder for one command (`core.lock`): taken by the main process only,
    after the options are checked and before any work."""
    from reasonalign.core.lock import output_lock

    return output_lock(folder, f"reasonalign {command} --output {folder}", enabled=is_main())


if __name__ == "__main__":
    sys.exit(main())
