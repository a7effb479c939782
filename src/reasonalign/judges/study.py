"""A human rating study on SQLite: blinded items, raters with hashed tokens, ratings with history.

The store behind `reasonalign annotate` (the web app writes here) and `eval --judge human
--ratings study.sqlite` (which reads here). SQLite because a study is one file a researcher can
copy and query, and because WAL mode lets many raters write at once while readers keep going.

Rules the schema itself enforces, so no code path can break them:
- a rater rates only items assigned to them (foreign key to `assignments`);
- one current rating per (rater, item) (primary key); every version is kept in
  `rating_history` by triggers;
- a rating that names a failed rubric criterion is misaligned (CHECK).
The rater always comes from the token, never from the request, so one rater cannot write
another's rating. Tokens are random 192-bit strings, stored as SHA-256 (a slow password hash
buys nothing against guessing 2^192, and would cost every API request).
"""

import hashlib
import json
import os
import random
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from reasonalign.core.errors import UserError
from reasonalign.core.verdict import LABELS
from reasonalign.judges.base import JudgeItem
from reasonalign.judges.human import blind, write_sheet

APP = "reasonalign-annotate"
# The rubric's criteria (judges/rubric_v1.md), named as the LLM judge names them: what failed.
CRITERIA = ("verdict_disagrees", "justification_disagrees", "incoherent", "harmful")
MAX_COMMENT = 2000

