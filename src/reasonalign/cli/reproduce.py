"""`reasonalign reproduce --config configs/reproduce-cpu.yaml`: the paper's table in one command.

The config format, cells and their keys: pipeline/reproduce.py.
"""

from pathlib import Path

from reasonalign.pipeline.reproduce import reproduce


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="the paper's table in one command: cells (resumable), table, plots, report",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the reproduce config, e.g. configs/reproduce-cpu.yaml")
    p.add_argument("--seeds", metavar="S,S,...", help="run only these of the config's seeds (e.g. 0)")
    p.add_argument("--output", help="replace the config's output folder")
    p.add_argument("--set", action="append", default=[], metavar="VAR=VALUE",
                   help="set one of the config's vars, e.g. ethos=/data/Ethos_Dataset_Binary.csv")
    p.add_argument("--dry-run", action="store_true", help="list the cells, which are done and which would run")
    p.add_argument("--readme", metavar="README.md", help="then replace the block between <!-- BLOCK:begin --> and "
                                                         "<!-- BLOCK:end --> in this file with the results (BLOCK: "
                                                         "the config's readme_block, default reproduce)")
    p.set_defaults(run=run)


def run(args) -> int:
    return reproduce(Path(args.config), args.commands, output=args.output, seeds=args.seeds, settings=args.set,
                     dry_run=args.dry_run, readme=args.readme)
