"""The results store: one SQLite file, the single source of truth (Optuna's RDB storage pattern).

All SQL lives here. Schema and `SCHEMA_VERSION` (PRAGMA user_version) sit together; every write
goes through `transaction()`, so a failure leaves nothing half written. Results are keyed by
(model, dataset, recipe hash): trainings under different recipes never mix.

Status of a (model, dataset, recipe): pending → running → done | failed | diverged | collapsed.
`dsd decide` (dsd.decide) records its comparisons, their looks and the failed models it retried
in the decision tables.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
from fractions import Fraction
import os
import re
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .errors import DsdError

if TYPE_CHECKING:  # pandas is imported on first query: `dsd sample` starts faster
    import pandas as pd

SCHEMA_VERSION = 4
STATUSES = ("pending", "running", "done", "failed", "diverged", "collapsed")
IMAGE_LOADERS = ("gpu", "cpu")   # ImageNet input pipelines a result can name

#: `dsd decide`'s records (dsd.decide): the pairs it compares, each look, the retries.
DECISION_SCHEMA = """
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY,           -- one sequential comparison of two sweeps (`dsd decide`)
    sweep_a INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
    sweep_b INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
    dataset TEXT NOT NULL,
    recipe TEXT NOT NULL,
    recipe_hash TEXT NOT NULL,
    design TEXT NOT NULL,             -- the sequential design and model rule (JSON), fixed first
    created TEXT NOT NULL,
    UNIQUE (sweep_a, sweep_b, dataset, recipe_hash)
);
CREATE TABLE decision_looks (
    decision_id INTEGER NOT NULL REFERENCES decisions(id) ON DELETE CASCADE,
    look INTEGER NOT NULL,            -- 1-based
    n_a INTEGER NOT NULL, n_b INTEGER NOT NULL,
    statistic REAL, threshold REAL, alpha_spent REAL, p_prob REAL,
    decision TEXT NOT NULL,           -- continue | A better | B better | futile | max n
    models TEXT NOT NULL,             -- per side: indices used, at chance, excluded (JSON)
    created TEXT NOT NULL,
    PRIMARY KEY (decision_id, look)
);
CREATE TABLE decision_retries (       -- failed results `dsd decide` set back to pending once
    result_id INTEGER PRIMARY KEY REFERENCES results(id) ON DELETE CASCADE,
    created TEXT NOT NULL
);
"""

SCHEMA = """
CREATE TABLE sweeps (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    space TEXT NOT NULL,
    space_def TEXT NOT NULL,          -- the space definition as loaded (JSON)
    dataset TEXT NOT NULL,
    window TEXT NOT NULL,             -- complexity window (JSON)
    seed INTEGER NOT NULL,
    n INTEGER NOT NULL,
    draws INTEGER NOT NULL,           -- candidates drawn to keep n
    created TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'dsd', -- 'dsd' (sampled here) or 'pycls' / 'nds' (imported)
    source_info TEXT                  -- imported: file, format, counts (JSON)
);
CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    hash TEXT NOT NULL,
    spec TEXT NOT NULL,               -- ModelSpec JSON
    sampled TEXT NOT NULL,            -- raw sampled parameters (JSON)
    flops INTEGER NOT NULL,
    params INTEGER NOT NULL,
    acts INTEGER NOT NULL,
    opaque INTEGER NOT NULL DEFAULT 0, -- 1: imported, not a ModelSpec (spec holds the source's net)
    UNIQUE (sweep_id, idx),
    UNIQUE (sweep_id, hash)
);
CREATE TABLE results (
    id INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    dataset TEXT NOT NULL,
    recipe TEXT NOT NULL,             -- recipe name
    recipe_hash TEXT NOT NULL,
    recipe_json TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending','running','done','failed','diverged','collapsed')),
    seed INTEGER,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    top1 REAL, top5 REAL, train_loss REAL,
    seconds REAL, device TEXT, exec_path TEXT,
    error TEXT,
    synthetic INTEGER NOT NULL DEFAULT 0,
    updated TEXT NOT NULL,
    provenance TEXT,                  -- what produced the numbers (JSON, dsd.provenance)
    UNIQUE (model_id, dataset, recipe_hash)
);
CREATE TABLE epochs (
    result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    train_loss REAL, top1 REAL, top5 REAL, lr REAL, seconds REAL,
    eval_seconds REAL,
    PRIMARY KEY (result_id, epoch)
);
CREATE TABLE fits (
    model_id INTEGER PRIMARY KEY REFERENCES models(id) ON DELETE CASCADE,
    w0 REAL NOT NULL, wa REAL NOT NULL, wm REAL NOT NULL, e_fit REAL NOT NULL
);
CREATE INDEX results_status ON results(status);
""" + DECISION_SCHEMA

#: version → the script that brings a store of that version to the next, keeping every row.
MIGRATIONS = {
    1: """ALTER TABLE sweeps ADD COLUMN source TEXT NOT NULL DEFAULT 'dsd';
          ALTER TABLE sweeps ADD COLUMN source_info TEXT;
          ALTER TABLE models ADD COLUMN opaque INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE results ADD COLUMN provenance TEXT;""",
    2: "ALTER TABLE epochs ADD COLUMN eval_seconds REAL;",
    3: DECISION_SCHEMA,
}


#: What a sweep name may hold: it appears in commands, file names and figure legends.
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_sweep_name(name: str) -> None:
    """A sweep name is letters, digits, '.', '_' and '-' (starting with a letter or digit)."""
    if not isinstance(name, str) or not SWEEP_NAME.fullmatch(name) or len(name) > 100:
        raise DsdError(f"sweep name {name!r} is not allowed: use up to 100 letters, digits, '.', "
                       f"'_' and '-', starting with a letter or digit (no '/' or spaces)")


def default_path() -> Path:
    """`DSD_STORE`, else ./dsd.sqlite."""
    return Path(os.environ.get("DSD_STORE", "dsd.sqlite"))


def unique_hashes(hashes) -> list[str]:
    """A sweep's model hashes made unique, as the store requires: the k-th repeat (k >= 1) of
    one network gets `<hash>-r<k>` (reruns of one network in an imported sweep; repeated
    parameter draws that build one network in a pycls sweep, which pycls keeps)."""
    seen: dict[str, int] = {}
    out = []
    for h in hashes:
        k = seen.get(h, 0)
        seen[h] = k + 1
        out.append(f"{h}-r{k}" if k else h)
    return out


def recipe_hash(recipe: dict) -> str:
    return hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Store:
    """A dsd results store in one SQLite file; `:memory:` for tests. A missing file is created
    unless `create=False`; a file that is not a dsd store, or lacks part of SCHEMA, is refused.

    Connections are per process; one coordinator process writes, workers send it records.
    """

    def __init__(self, path: str | os.PathLike = ":memory:", *, create: bool = True):
        self.path = str(path)
        memory = self.path == ":memory:"
        if not memory and Path(self.path).is_dir():
            raise DsdError(f"{self.path}: is a directory; --store takes a store's file, e.g. "
                           f"{Path(self.path) / 'dsd.sqlite'}")
        if not memory and not Path(self.path).exists():
            if not create:
                raise DsdError(f"{self.path}: no such store (the path does not exist); `dsd "
                               f"sample` or `dsd import` with `--store {self.path}` creates one")
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            Path(self.path).touch()   # an unwritable folder fails here, naming the path
        #: a store whose file or folder this user cannot write (a published, shared or
        #: read-only mounted one) is opened immutable: read without the WAL's side files
        self.read_only = not memory and not (os.access(self.path, os.W_OK) and os.access(
            Path(self.path).resolve().parent, os.W_OK))
        try:
            self.conn = (sqlite3.connect(f"{Path(self.path).resolve().as_uri()}?mode=ro&"
                                         "immutable=1", uri=True, isolation_level=None)
                         if self.read_only else
                         sqlite3.connect(self.path, timeout=30, isolation_level=None))
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA foreign_keys = ON")
            check_dsd_file(self.conn, self.path, create=create)   # before anything is written
            if not memory and not self.read_only:
                try:
                    self.conn.execute("PRAGMA journal_mode = WAL")
                except sqlite3.OperationalError:   # a read-only file or folder: reads still work
                    pass
            self._migrate()
            validate_schema(self.conn, self.path)
        except sqlite3.DatabaseError as e:
            raise DsdError(f"{self.path}: not a dsd store ({e})") from None

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if self.read_only and 0 < version < SCHEMA_VERSION:
            raise DsdError(f"{self.path}: store schema version {version} needs an upgrade to "
                           f"{SCHEMA_VERSION}, which a read-only store cannot take; copy it "
                           "somewhere writable")
        if 0 < version < SCHEMA_VERSION and all(v in MIGRATIONS for v in
                                                 range(version, SCHEMA_VERSION)):
            steps = " ".join(MIGRATIONS[v] for v in range(version, SCHEMA_VERSION))
            try:
                self.conn.executescript(f"BEGIN; {steps} PRAGMA user_version = "
                                        f"{SCHEMA_VERSION}; COMMIT;")
            except sqlite3.Error:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            return
        if version != 0:
            raise DsdError(f"{self.path}: store schema version {version}, this dsd reads "
                           f"version {SCHEMA_VERSION}; upgrade dsd or use another --store")
        # one script, one transaction: a half-created schema is never left behind
        self.conn.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, ROLLBACK on any error (nothing half written)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    # ---- sweeps -------------------------------------------------------------------------
    def add_sweep(self, name: str, *, space: str, space_def: dict, dataset: str, window: dict,
                  seed: int, draws: int, models: Iterable[Any]) -> int:
        """Write a sweep and its models in one transaction; an existing name is an error.

        `models` items have: index, spec (ModelSpec), params (dict), flops, params_count, acts.
        """
        check_sweep_name(name)
        if self.has_sweep(name):
            raise DsdError(f"sweep {name!r} already exists in {self.path}; nothing written "
                           f"(choose another --name, or inspect it with `dsd show {name}`)")
        models = list(models)
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO sweeps (name, space, space_def, dataset, window, seed, n, draws,"
                " created) VALUES (?,?,?,?,?,?,?,?,?)",
                (name, space, json.dumps(space_def, sort_keys=True), dataset,
                 json.dumps(window, sort_keys=True), seed, len(models), draws, _now()))
            sweep_id = cur.lastrowid
            c.executemany(
                "INSERT INTO models (sweep_id, idx, hash, spec, sampled, flops, params, acts)"
                " VALUES (?,?,?,?,?,?,?,?)",
                [(sweep_id, m.index, h, m.spec.to_json(), json.dumps(m.params), m.flops,
                  m.params_count, m.acts)
                 for m, h in zip(models, unique_hashes(m.spec.id for m in models))])
        return sweep_id

    def add_imported_sweep(self, name: str, *, space: str, dataset: str, source: str,
                           source_info: dict, recipe: str, recipe_json: dict,
                           models: list[dict]) -> int:
        """Write an imported, already trained population in one transaction: the sweep
        (labelled with its source), its models (ModelSpecs or opaque) and one result per model
        under the source's recipe, with per-epoch curves. `models` items: index, hash, spec
        (JSON text), sampled (dict), flops, params, acts, opaque, and result: status, top1,
        top5, train_loss, seconds, seed, error, provenance (dict), epochs [(epoch, train_loss,
        top1, top5, lr, seconds)]."""
        if self.has_sweep(name):
            raise DsdError(f"sweep {name!r} already exists in {self.path}; nothing written "
                           f"(choose another --name, or inspect it with `dsd show {name}`)")
        h, now = recipe_hash(recipe_json), _now()
        with self.transaction() as c:
            sweep_id = c.execute(
                "INSERT INTO sweeps (name, space, space_def, dataset, window, seed, n, draws,"
                " created, source, source_info) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (name, space, json.dumps({"imported": source_info}, sort_keys=True), dataset,
                 "{}", 0, len(models), len(models), now, source,
                 json.dumps(source_info, sort_keys=True))).lastrowid
            for m in models:
                mid = c.execute(
                    "INSERT INTO models (sweep_id, idx, hash, spec, sampled, flops, params, acts,"
                    " opaque) VALUES (?,?,?,?,?,?,?,?,?)",
                    (sweep_id, m["index"], m["hash"], m["spec"], json.dumps(m["sampled"]),
                     m["flops"], m["params"], m["acts"], int(m["opaque"]))).lastrowid
                r = m["result"]
                rid = c.execute(
                    "INSERT INTO results (model_id, dataset, recipe, recipe_hash, recipe_json,"
                    " status, seed, epochs_done, top1, top5, train_loss, seconds, error,"
                    " updated, provenance) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (mid, dataset, recipe, h, json.dumps(recipe_json, sort_keys=True),
                     r["status"], r.get("seed"), len(r["epochs"]), r.get("top1"), r.get("top5"),
                     r.get("train_loss"), r.get("seconds"), r.get("error"), now,
                     json.dumps(r.get("provenance") or {}, sort_keys=True))).lastrowid
                c.executemany("INSERT INTO epochs (result_id, epoch, train_loss, top1, top5, lr,"
                              " seconds) VALUES (?,?,?,?,?,?,?)",
                              [(rid, *e) for e in r["epochs"]])
        return sweep_id

    def opaque_models(self, sweep: str) -> int:
        """How many models of a sweep are opaque (imported, not buildable by dsd)."""
        sid = self.sweep(sweep)["id"]
        return self.conn.execute("SELECT COUNT(*) FROM models WHERE sweep_id=? AND opaque=1",
                                 (sid,)).fetchone()[0]

    def has_sweep(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sweeps WHERE name=?", (name,)).fetchone() is not None

    def sweep(self, name: str) -> dict:
        row = self.conn.execute("SELECT * FROM sweeps WHERE name=?", (name,)).fetchone()
        if row is None:
            known = [r[0] for r in self.conn.execute("SELECT name FROM sweeps ORDER BY id")]
            raise DsdError(f"no sweep {name!r} in {self.path}; sweeps: "
                           f"{', '.join(known) or '(none; run dsd sample)'}")
        out = dict(row)
        out["space_def"] = json.loads(out["space_def"])
        out["window"] = json.loads(out["window"])
        return out

    def sweep_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM sweeps ORDER BY id")]

    def sweeps(self) -> "pd.DataFrame":
        """One row per sweep with its model count and result counts per status."""
        import pandas as pd

        rows = []
        for s in self.conn.execute("SELECT * FROM sweeps ORDER BY id").fetchall():
            counts = dict(self.conn.execute(
                "SELECT r.status, COUNT(*) FROM results r JOIN models m ON r.model_id = m.id"
                " WHERE m.sweep_id = ? GROUP BY r.status", (s["id"],)).fetchall())
            row = {"name": s["name"], "space": s["space"], "dataset": s["dataset"],
                   "seed": s["seed"], "models": s["n"], "window": _window_text(s["window"]),
                   "samplers": (json.loads(s["space_def"]).get("samplers", "dsd1")
                                if s["source"] == "dsd" else "-"),
                   "source": s["source"],
                   "created": s["created"]}
            trained = sum(counts.values())
            row.update({st: counts.get(st, 0) for st in STATUSES})
            row["pending"] += s["n"] - trained if trained <= s["n"] else 0
            rows.append(row)
        cols = ["name", "space", "dataset", "seed", "models", "window", "samplers", "source",
                "created", *STATUSES]
        return pd.DataFrame(rows, columns=cols)

    # ---- models -------------------------------------------------------------------------
    def models(self, sweep: str) -> "pd.DataFrame":
        """Models of a sweep: index, id, flops, params, acts, per-stage d/w/b/g, spec JSON."""
        import pandas as pd

        sid = self.sweep(sweep)["id"]
        rows = self.conn.execute(
            "SELECT m.*, f.w0 AS fit_w0, f.wa AS fit_wa, f.wm AS fit_wm, f.e_fit"
            " FROM models m LEFT JOIN fits f ON f.model_id = m.id"
            " WHERE m.sweep_id=? ORDER BY m.idx", (sid,)).fetchall()
        return pd.DataFrame([_model_row(sweep, r) for r in rows])

    # ---- fits (analysis) ----------------------------------------------------------------
    def set_fits(self, fits: Iterable[tuple[int, float, float, float, float]]) -> None:
        """Store (model_id, w0, wa, wm, e_fit) rows, replacing earlier fits of those models."""
        with self.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO fits (model_id, w0, wa, wm, e_fit)"
                          " VALUES (?,?,?,?,?)", list(fits))

    # ---- results ------------------------------------------------------------------------
    def results(self, sweeps: Iterable[str] | None = None, *, status: str | None = "done",
                dataset: str | None = None, recipe: str | None = None,
                synthetic: bool = False) -> "pd.DataFrame":
        """Training results joined with their models (one row per model × dataset × recipe).

        Filters: sweep names, status (None = all), dataset, recipe name; synthetic-data
        results are excluded unless `synthetic=True`.
        """
        import pandas as pd

        where, args = [], []
        if sweeps is not None:
            names = list(sweeps)
            ids = [self.sweep(n)["id"] for n in names]
            where.append(f"m.sweep_id IN ({','.join('?' * len(ids))})")
            args += ids
        for col, val in (("r.status", status), ("r.dataset", dataset), ("r.recipe", recipe)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if not synthetic:
            where.append("r.synthetic = 0")
        sql = ("SELECT m.*, s.name AS sweep_name, f.w0 AS fit_w0, f.wa AS fit_wa,"
               " f.wm AS fit_wm, f.e_fit, r.id AS result_id, r.dataset AS result_dataset,"
               " r.recipe, r.recipe_hash, r.recipe_json, r.status, r.seed AS train_seed,"
               " r.epochs_done, r.top1, r.top5, r.train_loss, r.seconds, r.device,"
               " r.exec_path, r.error, r.synthetic, r.updated, r.provenance, s.source"
               " FROM results r JOIN models m ON r.model_id = m.id"
               " JOIN sweeps s ON m.sweep_id = s.id LEFT JOIN fits f ON f.model_id = m.id"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY s.id, m.idx")
        out = []
        for r in self.conn.execute(sql, args).fetchall():
            row = _model_row(r["sweep_name"], r)
            for k in ("result_id", "recipe", "recipe_hash", "status", "train_seed", "epochs_done",
                      "top1", "top5", "train_loss", "seconds", "device", "exec_path", "error"):
                row[k] = r[k]
            row["dataset"] = r["result_dataset"]
            row["recipe_json"] = r["recipe_json"]
            row["synthetic"] = bool(r["synthetic"])
            row["updated"] = r["updated"]  # last write; for a finished result, when it finished
            row["provenance"] = r["provenance"]
            row["source"] = r["source"]
            out.append(row)
        return pd.DataFrame(out)

    def start_result(self, model_id: int, *, dataset: str, recipe: str, recipe_json: dict,
                     seed: int | None = None, synthetic: bool = False) -> int:
        """Mark (model, dataset, recipe) running; creates the row or reuses a pending/running one.

        A result already done/failed/diverged/collapsed is never restarted here (no double record).
        """
        h = recipe_hash(recipe_json)
        with self.transaction() as c:
            row = c.execute("SELECT id, status FROM results WHERE model_id=? AND dataset=? AND"
                            " recipe_hash=?", (model_id, dataset, h)).fetchone()
            if row is None:
                cur = c.execute(
                    "INSERT INTO results (model_id, dataset, recipe, recipe_hash, recipe_json,"
                    " status, seed, synthetic, updated) VALUES (?,?,?,?,?,'running',?,?,?)",
                    (model_id, dataset, recipe, h, json.dumps(recipe_json, sort_keys=True), seed,
                     int(synthetic), _now()))
                return cur.lastrowid
            if row["status"] not in ("pending", "running"):
                raise DsdError(f"model {model_id} already has a {row['status']} result for "
                               f"{dataset}/{recipe}; not training it again")
            c.execute("UPDATE results SET status='running', updated=? WHERE id=?",
                      (_now(), row["id"]))
            return row["id"]

    def add_epoch(self, result_id: int, epoch: int, *, train_loss: float | None = None,
                  top1: float | None = None, top5: float | None = None, lr: float | None = None,
                  seconds: float | None = None, eval_seconds: float | None = None) -> None:
        """Record one finished epoch (idempotent: a resumed epoch overwrites its row):
        `seconds` in all, `eval_seconds` of them evaluating."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO epochs (result_id, epoch, train_loss, top1, top5,"
                      " lr, seconds, eval_seconds) VALUES (?,?,?,?,?,?,?,?)",
                      (result_id, epoch, train_loss, top1, top5, lr, seconds, eval_seconds))
            c.execute("UPDATE results SET epochs_done=MAX(epochs_done, ?), updated=? WHERE id=?",
                      (epoch, _now(), result_id))

    def finish_result(self, result_id: int, status: str, *, top1: float | None = None,
                      top5: float | None = None, train_loss: float | None = None,
                      seconds: float | None = None, device: str | None = None,
                      exec_path: str | None = None, error: str | None = None,
                      provenance: dict | None = None) -> None:
        """Close a result with a final status (done, failed, diverged, collapsed or pending);
        `provenance` says what produced the numbers (dsd.provenance)."""
        if status not in STATUSES or status == "running":
            raise DsdError(f"cannot finish a result with status {status!r}")
        prov = json.dumps(provenance, sort_keys=True) if provenance else None
        with self.transaction() as c:
            c.execute("UPDATE results SET status=?, top1=?, top5=?, train_loss=?, seconds=?,"
                      " device=?, exec_path=?, error=?, provenance=?, updated=? WHERE id=?",
                      (status, top1, top5, train_loss, seconds, device, exec_path, error, prov,
                       _now(), result_id))

    # ---- training queue (dsd.train) -----------------------------------------------------
    def training_queue(self, sweeps: Iterable[str] | None, *, dataset: str | None,
                       recipe_json: dict) -> list[dict]:
        """Models still to train under (dataset, recipe): no result yet, or pending/running.

        `dataset=None` means each sweep's own dataset. Rows: model_id, sweep, sweep_seed,
        sweep_dataset, index, spec, flops, result_id, status, epochs_done (in sweep/index order).
        """
        names = self.sweep_names() if sweeps is None else list(sweeps)
        h, out = recipe_hash(recipe_json), []
        for name in names:
            s = self.sweep(name)
            ds = dataset or s["dataset"]
            rows = self.conn.execute(
                "SELECT m.id AS model_id, m.idx, m.spec, m.flops, r.id AS result_id, r.status,"
                " r.epochs_done FROM models m LEFT JOIN results r ON r.model_id = m.id"
                " AND r.dataset = ? AND r.recipe_hash = ? WHERE m.sweep_id = ?"
                " AND (r.status IS NULL OR r.status IN ('pending', 'running')) ORDER BY m.idx",
                (ds, h, s["id"])).fetchall()
            out += [{"sweep": name, "sweep_seed": s["seed"], "sweep_dataset": s["dataset"],
                     "dataset": ds, "index": r["idx"], **{k: r[k] for k in (
                         "model_id", "spec", "flops", "result_id", "status", "epochs_done")}}
                    for r in rows]
        return out

    def reset_running(self) -> int:
        """Running → pending for every result (call only while holding the training lock)."""
        with self.transaction() as c:
            return c.execute("UPDATE results SET status='pending', updated=? WHERE"
                             " status='running'", (_now(),)).rowcount

    def retry_failed(self, sweeps: Iterable[str] | None, *, dataset: str | None,
                     recipe_json: dict, indices: Iterable[int] | None = None) -> int:
        """Failed → pending (error cleared) for the selected sweeps (and model indices) under
        (dataset, recipe)."""
        names = self.sweep_names() if sweeps is None else list(sweeps)
        h, ids = recipe_hash(recipe_json), []
        keep = None if indices is None else set(indices)
        with self.transaction() as c:
            for name in names:
                s = c.execute("SELECT id, dataset FROM sweeps WHERE name=?", (name,)).fetchone()
                ids += [r[0] for r in c.execute(
                    "SELECT r.id, m.idx FROM results r JOIN models m ON r.model_id = m.id WHERE"
                    " m.sweep_id=? AND r.status='failed' AND r.dataset=? AND r.recipe_hash=?",
                    (s["id"], dataset or s["dataset"], h)) if keep is None or r[1] in keep]
            for rid in ids:
                c.execute("UPDATE results SET status='pending', error=NULL, epochs_done=0,"
                          " updated=? WHERE id=?", (_now(), rid))
                c.execute("DELETE FROM epochs WHERE result_id=?", (rid,))
        return len(ids)

    def result_statuses(self, result_ids: Iterable[int]) -> dict[int, str]:
        """{result_id: status} of the given ids that exist."""
        ids = list(result_ids)
        if not ids:
            return {}
        return dict(self.conn.execute(
            f"SELECT id, status FROM results WHERE id IN ({','.join('?' * len(ids))})", ids))

    def status_counts(self) -> "pd.DataFrame":
        """Per sweep and (dataset, recipe): models and result counts by status."""
        import pandas as pd

        rows = self.conn.execute(
            "SELECT s.name AS sweep, s.n AS models, r.dataset, r.recipe, r.recipe_hash,"
            " r.status, COUNT(r.id) AS count FROM sweeps s LEFT JOIN models m ON m.sweep_id = s.id"
            " LEFT JOIN results r ON r.model_id = m.id GROUP BY s.id, r.dataset, r.recipe_hash,"
            " r.status ORDER BY s.id").fetchall()
        return pd.DataFrame([dict(r) for r in rows],
                            columns=["sweep", "models", "dataset", "recipe", "recipe_hash",
                                     "status", "count"])

    def loader_counts(self) -> dict[str, dict[str, int]]:
        """Per sweep: how many results each ImageNet input pipeline (provenance `loader`, one
        of IMAGE_LOADERS) produced; sweeps without such results are absent."""
        names = ",".join("?" * len(IMAGE_LOADERS))
        rows = self.conn.execute(
            "SELECT s.name AS sweep, json_extract(r.provenance, '$.loader') AS loader,"
            " COUNT(*) AS n FROM results r JOIN models m ON r.model_id = m.id"
            " JOIN sweeps s ON m.sweep_id = s.id WHERE r.provenance IS NOT NULL"
            f" AND json_extract(r.provenance, '$.loader') IN ({names})"
            " GROUP BY s.id, loader ORDER BY s.id, loader", IMAGE_LOADERS).fetchall()
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["sweep"], {})[r["loader"]] = r["n"]
        return out

    def epochs(self, result_ids: Iterable[int] | None = None) -> "pd.DataFrame":
        """Per-epoch curves (result_id, epoch, train_loss, top1, top5, lr, seconds,
        eval_seconds)."""
        import pandas as pd

        sql = "SELECT * FROM epochs"
        args: list = []
        if result_ids is not None:
            ids = list(result_ids)
            sql += f" WHERE result_id IN ({','.join('?' * len(ids))})"
            args = ids
        return pd.read_sql_query(sql + " ORDER BY result_id, epoch", self.conn, params=args)

    # ---- decisions (dsd decide) -----------------------------------------------------------
    def outcomes(self, sweep: str, *, dataset: str, recipe_hash: str) -> dict[int, dict]:
        """{model index: {result_id, status, top1, retried}} of a sweep's results under
        (dataset, recipe hash); a model without a result is absent. `retried`: `dsd decide`
        set its failed result back to pending once (`retry_failed_once`)."""
        sid = self.sweep(sweep)["id"]
        rows = self.conn.execute(
            "SELECT m.idx, r.id AS result_id, r.status, r.top1, t.result_id IS NOT NULL AS"
            " retried FROM results r JOIN models m ON r.model_id = m.id LEFT JOIN"
            " decision_retries t ON t.result_id = r.id WHERE m.sweep_id = ? AND r.dataset = ?"
            " AND r.recipe_hash = ? ORDER BY m.idx", (sid, dataset, recipe_hash)).fetchall()
        return {r["idx"]: {"result_id": r["result_id"], "status": r["status"], "top1": r["top1"],
                           "retried": bool(r["retried"])} for r in rows}

    def retry_failed_once(self, sweep: str, *, dataset: str, recipe_hash: str,
                          indices: Iterable[int]) -> list[int]:
        """Failed → pending (error and epochs cleared, as `retry_failed`) for the models
        numbered `indices` whose failed result was never retried this way, and remember that
        they were, in one transaction; returns the indices set back."""
        sid, keep = self.sweep(sweep)["id"], set(indices)
        with self.transaction() as c:
            rows = [r for r in c.execute(
                "SELECT r.id, m.idx FROM results r JOIN models m ON r.model_id = m.id WHERE"
                " m.sweep_id = ? AND r.status = 'failed' AND r.dataset = ? AND"
                " r.recipe_hash = ? AND r.id NOT IN (SELECT result_id FROM decision_retries)"
                " ORDER BY m.idx", (sid, dataset, recipe_hash)) if r["idx"] in keep]
            now = _now()
            for r in rows:
                c.execute("UPDATE results SET status='pending', error=NULL, epochs_done=0,"
                          " updated=? WHERE id=?", (now, r["id"]))
                c.execute("DELETE FROM epochs WHERE result_id=?", (r["id"],))
                c.execute("INSERT INTO decision_retries (result_id, created) VALUES (?,?)",
                          (r["id"], now))
        return [r["idx"] for r in rows]

    def decision(self, sweep_a: str, sweep_b: str, *, dataset: str,
                 recipe_hash: str) -> dict | None:
        """The recorded comparison of two sweeps under (dataset, recipe hash), in either order
        (its sweeps as first recorded): id, sweep_a, sweep_b (names), dataset, recipe,
        recipe_hash, design (dict), created; None when there is none."""
        ids = (self.sweep(sweep_a)["id"], self.sweep(sweep_b)["id"])
        row = self.conn.execute(
            _DECISION_SQL + " WHERE ((d.sweep_a = ? AND d.sweep_b = ?) OR (d.sweep_a = ? AND"
            " d.sweep_b = ?)) AND d.dataset = ? AND d.recipe_hash = ?",
            (*ids, *ids[::-1], dataset, recipe_hash)).fetchone()
        return None if row is None else _decision_row(row)

    def add_decision(self, sweep_a: str, sweep_b: str, *, dataset: str, recipe: str,
                     recipe_hash: str, design: dict) -> int:
        """Record a new comparison of two sweeps with its design; returns its id."""
        ids = (self.sweep(sweep_a)["id"], self.sweep(sweep_b)["id"])
        with self.transaction() as c:
            return c.execute(
                "INSERT INTO decisions (sweep_a, sweep_b, dataset, recipe, recipe_hash, design,"
                " created) VALUES (?,?,?,?,?,?,?)",
                (*ids, dataset, recipe, recipe_hash, json.dumps(design, sort_keys=True),
                 _now())).lastrowid

    def decisions(self, sweeps: Iterable[str] | None = None) -> list[dict]:
        """Recorded comparisons (`decision`'s rows), in the order they were started; with
        `sweeps`, those comparing at least one of them."""
        rows = [_decision_row(r) for r in self.conn.execute(_DECISION_SQL + " ORDER BY d.id")]
        if sweeps is None:
            return rows
        names = set(sweeps)
        return [r for r in rows if r["sweep_a"] in names or r["sweep_b"] in names]

    def add_looks(self, decision_id: int, looks: Iterable[dict]) -> None:
        """Record looks of a comparison (keys: look, n_a, n_b, statistic, threshold,
        alpha_spent, p_prob, decision, models (dict)) in one transaction; a look recorded
        before is an error (looks are never rewritten)."""
        now = _now()
        try:
            with self.transaction() as c:
                c.executemany(
                    "INSERT INTO decision_looks (decision_id, look, n_a, n_b, statistic,"
                    " threshold, alpha_spent, p_prob, decision, models, created) VALUES"
                    " (?,?,?,?,?,?,?,?,?,?,?)",
                    [(decision_id, k["look"], k["n_a"], k["n_b"], k["statistic"], k["threshold"],
                      k["alpha_spent"], k["p_prob"], k["decision"],
                      json.dumps(k["models"], sort_keys=True), now) for k in looks])
        except sqlite3.IntegrityError as e:
            raise DsdError(f"comparison {decision_id}: a look is recorded already ({e})") from None

    def decision_looks(self, decision_id: int) -> list[dict]:
        """The recorded looks of a comparison in look order (`add_looks`' keys, models as a
        dict, created: when the look was recorded; NULL numbers as NaN)."""
        rows = self.conn.execute("SELECT * FROM decision_looks WHERE decision_id = ? ORDER BY"
                                 " look", (decision_id,)).fetchall()
        out = []
        for r in rows:
            row = dict(r)
            row["models"] = json.loads(row["models"])
            for k in ("statistic", "threshold", "alpha_spent", "p_prob"):
                row[k] = float("nan") if row[k] is None else row[k]
            out.append(row)
        return out


