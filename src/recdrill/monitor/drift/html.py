"""The ``--html`` page of ``recdrill drift check``: one self-contained file, no network needed.

A table of every column's test, then per column the two distributions overlaid (histograms of
densities for numbers, shares of the 20 commonest categories otherwise) as PNG images embedded in
base64. matplotlib loads only when a page is written, and draws on its own ``Figure`` (no pyplot
state), so it is safe in a server process too. The HTML comes from a Jinja2 template with
autoescaping on: column names and categories come from the user's files.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from recdrill.monitor.drift.batch import DriftCheck

TOP_CATEGORIES = 20
STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.drift{color:#b00;font-weight:bold}"
    "figure{display:inline-block;margin:1em}"
)


def _png(reference: pd.Series[Any], current: pd.Series[Any], numeric: bool, title: str) -> str:
    from matplotlib.figure import Figure  # lazily: matplotlib costs a second to import

    figure = Figure(figsize=(5, 3), dpi=80)
    axes = figure.subplots()
    ref, cur = reference.dropna(), current.dropna()
    if numeric:
        pooled = np.concatenate([ref.to_numpy(float), cur.to_numpy(float)])
        edges = np.histogram_bin_edges(pooled, bins=30).tolist()
        axes.hist(ref, bins=edges, density=True, alpha=0.5, label="reference")
        axes.hist(cur, bins=edges, density=True, alpha=0.5, label="current")
    else:
        shares = pd.DataFrame(
            {
                "reference": ref.astype(str).value_counts(normalize=True),
                "current": cur.astype(str).value_counts(normalize=True),
            }
        ).fillna(0.0)
        shares = shares.loc[shares.max(axis=1).sort_values(ascending=False).index[:TOP_CATEGORIES]]
        x = np.arange(len(shares))
        axes.bar(x - 0.2, shares["reference"], width=0.4, label="reference")
        axes.bar(x + 0.2, shares["current"], width=0.4, label="current")
        axes.set_xticks(x, [label[:12] for label in shares.index], rotation=45, ha="right", fontsize=7)
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("recdrill.monitor.drift", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def write_html(path: Path, check: DriftCheck, reference: pd.DataFrame, current: pd.DataFrame) -> None:
    """Write the page for ``check`` (computed on ``reference`` and ``current``) to ``path``."""
    figures = []
    for c in check.columns.values():
        title = f"{c.name}: {c.method} {c.score:.3g} ({'drift' if c.drift else 'no drift'})"
        figures.append((c.name, _png(reference[c.name], current[c.name], c.kind == "numeric", title)))
    page = _ENVIRONMENT.get_template("drift.html.j2").render(check=check, figures=figures, style=STYLE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page + "\n")
