"""SQL: read-only, sandboxed queries over the store, with examples and CSV download."""

import streamlit as st

from toptune.dashboard import data
from toptune.dashboard.widgets.ui import literal, no_store
from toptune.errors import ToptuneError

EXAMPLES = {
    "Latest runs": "SELECT id, status, method, backbone, classifier, dataset, seed, accuracy, train_time_s\n"
                   "FROM runs ORDER BY created_at DESC LIMIT 20",
    "Accuracy and time by classifier": "SELECT classifier, count(*) AS runs, avg(accuracy) AS accuracy,\n"
                                       "       avg(train_time_s) AS train_time_s\n"
                                       "FROM runs WHERE status = 'finished' AND method = 'top-tune'\n"
                                       "GROUP BY classifier ORDER BY accuracy DESC",
    "Top-tuning vs fine-tuning per comparison": (
        "SELECT comparison_id, any_value(dataset) AS dataset, any_value(backbone) AS backbone,\n"
        "       avg(accuracy) FILTER (method = 'top-tune') AS top_accuracy,\n"
        "       avg(accuracy) FILTER (method = 'fine-tune') AS fine_accuracy,\n"
        "       avg(train_time_s) FILTER (method = 'fine-tune')\n"
        "         / avg(train_time_s) FILTER (method = 'top-tune') AS speedup\n"
        "FROM runs WHERE comparison_id IS NOT NULL AND status = 'finished' GROUP BY comparison_id"),
    "Most confused classes": "SELECT run_id, y_true, y_pred, n FROM confusion WHERE y_true <> y_pred\n"
                             "ORDER BY n DESC LIMIT 20",
    "Fine-tuning curves": "SELECT run_id, epoch, train_loss, train_accuracy, val_accuracy, lr, time_s\n"
                          "FROM epochs ORDER BY run_id, epoch",
    "Failed runs": "SELECT id, method, backbone, dataset, error FROM runs WHERE status = 'failed'",
    "A parameter from the JSON": "SELECT id, params->'run'->>'max_train' AS max_train, accuracy FROM runs",
}

path = data.store_path()
st.title("SQL")
st.caption("One read-only statement (SELECT, WITH, VALUES, DESCRIBE, SUMMARIZE, SHOW TABLES, EXPLAIN) over the "
           "store's tables only, run in a separate process that is stopped at the timeout or past 1 GB of memory: "
           "no writes, no files, no settings, no network, no extensions.")
if not path.exists():
    no_store(path)
    st.stop()


def use_example():
    st.session_state["sql"] = EXAMPLES[st.session_state["example"]]


st.selectbox("Examples", list(EXAMPLES), index=None, key="example", on_change=use_example,
             placeholder="insert an example query")
sql = st.text_area("Query", key="sql", bind="query-params", height=150,
                   placeholder="SELECT method, classifier, avg(accuracy) FROM runs GROUP BY ALL")
left, right = st.columns([1, 4], vertical_alignment="bottom")
timeout = left.number_input("Timeout (s)", min_value=1, max_value=600, value=30, step=1, key="timeout")
run = right.button("Run query", type="primary", icon=":material/play_arrow:", key="run_query")

if run:
    try:
        result, truncated = data.run_sql(path, sql, timeout)
    except ToptuneError as exc:
        st.session_state["sql_result"] = (sql, str(exc), None)
    else:
        st.session_state["sql_result"] = (sql, result, truncated)

shown = st.session_state.get("sql_result")
if shown and shown[0] == sql:
    _, result, truncated = shown
    if isinstance(result, str):
        st.error(literal(result), icon=":material/error:")
    else:
        st.caption(f"{len(result)} row(s)" + (" — only the first ones (the limit is 10,000)" if truncated else ""))
        st.dataframe(result, hide_index=True, key="sql_table")
        st.download_button("Download CSV", result.to_csv(index=False).encode(), "toptune-query.csv", "text/csv",
                           icon=":material/download:", key="sql_csv", on_click="ignore")

with st.expander("Tables and columns"):
    try:
        st.dataframe(data.schema(path), hide_index=True, key="schema_table")
    except ToptuneError as exc:
        st.error(literal(exc))