_DECISION_SQL = ("SELECT d.*, a.name AS name_a, b.name AS name_b FROM decisions d"
                 " JOIN sweeps a ON a.id = d.sweep_a JOIN sweeps b ON b.id = d.sweep_b")


def _decision_row(r: sqlite3.Row) -> dict:
    return {"id": r["id"], "sweep_a": r["name_a"], "sweep_b": r["name_b"],
            "dataset": r["dataset"], "recipe": r["recipe"], "recipe_hash": r["recipe_hash"],
            "design": json.loads(r["design"]), "created": r["created"]}


def _tables(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """{table: [columns]} of a database (SQLite's own tables left out)."""
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                        " AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {t: [c[1] for c in conn.execute(f"PRAGMA table_info({t!r})")] for t in names}


@functools.lru_cache(maxsize=1)
def schema_tables() -> dict[str, list[str]]:
    """The tables and columns that SCHEMA creates (read from SCHEMA itself)."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    return _tables(conn)


def check_dsd_file(conn: sqlite3.Connection, path: str, *, create: bool) -> None:
    """Refuse a SQLite file that is not a dsd store (unversioned, with other tables) before
    anything is written into it; without `create`, refuse an empty one too."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version:
        return
    tables = _tables(conn)
    if tables:
        raise DsdError(f"{path}: not a dsd store (an SQLite file with tables "
                       f"{', '.join(tables)}); nothing written; use another --store")
    if not create:
        raise DsdError(f"{path}: an empty file, not a dsd store yet; "
                       f"`dsd sample` or `dsd import` with `--store {path}` creates one")


def validate_schema(conn: sqlite3.Connection, path: str) -> None:
    """Every table and column of SCHEMA must exist (after migration): one line naming what is
    missing, instead of an SQL error at the first query that needs it."""
    have = _tables(conn)
    for table, cols in schema_tables().items():
        if table not in have:
            raise DsdError(f"{path}: damaged dsd store: table {table!r} is missing; "
                           f"use another --store")
        missing = [c for c in cols if c not in have[table]]
        if missing:
            raise DsdError(f"{path}: damaged dsd store: table {table!r} lacks column(s) "
                           f"{', '.join(missing)}; use another --store")


def _window_text(window_json: str) -> str:
    w = json.loads(window_json)
    return ", ".join(f"{k} {_short(lo)}–{_short(hi)}" for k, (lo, hi) in w.items()
                     if lo is not None)


def _short(x: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.4g}{unit}"
    return f"{x:g}"


def _has_kernel(block) -> bool:
    """Whether a block type has a kernel size parameter (its specs omit k = 3)."""
    from . import blocks

    try:
        return block is not None and "k" in blocks.get_block(block).uses
    except DsdError:  # a block of someone else's, not loaded here
        return False


def _model_row(sweep: str, r: sqlite3.Row) -> dict:
    spec = json.loads(r["spec"])
    row = {"sweep": sweep, "index": r["idx"], "model_id": r["id"], "hash": r["hash"],
           "flops": r["flops"], "params": r["params"], "acts": r["acts"],
           "opaque": bool(r["opaque"])}
    # an opaque model (imported ResNet/vanilla/NAS cell) has no stages; its depths and widths,
    # where the source gives them, still fill depth and max_width
    stages = spec.get("stages") or [{"d": d, "w": w, "b": None, "g": None} for d, w in
                                    zip(spec.get("ds") or [], spec.get("ws") or [])]
    for key in ("d", "w", "b", "g"):
        for i, s in enumerate(stages, 1):  # b as a number: "1/4" in a spec's JSON is 0.25
            row[f"{key}{i}"] = float(Fraction(s[key])) if isinstance(s[key], str) else s[key]
    if any("k" in s for s in stages) or _has_kernel(spec.get("block")):
        for i, s in enumerate(stages, 1):
            row[f"k{i}"] = s.get("k", 3)
    row["depth"] = sum(s["d"] for s in stages) if stages else None
    row["max_width"] = max(s["w"] for s in stages) if stages else None
    sampled = json.loads(r["sampled"])
    for key in ("w0", "wa", "wm"):
        if key in sampled:
            row[key] = sampled[key]
    if "d" in sampled and "wm" in sampled:
        row["d"] = sampled["d"]
    for key in ("fit_w0", "fit_wa", "fit_wm", "e_fit"):
        row[key] = r[key]
    row["spec"] = r["spec"]
    row["sampled"] = r["sampled"]
    return row


def load(path: str | os.PathLike | None = None, *, create: bool = False) -> Store:
    """Open a store: `path`, else `DSD_STORE`, else ./dsd.sqlite; a missing one is an error
    unless `create` (what writing commands pass)."""
    return Store(path if path is not None else default_path(), create=create)
