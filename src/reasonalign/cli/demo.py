"""`reasonalign demo`: untuned vs L vs L+R on DFAR test (full and clean), in minutes on a CPU.

The recipe is `reasonalign/recipes/demo.yaml`, run by the recipe runner; `DemoConfig` is made
from that file's vars, so its options, defaults and help live in one place.
"""

import dataclasses

from reasonalign.core import config as cfg
from reasonalign.core.config import option
from reasonalign.pipeline.recipe import BUILTIN, parse_seeds, read_recipe, run_recipe, run_seeds, var_specs

RECIPE = BUILTIN / "demo.yaml"
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _demo_config():
    specs = var_specs(RECIPE, read_recipe(RECIPE))
    fields = [(name, _TYPES[s["type"]] | None if s["default"] is None else _TYPES[s["type"]],
               option(s["default"], " ".join(s["help"].split()))) for name, s in specs.items()]
    # not a var of the recipe: it runs the recipe once per seed (pipeline/recipe.py run_seeds)
    fields.append(("seeds", str | None, option(None, "run the demo once per seed (e.g. 0,1,2), each in "
                                                    "OUTPUT/seed-S, and report mean and spread over seeds")))
    return dataclasses.make_dataclass("DemoConfig", fields)


DemoConfig = _demo_config()


def register(sub) -> None:
    p = sub.add_parser("demo", help="untuned vs L vs L+R: accuracy and MAR on DFAR test, full and clean (what `make demo` runs)",
                       description=__doc__)
    cfg.add_arguments(p, DemoConfig)
    p.set_defaults(run=run)


def run(args) -> int:
    settings = dataclasses.asdict(cfg.build(DemoConfig, args))
    seeds = settings.pop("seeds")
    if seeds:
        return run_seeds(str(RECIPE), parse_seeds(seeds), args.commands, settings=settings)
    return run_recipe(str(RECIPE), args.commands, settings=settings)
