"""Filter widgets shared by the pages, bound to URL query parameters.

Each filter's widget key is its query parameter, and the same key means the same filter on every page:
a URL such as ``/compare?dataset=digits&backbone=efficientnet_lite0`` opens that view, and a filter
chosen on Runs is still chosen on Compare (the URL carries it across the page switch).
"""

from __future__ import annotations

import streamlit as st

LABELS = {"dataset": "Dataset plugin", "dataset_label": "Dataset", "backbone": "Backbone", "method": "Method",
          "classifier": "Classifier", "status": "Status", "pretrain_source": "Pretrain source"}


def choose(options: dict[str, list], container=None) -> dict[str, list]:
    """One multiselect per column, offering its values (``column -> values``); returns the choices."""
    where = container or st.sidebar
    return {c: where.multiselect(LABELS.get(c, c), values, key=c, bind="query-params", placeholder="all")
            for c, values in options.items()}


def tags(options: list[str], container=None) -> list[str]:
    """Runs having every chosen tag (bound to the URL's ``tag``)."""
    where = container or st.sidebar
    return where.multiselect("Tags", options, key="tag", bind="query-params", placeholder="any",
                             help="runs having every tag chosen; tag runs in a run's detail or with toptune tag")


def search(container=None) -> str:
    where = container or st.sidebar
    return where.text_input("Search", key="q", bind="query-params", placeholder="id, name, error, parameter…",
                            help="every word must appear in the run's id, names, status, error or parameters")


def pick(label: str, choices: list[str], key: str, container=None, **kwargs) -> str:
    """A single choice bound to the URL (a sort column, a grouping)."""
    where = container or st
    return where.selectbox(label, choices, key=key, bind="query-params", **kwargs)
