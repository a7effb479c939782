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

    arith = sub.add_parser("arith", help="write the generated arithmetic problems (train/validation/test) to files",
                           description="Write the multi-step arithmetic word problems that `arith:SPLIT` / "
                                       "`arithN:SPLIT` name (GSM8K's format plus `chain`, the gold intermediate "
                                       "results) and manifest.json with each file's sha256.")
    arith.add_argument("--steps", type=int, default=6, help="operations per problem: the difficulty (1 to 8; 6 = the "
                                                         "default, chosen on validation)")
    arith.add_argument("--output", required=True, metavar="DIR", help="folder for the three files and the manifest")
    arith.set_defaults(run=run_arith)

    check = sub.add_parser("check-reasons", help="human reasons that cannot serve as gold: written for another "
                                                 "statement, or arguing the other label",
                           description="Flag rows whose human reason belongs to another statement (its embedding "
                                       "is nearer at least 10 other statements than its own) or argues the other "
                                       "label (a stance classifier of human reasons, or the reason's own verdict "
                                       "words). Prints the count and every flagged row; --output writes one JSON "
                                       "line per row, which `eval --task reasons --exclude-gold` reads to leave "
                                       "the flagged rows out of MAR.")
    check.add_argument("path", metavar="DATA", help=SPEC_HELP + " (with a reason column)")
    check.add_argument("--pool", metavar="TRAIN", help="fit the stance classifier on these human reasons, e.g. "
                                                     "dfar:train for dfar:test (default: the data itself, 5-fold "
                                                     "out of fold)")
    check.add_argument("--output", metavar="FILE.jsonl", help="write every row's check (flags, numbers) here")
    _add_format_options(check)
    check.set_defaults(run=run_check_reasons)


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


def run_check_reasons(args) -> int:
    from reasonalign.core.errors import UserError
    from reasonalign.core.files import write_jsonl
    from reasonalign.judges.gold_check import check_gold_reasons  # heavy (MiniLM): when the command runs

    ds = _load(args.path, args)
    if not any(e.reason for e in ds):
        raise UserError(f"{args.path}: no row has a human reason to check")
    pool = None
    if args.pool:
        pool = [(e.label, e.reason) for e in load(args.pool) if e.reason]
        if len({y for y, _ in pool}) < 2:
            raise UserError(f"--pool {args.pool}: need human reasons of both labels")
    records = check_gold_reasons(ds.examples, pool)
    flagged = [r for r in records if r["flags"]]
    kinds = {k: sum(k in r["flags"] for r in flagged) for k in ("other_statement", "argues_other_label")}
    print(f"{args.path}: {len(records)} rows with a human reason, {len(flagged)} flagged "
          f"({kinds['other_statement']} other_statement, {kinds['argues_other_label']} argues_other_label)")
    for r in flagged:
        print(f"  row {r['row']} ({LABELS[r['label']]}): {', '.join(r['flags'])} | {r['statement'][:70]} | "
              f"{r['reason'][:90]}")
    if args.output:
        print(f"-> {write_jsonl(args.output, records)}")
    return 0


def run_arith(args) -> int:
    from pathlib import Path

    from reasonalign.core.errors import UserError
    from reasonalign.data.arith import write_splits

    if not 1 <= args.steps <= 8:
        raise UserError(f"--steps {args.steps}: arith problems have 1 to 8 steps")
    if Path(args.output).is_file():
        raise UserError(f"--output {args.output}: is a file, not a folder")
    manifest = write_splits(Path(args.output), args.steps)
    rows = ", ".join(f"{split} {f['rows']}" for split, f in manifest["files"].items())
    print(f"arith, {args.steps} steps: {rows} problems -> {args.output}")
    return 0
