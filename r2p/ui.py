"""The frame every page opens with: page config, the cached warehouse, sidebar filters kept in the URL.

``frame("Title")`` is the first call of ``app.py`` and of every file in ``pages/``. Filters live in
``st.query_params`` (so every view is a shareable link) and in a shadow copy in session state (so
they survive a move to another page, whose link carries no query string).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import streamlit as st

from metrics import overview
from metrics.filters import Filters
from r2p.warehouse import Warehouse, WarehouseBusy

REFRESH_SECONDS = 5.0
"""How often the dashboard process loads new landing batches by itself."""

APP_TITLE = "R2P Observatory"


def data_dir() -> Path:
    return Path(os.environ.get("R2P_DATA_DIR", "data"))


@st.cache_resource(show_spinner=False)
def open_warehouse(directory: str) -> Warehouse:
    """The process's one warehouse gateway, with a thread that loads new batches every few seconds
    (rebuilding the marts only when due: a collector landing every few seconds must not keep the
    dashboard rebuilding them all the time)."""
    warehouse = Warehouse(Path(directory))
    warehouse.refresh()

    def keep_loading() -> None:
        while not stop.wait(REFRESH_SECONDS):
            try:
                warehouse.refresh(defer_marts=True)
            except Exception as error:  # a bad batch must not stop the loop; it is shown on the next try
                warehouse.last_refresh_error = f"{type(error).__name__}: {error}"
            else:
                warehouse.last_refresh_error = None

    stop = threading.Event()
    warehouse.last_refresh_error = None
    threading.Thread(target=keep_loading, name="r2p-refresh", daemon=True).start()
    return warehouse


@dataclass
class Frame:
    """What a page gets from the frame: a read cursor, the filters and the warehouse gateway."""

    con: duckdb.DuckDBPyConnection
    filters: Filters
    warehouse: Warehouse
    options: overview.FilterOptions


# Filter name -> (URL key, is a multi-select). The widget key is "filter_" + name.
_FILTERS = {"start": ("from", False), "end": ("to", False), "facilities": ("facility", True),
            "suppliers": ("supplier", True), "stages": ("stage", True)}


def _remembered(name: str) -> object:
    """The filter's value from the URL, else from the copy kept when leaving another page, else None."""
    url_key, multi = _FILTERS[name]
    if url_key in st.query_params:
        values = st.query_params.get_all(url_key)
        if multi:
            return values
        try:
            return dt.date.fromisoformat(values[0])
        except ValueError:
            return None
    return st.session_state.get(f"_kept_{name}")


def _sidebar_filters(options: overview.FilterOptions) -> Filters:
    """The sidebar's filter widgets, seeded from the URL (or the last page) and written back to it.

    Empty means unbounded: an empty date keeps new days in view as they load.
    """
    choices = {"facilities": options.facilities, "suppliers": options.suppliers, "stages": options.stages}
    for name, (_, multi) in _FILTERS.items():
        widget_key = f"filter_{name}"
        if widget_key not in st.session_state:
            value = _remembered(name)
            if multi:
                value = [v for v in (value or []) if v in choices[name]]
            elif value is not None and options.first_day:
                # a shared link may name a day the data no longer (or not yet) covers
                value = min(max(value, options.first_day), options.last_day)
            elif not options.first_day:
                value = None
            st.session_state[widget_key] = value
    sidebar = st.sidebar
    sidebar.header("Filters")
    bounds = {"min_value": options.first_day, "max_value": options.last_day} if options.first_day else {}
    values = {
        "start": sidebar.date_input("From", key="filter_start", **bounds),
        "end": sidebar.date_input("To", key="filter_end", **bounds),
        "facilities": sidebar.multiselect("Facility", choices["facilities"], key="filter_facilities"),
        "suppliers": sidebar.multiselect("Supplier", choices["suppliers"], key="filter_suppliers"),
        "stages": sidebar.multiselect("Stage", choices["stages"], key="filter_stages"),
    }
    for name, value in values.items():
        url_key, multi = _FILTERS[name]
        st.session_state[f"_kept_{name}"] = value
        if not value:
            st.query_params.pop(url_key, None)
        else:
            st.query_params[url_key] = value if multi else value.isoformat()
    return Filters(
        start=values["start"],
        end=values["end"],
        facilities=tuple(values["facilities"]),
        suppliers=tuple(values["suppliers"]),
        stages=tuple(values["stages"]),
    )


def frame(title: str) -> Frame:
    """Open a page: config, warehouse, sidebar filters (from and to the URL), refresh control."""
    st.set_page_config(page_title=f"{title} · {APP_TITLE}", page_icon="📦", layout="wide")
    try:
        warehouse = open_warehouse(str(data_dir()))
    except WarehouseBusy as busy:
        st.error(f"The warehouse is held by {busy.holder} (an `r2p refresh` or `rebuild`, or another dashboard). "
                 "Reload this page once it has finished.")
        st.stop()
    con = warehouse.reader()
    options = overview.filter_options(con)
    filters = _sidebar_filters(options)
    if st.sidebar.button("Refresh", help="Load new landing batches now (they also load every few seconds)"):
        st.sidebar.caption(warehouse.refresh().line())
    if warehouse.marts_behind:
        st.sidebar.caption("New batches have loaded; charts and tables include them at the next model build, "
                           "or at once with Refresh.")
    if warehouse.last_refresh_error:
        st.sidebar.error(f"Loading new batches failed: {warehouse.last_refresh_error}")
    st.title(title)
    return Frame(con=con, filters=filters, warehouse=warehouse, options=options)


def clicked(event) -> str | None:
    """The id that comes first in the customdata of the first point selected in an ``on_select`` chart
    event, as a string, or None. Plotly 6 hands customdata back as a dict keyed "0", "1"... and mangles
    numbers, so pages pass ids as strings and read them here."""
    points = event["selection"]["points"] if event else []
    if not points:
        return None
    data = points[0].get("customdata")
    if isinstance(data, dict):
        data = [data[key] for key in sorted(data, key=int)]
    elif not isinstance(data, list):
        data = [data]
    return None if not data or data[0] is None else str(data[0])
