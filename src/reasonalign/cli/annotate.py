"""`reasonalign annotate`: a human rating study of generated reasons, from items to agreement.

init (blinded items from generations.jsonl files) -> add-rater (a token each) -> serve (the web
app raters use) -> export (the rating sheet) / stats (MAR per rater and model, kappa, agreement
with the automatic judges). The study is one SQLite file (`judges.study`).
"""

import ipaddress
import socket
from pathlib import Path

from reasonalign.core import config as cfg
from reasonalign.core.errors import UserError
from reasonalign.core.files import write_json
from reasonalign.annotate.config import ExportConfig, InitConfig, RaterConfig, ServeConfig, StatsConfig


def register(sub) -> None:
    annotate = sub.add_parser("annotate", help="human rating study of generated reasons (web app on SQLite)",
                              description=__doc__)
    actions = annotate.add_subparsers(dest="annotate_command", required=True, metavar="ACTION")
    for name, config, run, help_text in (
            ("init", InitConfig, run_init, "create a study from generations.jsonl files (blinded, shuffled)"),
            ("add-rater", RaterConfig, run_add_rater, "add a rater and print their token (shown once)"),
            ("revoke-rater", RaterConfig, run_revoke_rater, "stop a rater's token from working (ratings stay)"),
            ("raters", RaterConfig, run_raters, "list raters and their progress"),
            ("serve", ServeConfig, run_serve, "run the rating web app (127.0.0.1 by default)"),
            ("export", ExportConfig, run_export, "write the ratings as a filled rating sheet + key (CSV)"),
            ("stats", StatsConfig, run_stats, "MAR per rater / model / pooled, kappa, agreement with judges")):
        p = actions.add_parser(name, help=help_text, description=help_text)
        if run in (run_add_rater, run_revoke_rater):
            p.add_argument("name", metavar="NAME", help="the rater's name (shown in stats and exports, never to "
                                                        "other raters)")
        cfg.add_arguments(p, config)
        p.set_defaults(run=run, annotate_config=config)


def _items_by_model(spec: str | None, max_items: int | None, seed: int) -> dict:
    import random

    from reasonalign.eval.reasons import judge_items, read_generations

    paths = [p.strip() for p in (spec or "").split(",") if p.strip()]
    if not paths:
        raise UserError("--items: give at least one generations.jsonl (from `reasonalign generate` or "
                        "`eval --task reasons`)")
    if max_items is not None and max_items < 1:
        raise UserError(f"--max-items {max_items}: need at least 1")
    by_model = {}
    for spec_path in paths:
        name, _, path = spec_path.rpartition("=")
        name = name.strip() or Path(path).parent.name or Path(path).stem
        if name in by_model:
            raise UserError(f"--items: two files for model {name!r}; name them NAME=PATH")
        items = judge_items(read_generations(path))
        if max_items is not None and len(items) > max_items:
            items = sorted(random.Random(f"{seed}:{name}").sample(items, max_items), key=lambda it: it.item_id)
        by_model[name] = items
    return by_model


def run_init(args) -> int:
    from reasonalign.judges import study

    config = cfg.build(InitConfig, args)
    made = study.create_study(config.db, _items_by_model(config.items, config.max_items, config.seed),
                              config.seed, config.show_gold_reason)
    print(f"study {made['db']}: {made['items']} items from {len(made['models'])} model(s) "
          f"({', '.join(made['models'])}), blinded; next: reasonalign annotate add-rater NAME --db {made['db']}")
    return 0


def run_add_rater(args) -> int:
    from reasonalign.judges import study

    config = cfg.build(RaterConfig, args)
    with study.opened(config.db) as conn:
        token = study.add_rater(conn, args.name)
    print(f"rater {args.name.strip()!r} added to {config.db}. Their token (shown once, stored hashed):")
    print(token)
    return 0


def run_revoke_rater(args) -> int:
    from reasonalign.judges import study

    config = cfg.build(RaterConfig, args)
    with study.opened(config.db) as conn:
        study.revoke_rater(conn, args.name)
    print(f"rater {args.name!r}: token revoked; their ratings stay in the study")
    return 0


def run_raters(args) -> int:
    from reasonalign.judges import study

    config = cfg.build(RaterConfig, args)
    with study.opened(config.db) as conn:
        rows = study.raters(conn)
    if not rows:
        print(f"{config.db}: no raters yet (reasonalign annotate add-rater NAME --db {config.db})")
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        print(f"{r['name']}: {r['done']}/{r['total']} rated, {state}")
    return 0


def is_loopback(host: str) -> bool:
    """True when every address `host` resolves to is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        raise UserError(f"--host {host}: cannot resolve this address") from None
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def run_serve(args) -> int:
    from reasonalign.judges import study

    config = cfg.build(ServeConfig, args)
    if not (0 <= config.port < 65536):
        raise UserError(f"--port {config.port}: expected 0 to 65535")
    if config.threads < 1 or config.max_body_kb < 1:
        raise UserError("--threads and --max-body-kb must be at least 1")
    if not is_loopback(config.host) and not config.allow_remote:
        raise UserError(f"--host {config.host} is not a loopback address: raters' tokens would cross the network; "
                        "add --allow-remote (and put TLS in front) to bind it anyway")
    with study.opened(config.db) as conn:  # a missing or foreign file fails here, before the server starts
        n_items, n_raters = len(study.key(conn)), len(study.raters(conn))

    from waitress import create_server

    from reasonalign.annotate.app import create_app

    max_body = config.max_body_kb * 1024
    hosts = (config.host, *(config.allowed_hosts or "").split(","))
    server = create_server(create_app(config.db, max_body=max_body, hosts=hosts), host=config.host, port=config.port,
                           threads=config.threads, max_request_body_size=max_body, ident="reasonalign")
    host = f"[{config.host}]" if ":" in config.host else config.host  # an IPv6 address in a URL needs brackets
    url = f"http://{host}:{server.effective_port}/"
    print(f"serving {config.db} ({n_items} items, {n_raters} raters) at {url}  (Ctrl+C stops)", flush=True)
    try:
        server.run()
    finally:
        server.close()
    return 0


def run_export(args) -> int:
    from reasonalign.judges import study

    config = cfg.build(ExportConfig, args)
    with study.opened(config.db) as conn:
        n, key = study.export(conn, config.output)
    print(f"{n} ratings -> {config.output} (un-blinding key: {key}; keep it away from raters)")
    return 0


def run_stats(args) -> int:
    from reasonalign.annotate.stats import format_stats, study_stats

    config = cfg.build(StatsConfig, args)
    stats = study_stats(config)
    print(format_stats(stats))
    if config.output:
        print(f"-> {write_json(config.output, stats)}")
    return 0
