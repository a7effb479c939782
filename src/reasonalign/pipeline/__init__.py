"""Pipelines of reasonalign commands: recipes (steps in order, pipeline/recipe.py) and reproduce (cells
per seed, keyed by what they run, pipeline/reproduce.py).

A pipeline runs each step as a command line through the `Commands` the CLI hands it, so this layer
sits below `cli` and never imports it back.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Commands:
    """The command table of the CLI, as much of it as a pipeline needs."""

    run: Callable[[list[str]], int]  # argv -> exit status; user errors printed as one line (cli.main)
    # argv -> the options its command does not know; SystemExit when argparse rejects it outright
    unknown_options: Callable[[list[str]], list[str]]
