"""The ``--html`` page of ``recdrill drift check``: one self-contained file, no network needed.

A table of every column's test, then per column the two distributions overlaid (histograms of
densities for numbers, shares of the 20 commonest categories otherwise) as PNG images embedded in
base64. matplotlib loads only when a page is written, and draws on its own ``Figure`` (no pyplot
state), so it is safe in a server process too.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

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


def write_html(path: Path, check: DriftCheck, reference: pd.DataFrame, current: pd.DataFrame) -> None:
    """Write the page for ``check`` (computed on ``reference`` and ``current``) to ``path``."""
    rows, figures = [], []
    for c in check.columns.values():
        name = html.escape(c.name)
        verdict = '<span class="drift">drift</span>' if c.drift else "no drift"
        rows.append(
            f"<tr><td>{name}</td><td>{c.kind}</td><td>{c.method}</td><td>{c.score:.4g}</td>"
            f"<td>{c.threshold:.4g}</td><td>{verdict}</td></tr>"
        )
        title = f"{c.name}: {c.method} {c.score:.3g} ({'drift' if c.drift else 'no drift'})"
        png = _png(reference[c.name], current[c.name], c.kind == "numeric", title)
        figures.append(f'<figure><img alt="{name}" src="data:image/png;base64,{png}"></figure>')
    verdict = "drift" if check.dataset_drift else "no drift"
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>recdrill drift check</title>"
        f"<style>{STYLE}</style></head><body><h1>Drift check</h1>"
        f"<p>Dataset: <b>{verdict}</b> ({check.n_drifted} of {len(check.columns)} columns drifted; "
        f"the dataset drifts when at least half do).</p>"
        "<table><tr><th>column</th><th>kind</th><th>method</th><th>score</th><th>threshold</th>"
        f"<th>verdict</th></tr>{''.join(rows)}</table>{''.join(figures)}</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