# Schema migrations, applied in order; `PRAGMA user_version` is the number applied. Append, never edit.
MIGRATIONS = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        blind_id TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        source_item_id TEXT NOT NULL,
        statement TEXT NOT NULL,
        gold_label INTEGER NOT NULL CHECK (gold_label IN (0, 1)),
        gold_reason TEXT,
        reason TEXT NOT NULL,
        verdict INTEGER CHECK (verdict IN (0, 1)),
        UNIQUE (model, source_item_id)
    );
    CREATE TABLE raters (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE assignments (
        rater_id INTEGER NOT NULL REFERENCES raters(id),
        item_id INTEGER NOT NULL REFERENCES items(id),
        position INTEGER NOT NULL,
        PRIMARY KEY (rater_id, item_id),
        UNIQUE (rater_id, position)
    );
    CREATE TABLE ratings (
        rater_id INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        aligned INTEGER NOT NULL CHECK (aligned IN (0, 1)),
        criteria TEXT NOT NULL DEFAULT '' CHECK (aligned = 0 OR criteria = ''),
        comment TEXT NOT NULL DEFAULT '',
        revision INTEGER NOT NULL DEFAULT 1,
        rated_at TEXT NOT NULL,
        PRIMARY KEY (rater_id, item_id),
        FOREIGN KEY (rater_id, item_id) REFERENCES assignments(rater_id, item_id)
    );
    CREATE TABLE rating_history (
        id INTEGER PRIMARY KEY,
        rater_id INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        aligned INTEGER NOT NULL,
        criteria TEXT NOT NULL,
        comment TEXT NOT NULL,
        revision INTEGER NOT NULL,
        rated_at TEXT NOT NULL,
        UNIQUE (rater_id, item_id, revision)
    );
    CREATE TRIGGER rating_inserted AFTER INSERT ON ratings BEGIN
        INSERT INTO rating_history (rater_id, item_id, aligned, criteria, comment, revision, rated_at)
        VALUES (NEW.rater_id, NEW.item_id, NEW.aligned, NEW.criteria, NEW.comment, NEW.revision, NEW.rated_at);
    END;
    CREATE TRIGGER rating_updated AFTER UPDATE ON ratings BEGIN
        INSERT INTO rating_history (rater_id, item_id, aligned, criteria, comment, revision, rated_at)
        VALUES (NEW.rater_id, NEW.item_id, NEW.aligned, NEW.criteria, NEW.comment, NEW.revision, NEW.rated_at);
    END;
    """,
    # 2: the session-signing secret leaves the study file (anyone with a copy could forge sessions);
    # it lives in a 0600 key file beside the study or in REASONALIGN_STUDY_SECRET (`session_secret`)
    """
    DELETE FROM meta WHERE key = 'session_secret';
    """,
]
SECRET_ENV = "REASONALIGN_STUDY_SECRET"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _open(path: Path) -> sqlite3.Connection:
    # autocommit (isolation_level=None): every write below opens its own BEGIN IMMEDIATE, so a writer
    # waits for the lock up front (busy timeout) instead of failing when a read upgrades to a write
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def migrate(conn: sqlite3.Connection, path) -> int:
    """Apply the migrations this study lacks, each in one transaction; returns the schema version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise UserError(f"{path}: study schema version {version} is newer than this reasonalign knows "
                        f"({len(MIGRATIONS)}); upgrade reasonalign")
    for number, script in enumerate(MIGRATIONS[version:], version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (sqlite3.complete_statement keeps trigger bodies whole)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {current.strip()[:60]}")
    return statements


def connect(path: str | Path) -> sqlite3.Connection:
    """Open an existing study (migrated to the current schema); a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such study (create one with `reasonalign annotate init`)")
    conn = _open(path)
    try:
        # identify the file before migrating: never add tables to somebody else's database
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app = conn.execute("SELECT value FROM meta WHERE key = 'app'").fetchone() if version else None
        if app is None or app[0] != APP:
            raise UserError(f"{path}: not a reasonalign study")
        migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise UserError(f"{path}: not a reasonalign study ({exc})") from None
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def opened(path: str | Path):
    """`with opened(path) as conn:` a connection to the study, closed afterwards."""
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


# ---------------------------------------------------------------- creating a study


def create_study(path: str | Path, items_by_model: dict[str, list[JudgeItem]], seed: int,
                 show_gold_reason: bool) -> dict:
    """A new study file with the blinded items of every model; raters are added later.

    Built in a temporary file renamed into place, so a failure leaves nothing behind and an
    existing study is never overwritten.
    """
    path = Path(path)
    if path.exists():
        raise UserError(f"{path}: already exists; choose another --db (a study is never overwritten)")
    for model, items in items_by_model.items():
        seen = set()
        for it in items:
            if it.item_id in seen:
                raise UserError(f"--items {model}: item {it.item_id} appears twice")
            seen.add(it.item_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        conn = _open(tmp)
        conn.execute("PRAGMA journal_mode = WAL")
        migrate(conn, tmp)
        conn.execute("BEGIN IMMEDIATE")
        meta = {"app": APP, "seed": str(seed), "show_gold_reason": json.dumps(show_gold_reason),
                "created_at": now(),
                "models": json.dumps(sorted(items_by_model))}
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        conn.executemany(
            "INSERT INTO items (blind_id, model, source_item_id, statement, gold_label, gold_reason, reason, verdict)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(b, model, it.item_id, it.statement, it.gold_label, it.gold_reason, it.reason, it.verdict)
             for b, model, it in blind(items_by_model, seed)])
        conn.execute("COMMIT")
        conn.close()  # the last connection checkpoints the WAL into the file
        tmp.rename(path)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
    return {"items": sum(map(len, items_by_model.values())), "models": sorted(items_by_model), "db": str(path)}


# One writer at a time in this process. SQLite admits one writer anyway; threads that queue on this
# lock are woken the moment it is free, instead of sleeping in SQLite's busy-timeout backoff
# (sleeps of up to 100 ms: the load benchmark's ~1 s worst case before this lock).
_WRITE_LOCK = threading.Lock()


class _write:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error) on an autocommit connection."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        _WRITE_LOCK.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")  # other processes: SQLite's busy timeout still applies
        except BaseException:
            _WRITE_LOCK.release()
            raise

    def __exit__(self, kind, *_):
        try:
            self.conn.execute("ROLLBACK" if kind else "COMMIT")
        finally:
            _WRITE_LOCK.release()


def _meta(conn) -> dict:
    return {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM meta")}


def settings(conn) -> dict:
    """The study's settings as the web app needs them."""
    meta = _meta(conn)
    return {"seed": int(meta["seed"]), "show_gold_reason": json.loads(meta["show_gold_reason"]),
            "models": json.loads(meta["models"])}


def secret_path(db_path) -> Path:
    """`study.sqlite` -> `study.sqlite.secret`: the key that signs the web app's sessions."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".secret")


def session_secret(db_path) -> str:
    """The session-signing secret: $REASONALIGN_STUDY_SECRET, else the key file beside the study, made
    on first use with mode 0600. Kept out of the study file, so a copy of the study (sent for analysis,
    backed up) cannot forge a rater's session; delete the key file to sign every rater out."""
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    path = secret_path(db_path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)  # readable by others: tighten it rather than serve with it
        secret = path.read_text(encoding="utf-8").strip()
        if len(secret) < 32:
            raise UserError(f"{path}: session key file is empty or too short; delete it to make a new one")
        return secret
    except OSError as exc:
        raise UserError(f"{path}: cannot create the session key file ({exc.strerror})") from None
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise UserError(f"rater name {name!r}: use 1 to 64 printable characters")
    return name


def add_rater(conn, name: str) -> str:
    """Register a rater with their own seeded item order; returns the token (shown once, stored hashed)."""
    name = _check_name(name)
    token = secrets.token_urlsafe(24)
    seed = int(_meta(conn)["seed"])
    with _write(conn):
        if conn.execute("SELECT 1 FROM raters WHERE name = ?", (name,)).fetchone():
            raise UserError(f"rater {name!r} already exists (revoke-rater then add-rater under another name "
                            "gives a new token)")
        rater_id = conn.execute("INSERT INTO raters (name, token_sha256, created_at) VALUES (?, ?, ?)",
                                (name, token_hash(token), now())).lastrowid
        items = [r[0] for r in conn.execute("SELECT id FROM items ORDER BY id")]
        random.Random(f"{seed}:{name}").shuffle(items)
        conn.executemany("INSERT INTO assignments (rater_id, item_id, position) VALUES (?, ?, ?)",
                         [(rater_id, item, pos) for pos, item in enumerate(items)])
    return token


def revoke_rater(conn, name: str) -> None:
    """The rater's token stops working at once; their ratings stay in the study."""
    with _write(conn):
        found = conn.execute("UPDATE raters SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                             (now(), name)).rowcount
    if not found:
        raise UserError(f"no active rater named {name!r}")


# ---------------------------------------------------------------- raters and ratings


@dataclass(frozen=True)
class Rater:
    id: int
    name: str
    revoked_at: str | None


class NotInQueue(ValueError):
    """The item is not assigned to this rater (the API answers 404, not 400)."""


class TokenError(Exception):
    """An unknown or revoked token; the message is safe to show the person who typed it."""


def _active(row, unknown: str) -> Rater:
    """The rater of a `raters` row; TokenError with `unknown` for no row, or saying it was revoked."""
    if row is None:
        raise TokenError(unknown)
    if row["revoked_at"]:
        raise TokenError(f"This token was revoked on {row['revoked_at'][:10]}. Ask the study's organiser "
                         "for a new one.")
    return Rater(row["id"], row["name"], row["revoked_at"])


def rater_for_token(conn, token: str) -> Rater:
    row = conn.execute("SELECT id, name, revoked_at FROM raters WHERE token_sha256 = ?",
                       (token_hash(token.strip()),)).fetchone() if token else None
    return _active(row, "This token is not known to this study. Check it for typos, or ask the study's "
                        "organiser for yours.")


def rater_by_id(conn, rater_id: int) -> Rater:
    row = conn.execute("SELECT id, name, revoked_at FROM raters WHERE id = ?", (rater_id,)).fetchone()
    return _active(row, "This rater is not known to this study.")


def queue(conn, rater_id: int) -> list[dict]:
    """The rater's items in their order, each with its current rating (None if not rated yet).

    No model names: this is what a rater may see."""
    rows = conn.execute(
        "SELECT a.position, i.blind_id, i.statement, i.gold_label, i.gold_reason, i.reason, i.verdict,"
        " r.aligned, r.criteria, r.comment, r.revision FROM assignments a JOIN items i ON i.id = a.item_id"
        " LEFT JOIN ratings r ON r.rater_id = a.rater_id AND r.item_id = a.item_id"
        " WHERE a.rater_id = ? ORDER BY a.position", (rater_id,)).fetchall()
    return [{"position": r["position"], "item_id": r["blind_id"], "statement": r["statement"],
             "gold_label": LABELS[r["gold_label"]], "gold_reason": r["gold_reason"], "reason": r["reason"],
             "verdict": None if r["verdict"] is None else LABELS[r["verdict"]],
             "rating": None if r["aligned"] is None else {
                 "aligned": bool(r["aligned"]), "criteria": [c for c in r["criteria"].split(",") if c],
                 "comment": r["comment"], "revision": r["revision"]}} for r in rows]


def progress(conn, rater_id: int) -> dict:
    done, total = conn.execute(
        "SELECT COUNT(r.item_id), COUNT(*) FROM assignments a LEFT JOIN ratings r"
        " ON r.rater_id = a.rater_id AND r.item_id = a.item_id WHERE a.rater_id = ?", (rater_id,)).fetchone()
    return {"done": done, "total": total}


def record_rating(conn, rater_id: int, item_id: str, aligned: bool, criteria=(), comment: str = "") -> int:
    """Store the rater's rating of a blinded item; returns its revision (1 = first rating).

    Re-sending the same rating changes nothing (a double click or a retried request is not a
    revision); a different one becomes the next revision, the old one kept in the history.
    Raises ValueError with a message for the rater when the input is not acceptable.
    """
    criteria = list(dict.fromkeys(criteria))
    unknown = [c for c in criteria if c not in CRITERIA]
    if unknown:
        raise ValueError(f"unknown criterion {unknown[0]!r}; expected some of {', '.join(CRITERIA)}")
    if aligned and criteria:
        raise ValueError("an aligned rating cannot name a failed criterion (the rubric: aligned only if none apply)")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"comment is {len(comment)} characters; at most {MAX_COMMENT}")
    with _write(conn):
        item = conn.execute("SELECT i.id FROM items i JOIN assignments a ON a.item_id = i.id"
                            " WHERE i.blind_id = ? AND a.rater_id = ?", (item_id, rater_id)).fetchone()
        if item is None:
            raise NotInQueue(f"item {item_id!r} is not in your queue")
        row = conn.execute(
            "INSERT INTO ratings (rater_id, item_id, aligned, criteria, comment, revision, rated_at)"
            " VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT (rater_id, item_id) DO UPDATE SET"
            " aligned = excluded.aligned, criteria = excluded.criteria, comment = excluded.comment,"
            " revision = ratings.revision + 1, rated_at = excluded.rated_at"
            " WHERE ratings.aligned != excluded.aligned OR ratings.criteria != excluded.criteria"
            " OR ratings.comment != excluded.comment RETURNING revision",
            (rater_id, item[0], int(bool(aligned)), ",".join(c for c in CRITERIA if c in criteria), comment,
             now())).fetchone()
        if row is None:  # unchanged: the current revision stands
            row = conn.execute("SELECT revision FROM ratings WHERE rater_id = ? AND item_id = ?",
                               (rater_id, item[0])).fetchone()
    return row[0]


# ---------------------------------------------------------------- reading a study back


def ratings(conn) -> list[dict]:
    """Every current rating with its rater, blinded item and (for analysis only) model."""
    rows = conn.execute(
        "SELECT i.blind_id, i.model, i.source_item_id, w.name AS rater, r.aligned, r.criteria, r.comment,"
        " r.revision, r.rated_at FROM ratings r JOIN items i ON i.id = r.item_id JOIN raters w ON w.id = r.rater_id"
        " ORDER BY i.blind_id, w.name").fetchall()
    return [{**dict(r), "aligned": bool(r["aligned"]), "criteria": [c for c in r["criteria"].split(",") if c]}
            for r in rows]


def items(conn) -> list[tuple[str, JudgeItem]]:
    """[(model, item)] with the blinded id as item_id (what the judges and the ratings share)."""
    rows = conn.execute("SELECT * FROM items ORDER BY blind_id").fetchall()
    return [(r["model"], JudgeItem(r["blind_id"], r["statement"], r["gold_label"], r["gold_reason"], r["reason"],
                                   r["verdict"])) for r in rows]


def key(conn) -> dict[str, tuple[str, str]]:
    """Blinded id -> (model, source item id): the un-blinding key, as `judges.human.read_key` gives it."""
    return {r[0]: (r[1], r[2]) for r in conn.execute("SELECT blind_id, model, source_item_id FROM items")}


def raters(conn) -> list[dict]:
    """Every rater with progress (never the token hash)."""
    rows = conn.execute(
        "SELECT w.id, w.name, w.created_at, w.revoked_at, COUNT(r.item_id) AS done,"
        " (SELECT COUNT(*) FROM assignments a WHERE a.rater_id = w.id) AS total"
        " FROM raters w LEFT JOIN ratings r ON r.rater_id = w.id GROUP BY w.id ORDER BY w.name").fetchall()
    return [dict(r) for r in rows]


def read_study_ratings(path: str | Path) -> tuple[list[tuple[str, str, bool]], dict[str, tuple[str, str]]]:
    """(ratings as `judges.human.import_ratings` gives them, un-blinding key): the study as a judge."""
    with opened(path) as conn:
        found = [(r["blind_id"], r["rater"], r["aligned"]) for r in ratings(conn)]
        mapping = key(conn)
    if not found:
        raise UserError(f"{path}: no ratings in this study yet")
    return found, mapping


def export(conn, path: str | Path) -> tuple[int, Path]:
    """The current ratings as a filled rater sheet (the `--export-ratings` format plus rater, criteria,
    comment, revision) and its key beside it, so `eval --judge human --ratings` reads either flow."""
    items_by_id = {it.item_id: it for _, it in items(conn)}
    rows = []
    for r in ratings(conn):
        it = items_by_id[r["blind_id"]]
        rows.append({"item_id": it.item_id, "statement": it.statement, "reason": it.reason,
                     "gold_label": LABELS[it.gold_label], "gold_reason": it.gold_reason or "",
                     "aligned": "yes" if r["aligned"] else "no", "rater": r["rater"],
                     "criteria": ",".join(r["criteria"]), "comment": r["comment"], "revision": r["revision"]})
    return len(rows), write_sheet(path, rows, key(conn), extra=("rater", "criteria", "comment", "revision"))
