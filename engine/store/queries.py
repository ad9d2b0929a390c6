"""Reads done where the data is: filters become SQL predicates, sorting and paging run in DuckDB, aggregates
are GROUP BYs, and JSON columns stay text unless a row is shown. The dashboard and the CLI read through
these, so what a page costs follows what it shows, not how many runs the store holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# Columns a filter may name (they are written into the SQL, so only these are accepted).
FILTERABLE = ("dataset", "dataset_label", "backbone", "method", "classifier", "status", "pretrain_source", "device")
# Columns text search looks in, JSON ones (and the tags list) included as their text.
SEARCHED = ("id", "name", "method", "backbone", "classifier", "dataset", "dataset_label", "status", "error",
            "comparison_id", "study_id", "sweep_id", "pretrain_source", "params", "tags", "note")
SORTABLE = ("created_at", "accuracy", "train_time_s", "fit_time_s", "extract_time_s", "dataset", "dataset_label",
            "backbone", "classifier", "method", "status", "seed", "peak_memory_mb", "n_train", "purity", "name",
            "archived_at")
# The input size a run's images were resized to: its parameter, else its recorded preprocessing (a SQL expression).
IMAGE_SIZE = ("CAST(coalesce(json_extract_string(params, '$.run.image_size'), "
              "json_extract_string(info, '$.preprocessing.input_size')) AS INTEGER)")
# Figures that live in the metrics JSON, readable as columns.
METRIC_COLUMNS = ("purity", "overlaps", "nmi", "ari")


def version(store_path) -> tuple:
    """Changes whenever the store does (its file or write-ahead log), for caching reads: a stat, no open."""
    out = []
    for suffix in ("", ".wal"):
        try:
            stat = os.stat(str(store_path) + suffix)
            out.append((stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


@dataclass(frozen=True)
class RunFilter:
    """Which runs: allowed values per column (empty: any), words that must all appear, columns whose empty
    value passes too (a fine-tuning run has no classifier, yet belongs beside the top-tuning runs), tags a run
    must all have, and archived runs: hidden (False, the default), only them (True) or both (None)."""

    equals: dict | tuple = field(default_factory=dict)  # {column: values}, or the same as (column, values) pairs
    search: str = ""
    keep_missing: tuple = ()
    extra: str = ""  # one more trusted predicate of the caller's, e.g. "comparison_id IS NOT NULL"
    tags: tuple = ()
    archived: bool | None = False

    def also(self, predicate: str) -> RunFilter:
        """This filter and one more trusted predicate."""
        return replace(self, extra=f"({self.extra}) AND {predicate}" if self.extra else predicate)

    def where(self, named: bool = False) -> tuple[str, list | dict]:
        """The WHERE clause (empty when nothing is filtered) and its parameters: positional (``?``), or named
        ``$f0``, ``$f1`` … (a dict) to sit beside other named parameters."""
        clauses, params = [], []
        for column, values in dict(self.equals).items():
            if column not in FILTERABLE:
                raise ValueError(f"cannot filter runs by {column!r}")
            values = [str(v) for v in (values or [])]
            if values:
                test = f"CAST({column} AS VARCHAR) IN ({', '.join('?' * len(values))})"
                clauses.append(f"({test} OR {column} IS NULL)" if column in self.keep_missing else test)
                params += values
        if self.search.split():
            haystack = " || ' ' || ".join(f"coalesce(CAST({c} AS VARCHAR), '')" for c in SEARCHED)
            for word in self.search.lower().split():
                clauses.append(f"contains(lower({haystack}), ?)")
                params.append(word)
        kept, values = housekeeping(self.tags, self.archived)
        clauses += kept
        params += values
        if self.extra:
            clauses.append(f"({self.extra})")
        sql = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        if not named:
            return sql, params
        parts = sql.split("?")  # the clauses are ours; a user's words are parameters, never in the text
        return "".join(p + (f"$f{k}" if k < len(params) else "") for k, p in enumerate(parts)), \
            {f"f{k}": v for k, v in enumerate(params)}


def housekeeping(tags=(), archived: bool | None = False) -> tuple[list[str], list]:
    """The predicates (and their parameters) for runs having every one of ``tags``, and for archived runs:
    hidden (False), only them (True) or both (None). ``RunFilter`` and ``Store.runs`` share them."""
    clauses, params = [], []
    if tags:
        clauses.append("list_has_all(coalesce(tags, []), ?)")
        params.append([str(t) for t in tags])
    if archived is not None:
        clauses.append("archived_at IS NOT NULL" if archived else "archived_at IS NULL")
    return clauses, params


def _select(columns) -> str:
    """Columns, a metric figure read out of the metrics JSON where it is not a column of its own."""
    return ", ".join(f"CAST(json_extract(metrics, '$.{c}') AS DOUBLE) AS {c}" if c in METRIC_COLUMNS else c
                     for c in columns)


def frame(store, columns, flt: RunFilter | None = None, order: str = "created_at", descending: bool = True,
          limit: int | None = None, offset: int = 0):
    """Runs as a pandas DataFrame of just these columns, sorted, optionally one page of them."""
    if order not in SORTABLE:
        raise ValueError(f"cannot sort runs by {order!r}")
    where, params = (flt or RunFilter()).where()
    sql = (f"SELECT {_select(columns)} FROM runs{where} ORDER BY {_select([order]).split(' AS ')[0]} "
           f"{'DESC' if descending else 'ASC'} NULLS LAST, id")
    if limit is not None:
        sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    with store.reading() as con:
        return con.execute(sql, params).df()


def count(store, flt: RunFilter | None = None) -> dict[str, int]:
    """How many runs match, per status (and ``"all"``)."""
    where, params = (flt or RunFilter()).where()
    with store.reading() as con:
        rows = con.execute(f"SELECT status, count(*) FROM runs{where} GROUP BY status", params).fetchall()
    counts = dict(rows)
    return {**counts, "all": sum(counts.values())}


def options(store, columns, flt: RunFilter | None = None) -> dict[str, list[str]]:
    """The distinct non-empty values of each column (a filter's choices), in one pass."""
    where, params = (flt or RunFilter()).where()
    parts = [f"SELECT '{c}' AS col, CAST({c} AS VARCHAR) AS v FROM runs{where} GROUP BY ALL" for c in columns
             if c in FILTERABLE]
    out = {c: [] for c in columns}
    if parts:
        with store.reading() as con:
            for column, value in con.execute(" UNION ALL ".join(parts), params * len(parts)).fetchall():
                if value is not None:
                    out[column].append(value)
    return {c: sorted(v) for c, v in out.items()}


def seed_summary(store, flt: RunFilter | None = None):
    """Finished runs that differ only by seed, as mean ± std of accuracy and time, in one GROUP BY.

    Two runs share a configuration when their parameters are equal once every namespace's seed is removed.
    """
    where, params = (flt or RunFilter()).also("status = 'finished' AND accuracy IS NOT NULL").where()
    unseeded = ("json_merge_patch(params, '{\"run\": {\"seed\": null}, \"backbone\": {\"seed\": null}, "
                "\"dataset\": {\"seed\": null}, \"classifier\": {\"seed\": null}}')")
    sql = f"""SELECT method, backbone, classifier, dataset, left(md5(CAST({unseeded} AS VARCHAR)), 8) AS config,
                     count(*) AS runs, count(DISTINCT seed) AS seeds, avg(accuracy) AS accuracy_mean,
                     coalesce(stddev_samp(accuracy), 0) AS accuracy_std, avg(train_time_s) AS train_time_s_mean,
                     coalesce(stddev_samp(train_time_s), 0) AS train_time_s_std
              FROM runs{where} GROUP BY ALL ORDER BY dataset, method, accuracy_mean DESC"""
    with store.reading() as con:
        return con.execute(sql, params).df()


def comparisons(store, first: str, second: str, flt: RunFilter | None = None):
    """One row per comparison that has finished runs of both methods (``first`` and ``second``): each side's
    run count, accuracy and time (mean, sample std), the first method's names, the run ids (first's, then
    second's, oldest first), oldest comparison first. One GROUP BY, however many comparisons there are."""
    where, params = (flt or RunFilter()).also("comparison_id IS NOT NULL AND status = 'finished'").where(named=True)
    sides = []
    for side in ("first", "second"):
        is_side = f"method = ${side}"
        sides.append(f"""count(*) FILTER ({is_side}) AS {side}_n,
            avg(accuracy) FILTER ({is_side}) AS {side}_accuracy,
            coalesce(stddev_samp(accuracy) FILTER ({is_side}), 0) AS {side}_accuracy_std,
            avg(train_time_s) FILTER ({is_side}) AS {side}_train_time_s,
            coalesce(stddev_samp(train_time_s) FILTER ({is_side}), 0) AS {side}_train_time_s_std""")
    names = ", ".join(f"arg_min({c}, created_at) FILTER (method = $first) AS {c}"
                      for c in ("dataset", "dataset_label", "backbone", "classifier", "pretrain_source"))
    settings = f"""arg_min({IMAGE_SIZE}, created_at) FILTER (method = $first) AS first_image_size,
                   arg_min({IMAGE_SIZE}, created_at) FILTER (method = $second) AS second_image_size,
                   arg_min(CAST(json_extract_string(params, '$.run.epochs') AS INTEGER), created_at)
                       FILTER (method = $second) AS second_epochs,
                   arg_min(json_extract_string(info, '$.plan.preset'), created_at) AS preset,
                   count(DISTINCT seed) AS seeds"""
    sql = f"""SELECT comparison_id, {names}, {", ".join(sides)}, {settings}, min(created_at) AS created_at,
                     list(id ORDER BY method = $first DESC, created_at) AS run_ids
              FROM runs{where} GROUP BY comparison_id HAVING first_n > 0 AND second_n > 0 ORDER BY created_at"""
    with store.reading() as con:
        return con.execute(sql, {"first": first, "second": second, **params}).df()


def tags(store, flt: RunFilter | None = None) -> list[str]:
    """Every tag the runs ``flt`` keeps carry, sorted (a tag filter's choices)."""
    where, params = (flt or RunFilter()).where()
    with store.reading() as con:
        rows = con.execute(f"SELECT DISTINCT unnest(tags) AS tag FROM runs{where} ORDER BY tag", params).fetchall()
    return [r[0] for r in rows if r[0] is not None]


def points(store, flt: RunFilter | None = None, limit: int = 5000):
    """Finished runs for an accuracy-against-time chart: (frame, how many there are in all).

    Past ``limit`` runs the frame is a fixed sample of them, plus every run on a Pareto front of its dataset and
    image size (no other run of the same data at the same size is both faster and more accurate), so each front
    is exact. Each run comes with its dataset label and image size, which charts group by.
    """
    where, params = (flt or RunFilter()).also("status = 'finished' AND accuracy IS NOT NULL").where()
    base = f"SELECT *, {IMAGE_SIZE} AS image_size FROM runs{where}"
    columns = "id, method, backbone, classifier, dataset, dataset_label, image_size, seed, accuracy, train_time_s"
    with store.reading() as con:
        total = con.execute(f"SELECT count(*) FROM ({base})", params).fetchone()[0]
        if total <= limit:
            return con.execute(f"SELECT {columns} FROM ({base})", params).df(), total
        sql = f"""WITH f AS ({base}),
                  ranked AS (SELECT {columns}, max(accuracy) OVER (
                                        PARTITION BY coalesce(dataset_label, dataset), image_size
                                        ORDER BY train_time_s, accuracy DESC, id
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
                             FROM f)
                  SELECT {columns} FROM ranked WHERE before IS NULL OR accuracy > before
                  UNION
                  SELECT {columns} FROM f WHERE hash(id) % {total} < {limit}"""
        return con.execute(sql, params).df(), total


def grouped_stats(store, by: str, value: str, flt: RunFilter | None = None):
    """Mean, std and count of ``value`` over finished runs grouped by ``by`` and method (an ablation)."""
    if by not in FILTERABLE or value not in SORTABLE:
        raise ValueError(f"cannot group {value!r} by {by!r}")
    where, params = (flt or RunFilter()).also(f"status = 'finished' AND {value} IS NOT NULL").where()
    sql = f"""SELECT {by}, method, avg({value}) AS mean, coalesce(stddev_samp({value}), 0) AS std, count(*) AS count
              FROM runs{where} GROUP BY ALL ORDER BY {by}, method"""
    with store.reading() as con:
        return con.execute(sql, params).df()


def exists(store_path) -> bool:
    return Path(store_path).exists()
