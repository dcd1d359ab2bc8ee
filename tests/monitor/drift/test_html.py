"""The ``--html`` page of a drift check: one self-contained file, a row per column, embedded PNGs,
and column names escaped."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recdrill.monitor.drift.batch import DriftCheck, check_frames
from recdrill.monitor.drift.html import write_html

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    many = [f"c{i}" for i in range(30)]  # more categories than the chart shows
    ref = pd.DataFrame(
        {
            "price": rng.normal(10, 2, 300),
            "<b>name</b>": rng.choice(many, 300),
            "flag": rng.choice([True, False], 300),
        }
    )
    cur = pd.DataFrame(
        {
            "price": rng.normal(14, 2, 300),
            "<b>name</b>": rng.choice(many, 300),
            "flag": rng.choice([True, False], 300),
        }
    )
    return ref, cur


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[DriftCheck, Path]:
    """One page written (matplotlib draws for a second or two): the check and where it went."""
    ref, cur = _tables()
    check = check_frames(ref, cur)
    out = tmp_path_factory.mktemp("html") / "reports" / "nested" / "drift.html"  # folders are made
    write_html(out, check, ref, cur)
    return check, out


def test_the_page_has_a_row_and_a_png_per_column_and_escapes_names(written: tuple[DriftCheck, Path]) -> None:
    page = written[1].read_text()
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert "<b>name</b>" not in page and "&lt;b&gt;name&lt;/b&gt;" in page
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", page)
    assert rows == [
        ("price", "numeric", "ks"),
        ("&lt;b&gt;name&lt;/b&gt;", "categorical", "chi2"),
        ("flag", "categorical", "chi2"),
    ]
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(image).startswith(PNG_MAGIC) for image in images)
    assert "http://" not in page and "https://" not in page  # nothing to fetch: works offline


def test_the_verdict_says_how_many_columns_drifted(written: tuple[DriftCheck, Path]) -> None:
    check, out = written
    assert [c.drift for c in check.columns.values()] == [True, False, False]
    page = out.read_text()
    assert "Dataset: <b>no drift</b> (1 of 3 columns drifted" in page
    assert page.count('<span class="drift">drift</span>') == 1
    assert f"<td>{check.columns['price'].score:.4g}</td>" in page
