"""`reasonalign data validate|audit`: check a dataset before spending hours training on it."""

import json

from reasonalign.data import load, parse_columns, parse_label_map
from reasonalign.data.audit import audit, render
from reasonalign.core.verdict import LABELS

SPEC_HELP = ("a .csv/.tsv/.jsonl/.json/.parquet file, a save_to_disk folder[@SPLIT], hf:NAME[:CONFIG][@SPLIT], "
             "dfar[:train|test|test-clean] or ethos:PATH")


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="validate or audit datasets")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    validate = sub.add_parser("validate", help="check a dataset and print a one-line summary")
    validate.add_argument("path", metavar="PATH", help=SPEC_HELP)
    validate.add_argument("--method", choices=("l", "lr"), help="lr also requires a reason on every row")
    _add_format_options(validate)
    validate.set_defaults(run=run_validate)

    audit_ = sub.add_parser("audit", help="label balance, duplicates and train/test leakage")
    audit_.add_argument("--train", required=True, metavar="A", help=SPEC_HELP)
    audit_.add_argument("--test", required=True, metavar="B", help=SPEC_HELP)
    audit_.add_argument("--json", action="store_true", help="print the full report as JSON")
    _add_format_options(audit_)
    audit_.set_defaults(run=run_audit)


def _add_format_options(parser) -> None:
    # Parsed in _load, not via type=: argparse would turn a UserError into a traceback.
    parser.add_argument("--columns", metavar="C",
                        help="column names, e.g. statement=text,label=y,reason=why (your own files and datasets)")
    parser.add_argument("--label-map", metavar="M",
                        help="raw label values, e.g. no=ethical,yes=unethical (default: 0/1, ethical/unethical)")


def _load(spec, args, method=None):
    columns = parse_columns(args.columns) if args.columns else None
    label_map = parse_label_map(args.label_map) if args.label_map else None
    return load(spec, method=method, columns=columns, label_map=label_map)


def run_validate(args) -> int:
    ds = _load(args.path, args, args.method)
    counts = ", ".join(f"{ds.labels().count(i)} {word}" for i, word in enumerate(LABELS))
    with_reason = sum(e.reason is not None for e in ds)
    reasons = ("reasons on every row" if ds.has_reasons else
               f"reasons on {with_reason} of {len(ds)} rows" if with_reason else "no reasons")
    print(f"ok: {args.path}: {len(ds)} rows ({counts}), {reasons}")
    return 0


def run_audit(args) -> int:
    report = audit(_load(args.train, args), _load(args.test, args))
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0
