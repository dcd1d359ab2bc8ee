"""The drill report from a hand-built journal: files, sections, verdicts and autoescaped strings."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from recdrill.drills.journal import build_journal
from recdrill.drills.report import render_html, write_report
from recdrill.drills.timeline import RequestTable
from tests.drills.test_journal import EVIL, PLAIN, sample_inputs, sample_journal

FAKE_PNG = b"\x89PNG\r\n\x1a\nnot really an image"
SECTIONS = [
    "Summary",
    "Timeline",
    "Steady-state hypotheses",
    "Scorecard",
    "Fault details",
    "Feedback audit",
    "Afterwards",
]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path]:
    """The evil journal, written as a report: (journal, report.json, report.html)."""
    journal = sample_journal(EVIL)
    json_path, html_path = write_report(journal, tmp_path_factory.mktemp("report") / "out")
    return journal, json_path, html_path


@pytest.fixture(scope="module")
def plain_html() -> str:
    return render_html(sample_journal(PLAIN), FAKE_PNG)


def tags(html: str) -> Counter[str]:
    return Counter(re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", html))


def test_write_report_writes_the_json_the_plot_and_the_page(
    written: tuple[dict[str, Any], Path, Path],
) -> None:
    journal, json_path, html_path = written
    assert (json_path.name, html_path.name) == ("report.json", "report.html")
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(journal, default=str))
    png = (json_path.parent / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    html = html_path.read_text()
    embedded = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert embedded is not None and base64.b64decode(embedded.group(1)) == png


def test_the_page_has_its_sections_in_order(plain_html: str) -> None:
    assert re.findall(r"<h2>(.*?)</h2>", plain_html) == SECTIONS
    assert "<title>recdrill report: hand-built</title>" in plain_html
    assert "<h1>Drill report: hand-built</h1>" in plain_html


def test_the_verdicts_of_the_sample_drill(plain_html: str) -> None:
    assert '<p class="bad">status <b>completed</b>; deviated from the steady state</p>' in plain_html
    row = re.search(r"<td>available</td><td>availability</td><td>≥ 0.9</td>(.*?)</tr>", plain_html)
    assert row is not None
    assert row.group(1) == (
        '<td>1.000 <span class="ok">held</span></td>'
        '<td><span class="bad">deviated</span> (2 s out of bounds)</td>'
        '<td>1.000 <span class="ok">held</span></td>'
    )
    assert '<span class="bad">FAIL</span>' in plain_html and ">pass<" not in plain_html
    assert "<br><small>alert:fallback</small>" in plain_html
    assert '<span class="bad">38</span> / 50 %' in plain_html  # quality kept 37.5 % of a 50 % goal
    assert '<td><span class="bad">1</span></td>' in plain_html  # one event lost
    assert 'all faults reverted: yes; <span class="ok">clean</span>' in plain_html
    assert "Left active: nothing;" in plain_html


def test_the_summary_and_feedback_figures(plain_html: str) -> None:
    assert "<tr><td>requests</td><td>40</td></tr>" in plain_html
    assert "<tr><td>availability after at most one retry</td><td>0.9000</td></tr>" in plain_html
    assert "<td>availability on first try</td><td>0.8750</td>" in plain_html
    assert (
        "<td>requests retried / failed on first try / failed after retry</td><td>5 / 5 / 4</td>" in plain_html
    )
    assert "<td>served by</td><td>popular: 2, primary: 34</td>" in plain_html
    assert "4 events posted during the drill, 2\nacknowledged, 1 refused" in plain_html
    assert "acknowledged but missing afterwards: <b>1</b>" in plain_html


def test_observations_leave_out_zero_counts_but_keep_zero_seconds(plain_html: str) -> None:
    assert "<td>note: nothing<br>replaced_s: 0.00</td>" in plain_html
    assert "count:" not in plain_html


def test_markup_in_the_journal_is_escaped(written: tuple[dict[str, Any], Path, Path]) -> None:
    html = written[2].read_text()
    assert "<script" not in html and "<img src=x" not in html and "<em>" not in html and "<i>" not in html
    for escaped in [
        "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt; &amp; co",  # title, heading, plot caption
        "a &amp; b &lt;i&gt;italic&lt;/i&gt;",
        "&lt;b&gt;broken&lt;/b&gt; &amp; ranker",
        "avail&lt;ability&gt;&amp;",
        "http://127.0.0.1:8000/?a=&lt;1&gt;&amp;b=2",
        "RuntimeError: &lt;img src=x onerror=alert(1)&gt; &amp; more",
        "&lt;script&gt;rollback()&lt;/script&gt;",
        "ranker/nan (&lt;script&gt;id&lt;/script&gt;)",
        "note: &lt;em&gt;seen&lt;/em&gt; &amp; told",
    ]:
        assert escaped in html, escaped
    assert html.count("<title>") == 1 and html.count("<h1>") == 1


def test_markup_comes_from_the_template_alone(
    written: tuple[dict[str, Any], Path, Path], plain_html: str
) -> None:
    assert tags(written[2].read_text()) == tags(plain_html)  # the same elements, whatever the strings


def test_missing_figures_render_as_dashes() -> None:
    inputs = sample_inputs()
    inputs.update(table=RequestTable.from_records([]), runs=[], status="failed")
    html = render_html(build_journal(**inputs), FAKE_PNG)
    assert "<tr><td>requests</td><td>0</td></tr>" in html
    assert "<td>p50 / p95 / p99 latency (ms)</td><td>- / - / -</td>" in html
    assert '<p class="bad">status <b>failed</b>;' in html
    assert re.search(r"<h2>Scorecard</h2>.*?<tbody></tbody>", html, re.S)  # no fault rows


def test_an_aborted_drill_with_most_traffic_unsent_says_why_and_that_its_judgement_is_weak() -> None:
    inputs = sample_inputs()
    inputs["status"] = "aborted"
    inputs["aborted"] = {"t": 7.5, "reason": "deadline", "detail": "the drill's 60 s deadline passed"}
    inputs["skipped"] = [i / 5 for i in range(50)]
    html = render_html(build_journal(**inputs), FAKE_PNG)
    assert (
        '<p class="bad">aborted (deadline, at 7.5 s of traffic): the drill&#39;s 60 s deadline passed;'
        in html
    )
    assert '<p class="bad">Weak judgement: 50 of the scheduled requests (56 %) were not sent' in html
    assert (
        "<tr><td>scheduled but not sent (the drill short of CPU; not counted against availability)</td>"
        "<td>50 (55.6 %)</td></tr>"
    ) in html


def test_a_drill_that_sent_everything_has_no_warning(plain_html: str) -> None:
    assert "Weak judgement" not in plain_html and "aborted (" not in plain_html
    assert "not counted against availability)</td><td>0 (0.0 %)</td>" in plain_html


def test_the_plot_draws_the_unsent_requests(tmp_path: Path) -> None:
    inputs = sample_inputs()
    inputs["skipped"] = [2.5, 8.25]
    _, html_path = write_report(build_journal(**inputs), tmp_path)
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG") and html_path.is_file()


def test_a_fault_never_reached_says_so_instead_of_failing() -> None:
    inputs = sample_inputs()
    inputs["runs"][0].injected_at_s = inputs["runs"][0].reverted_at_s = None
    inputs["runs"][0].revert_error = None
    html = render_html(build_journal(**inputs), FAKE_PNG)
    assert "<td>not reached</td></tr>" in html and '<span class="bad">FAIL</span>' not in html
