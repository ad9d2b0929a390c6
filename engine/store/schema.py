"""The store's schema: numbered migrations, the version, and which columns a result fills in.

Schema changes are numbered migrations applied by the writer; readers of an old file trigger them, and a
file from a newer toptune is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import StoreError
from ..results import result_columns

# Each entry upgrades the schema from version i to i+1; never edit one that has shipped, append.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            status VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            backbone VARCHAR,
            pretrain_source VARCHAR,
            classifier VARCHAR,
            dataset VARCHAR NOT NULL,
            seed INTEGER,
            params JSON,
            device VARCHAR,
            host VARCHAR,
            pid INTEGER,
            accuracy DOUBLE,
            train_time_s DOUBLE,
            extract_time_s DOUBLE,
            fit_time_s DOUBLE,
            predict_time_s DOUBLE,
            peak_memory_mb DOUBLE,
            trained_params BIGINT,
            n_train INTEGER,
            n_test INTEGER,
            n_classes INTEGER,
            feature_dim INTEGER,
            cache_hit BOOLEAN,
            error VARCHAR,
            info JSON,
            spec JSON,
            toptune_version VARCHAR
        )""",
        """CREATE TABLE predictions (
            run_id VARCHAR NOT NULL,
            sample INTEGER NOT NULL,
            y_true INTEGER NOT NULL,
            y_pred INTEGER NOT NULL
        )""",
        """CREATE VIEW confusion AS
            SELECT run_id, y_true, y_pred, count(*) AS n FROM predictions GROUP BY run_id, y_true, y_pred""",
    ],
    [
        # Fine-tuning vs top-tuning comparisons, per-epoch curves, and the energy estimate.
        "ALTER TABLE runs ADD COLUMN comparison_id VARCHAR",
        "ALTER TABLE runs ADD COLUMN energy_kwh DOUBLE",
        "ALTER TABLE runs ADD COLUMN co2_g DOUBLE",
        "ALTER TABLE runs ADD COLUMN energy_source VARCHAR",
        """CREATE TABLE epochs (
            run_id VARCHAR NOT NULL,
            epoch INTEGER NOT NULL,
            train_loss DOUBLE,
            train_accuracy DOUBLE,
            val_accuracy DOUBLE,
            lr DOUBLE,
            time_s DOUBLE
        )""",
    ],
    [
        # Studies (robustness, data selection, clustering, sweeps) link runs; method-specific metrics
        # (purity, NMI, ...) live in one JSON column so new methods need no schema change.
        "ALTER TABLE runs ADD COLUMN study_id VARCHAR",
        "ALTER TABLE runs ADD COLUMN metrics JSON",
    ],
    [
        # Sweeps: the grid's id and each cell's id, so a sweep can resume where it stopped.
        "ALTER TABLE runs ADD COLUMN sweep_id VARCHAR",
        "ALTER TABLE runs ADD COLUMN cell_key VARCHAR",
    ],
    [
        # Saved models (bytes on disk beside the store) and, for sweep cells, the Ray node that ran them.
        "ALTER TABLE runs ADD COLUMN model_bytes BIGINT",
        "ALTER TABLE runs ADD COLUMN node_id VARCHAR",
        "ALTER TABLE runs ADD COLUMN node_host VARCHAR",
    ],
    [
        # Housekeeping and which data: a run's name, note and tags, when it was archived (hidden by default),
        # and the dataset's label (a path-based dataset's folder name, not the plugin's). Earlier runs get the
        # last part of their dataset path, or the plugin's name.
        "ALTER TABLE runs ADD COLUMN dataset_label VARCHAR",
        "ALTER TABLE runs ADD COLUMN name VARCHAR",
        "ALTER TABLE runs ADD COLUMN note VARCHAR",
        "ALTER TABLE runs ADD COLUMN tags VARCHAR[]",
        "ALTER TABLE runs ADD COLUMN archived_at TIMESTAMP",
        """UPDATE runs SET dataset_label = coalesce(nullif(regexp_extract(
               rtrim(json_extract_string(params, '$.dataset.path'), '/'), '[^/]+$'), ''), dataset)""",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

STATUSES = ("running", "finished", "failed", "interrupted")
RESULT_COLUMNS = ("finished_at", *result_columns())
EPOCH_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_accuracy", "lr", "time_s")
JSON_COLUMNS = ("params", "info", "spec", "metrics")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def version(con) -> int:
    """The schema version of an open store (0 for an empty file)."""
    has = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_info'").fetchone()[0]
    if not has:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_info").fetchone()[0]


def check_not_newer(found: int, path) -> None:
    if found > SCHEMA_VERSION:
        raise StoreError(f"store {path} has schema v{found}, newer than this toptune (v{SCHEMA_VERSION}); "
                         "upgrade toptune")


def migrate(con, path) -> None:
    """Bring an open read-write store to ``SCHEMA_VERSION`` in one transaction."""
    found = version(con)
    check_not_newer(found, path)
    if found == SCHEMA_VERSION:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE TABLE IF NOT EXISTS schema_info (version INTEGER, applied_at TIMESTAMP)")
        for target in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target - 1]:
                con.execute(statement)
            con.execute("INSERT INTO schema_info VALUES (?, ?)", [target, utcnow()])
        con.execute("COMMIT")
    except Exception as exc:
        con.execute("ROLLBACK")
        raise StoreError(f"migrating store {path} to schema v{SCHEMA_VERSION} failed: {exc}") from exc
