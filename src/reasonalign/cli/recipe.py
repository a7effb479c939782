"""`reasonalign recipe FILE.yaml|NAME`: a pipeline of reasonalign commands (e.g. train -> sample -> align -> eval).

The recipe format and runner: pipeline/recipe.py.
"""

from reasonalign.core.errors import UserError
from reasonalign.pipeline.recipe import BUILTIN, parse_seeds, run_recipe, run_seeds


def register(sub) -> None:
    p = sub.add_parser("recipe", help="run a multi-step YAML recipe (train -> sample -> align -> eval)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("file", metavar="FILE.yaml|NAME",
                   help=f"the recipe, e.g. configs/aft-aqua-cpu.yaml, or a shipped one: "
                        f"{', '.join(sorted(p.stem for p in BUILTIN.glob('*.yaml')))}")
    p.add_argument("--output", help="replace the recipe's output folder")
    p.add_argument("--set", action="append", default=[], metavar="VAR=VALUE", help="set a var of the recipe")
    p.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    p.add_argument("--resume", action="store_true", help="skip the steps that already finished in OUTPUT with the "
                                                         "same command line and the same earlier steps")
    p.add_argument("--seeds", metavar="S,S,...", help="run the recipe once per seed (its `seed` var), each in "
                                                      "OUTPUT/seed-S, and report mean and spread over seeds")
    p.set_defaults(run=run)


def run(args) -> int:
    settings = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item}: expected VAR=VALUE")
        if not value.strip():  # would silently drop the option the var fills
            raise UserError(f"--set {item}: empty value; give a value (none to unset it) or leave --set out")
        settings[name.strip()] = value.strip()
    if args.seeds:
        return run_seeds(args.file, parse_seeds(args.seeds), args.commands, output=args.output, settings=settings,
                         dry_run=args.dry_run, resume=args.resume)
    return run_recipe(args.file, args.commands, output=args.output, settings=settings, dry_run=args.dry_run,
                      resume=args.resume)
