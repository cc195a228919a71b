"""federated.report (the HTML report of a federated run) and `covault fl report`."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from covault.cli import main
from federated import metrics
from federated.report import MAX_LEGEND_PARTIES, render_report
from privacy.errors import InputError

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "area", "base", "source"}
SVG_LEAVES = {"line", "rect", "circle", "polyline", "path"}


class _Checker(HTMLParser):
    """Collects tags and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"unclosed: {checker.stack}"
    return checker


def _self_contained(page: str) -> None:
    low = page.lower()
    for bad in ("<script", "<link", "<iframe", "<img", "http:", "https:", "url(", "@import",
                " src=", " href=", "none<", ">none", "nan<", ">nan"):
        assert bad not in low, bad
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def horizontal() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.15).astype(int)
    prob = np.clip(0.15 + 0.2 * (y - 0.15) + rng.normal(0, 0.08, 2000), 0.001, 0.999)
    names = ["bank_1", "bank_2", "bank_3"]
    history = [{"round": r, "auc": 0.6 + 0.01 * r, "seconds": 0.4, "bytes_up": 12345,
                "bytes_down": 23456, "parties": {n: 0.58 + 0.01 * r + 0.005 * i
                                                 for i, n in enumerate(names)},
                "epsilon": None} for r in range(1, 6)]
    return {"kind": "horizontal", "mode": "simulation", "rounds": 5, "aggregation": "fedavg",
            "global": metrics.summary(y, prob),
            "parties": {"bank_1": {"rows": 2000, "test_rows": 500, "auc": 0.70,
                                   "local_auc": 0.66},
                        "bank_2": {"rows": 800, "test_rows": 200, "auc": 0.69,
                                   "local_auc": 0.72},
                        "bank_3": {"rows": 50, "test_rows": 10, "auc": 0.65}},
            "history": history, "epsilon": None, "delta": None,
            "curves": {"roc": metrics.roc_points(y, prob),
                       "calibration": metrics.calibration(y, prob)},
            "features": ["income", "state=CA"]}


def vertical() -> dict[str, Any]:
    return {"kind": "vertical", "intersection": 9000, "test_intersection": 2000,
            "global": {"auc": 0.75, "ks": 0.41}, "guest_only": {"auc": 0.70, "ks": 0.33},
            "history": [{"epoch": e, "loss": 0.6 - 0.02 * e, "auc": 0.7 + 0.005 * e,
                         "seconds": 1.5} for e in range(1, 9)],
            "iv": {"income": 0.12, "age": 0.31, "tenure": 0.01}}


def _row(page: str, first_cell: str) -> str:
    """The ``<tr ...>`` opening tag and cells of the table row starting with a cell."""
    found = re.search(r"<tr[^>]*><td>" + re.escape(first_cell) + r"</td>.*?</tr>", page)
    assert found, first_cell
    return found.group(0)


def test_horizontal_report() -> None:
    result = horizontal()
    page = render_report(result)
    _self_contained(page)
    checker = _parse(page)
    text = " ".join(checker.text)
    for section in ("Summary", "Learning curves", "Cost per round", "ROC and calibration",
                    "Parties"):
        assert section in text
    assert f"{result['global']['auc']:.3f}" in page and "fedavg" in page
    assert "simulation" in page and "income, state=CA" in page
    # AUC chart: one line for the global model and one per party, each named in the legend
    auc_svg = re.search(r"<svg[^>]*aria-label='AUC by round'.*?</svg>(.*?)</div>", page, re.S)
    assert auc_svg and auc_svg.group(0).count("<polyline") == 4
    for name in ("global", "bank_1", "bank_2", "bank_3"):
        assert f"</i>{name}</span>" in auc_svg.group(1)
    # ROC: every point of the curve is drawn, with the diagonal
    roc_svg = re.search(r"<svg[^>]*aria-label='ROC curve'.*?</svg>", page, re.S)
    assert roc_svg
    polyline = re.search(r"<polyline[^>]*points='([^']*)'", roc_svg.group(0))
    assert polyline and len(polyline.group(1).split()) == len(result["curves"]["roc"]["fpr"])
    assert "stroke-dasharray='4 4'" in roc_svg.group(0)
    assert "aria-label='calibration'" in page and "aria-label='bytes per round'" in page
    # per-party gain: bank_1 gains, bank_2 loses, bank_3 has no local model
    assert _row(page, "bank_1").startswith("<tr class='gain'>") and "+0.040" in _row(page, "bank_1")
    assert _row(page, "bank_2").startswith("<tr class='loss'>") and "-0.030" in _row(page, "bank_2")
    assert _row(page, "bank_3").startswith("<tr>") and "—" in _row(page, "bank_3")
    assert "1 of 2 parties gain" in text


def test_vertical_report() -> None:
    page = render_report(vertical())
    _self_contained(page)
    text = " ".join(_parse(page).text)
    assert "epochs" in text and "9,000" in text and "2,000" in text
    assert "aria-label='AUC by epoch'" in page and "aria-label='loss by epoch'" in page
    assert "</i>guest only</span>" in page  # the guest-only AUC as a reference line
    assert "Guest only vs joint model" in text
    assert _row(page, "AUC").startswith("<tr class='gain'>") and "+0.050" in _row(page, "AUC")
    iv_table = page[page.index("Information value"):]
    assert iv_table.index("age") < iv_table.index("income") < iv_table.index("tenure")
    assert "medium" in _row(page, "income") and "not predictive" in _row(page, "tenure")
    assert "aggregation" not in text and "Parties" not in text


def test_minimal_result_renders_dashes() -> None:
    page = render_report({"kind": "horizontal"})
    _self_contained(page)
    text = " ".join(_parse(page).text)
    assert "None" not in page
    assert "—" in text and "<svg" not in page


def test_missing_and_malformed_optional_values() -> None:
    result: dict[str, Any] = {
        "kind": "horizontal", "rounds": None, "global": {"auc": float("nan"), "ks": None},
        "parties": {"a": None, "b": {"rows": "many", "auc": True}},
        "history": [{"round": 1, "auc": None, "parties": {"a": {"auc": 0.6}}},
                    {"round": "two", "auc": 0.7, "bytes_up": None}, "not a dict",
                    {"auc": float("inf"), "seconds": 0.3}],
        "curves": {"roc": {"fpr": [0, 0.5, 1, None], "tpr": [0, 0.7]},
                   "calibration": {"predicted": "x"}},
        "features": "income", "epsilon": float("nan"), "seed": None, "note": "<b>x</b>"}
    page = render_report(result)
    _self_contained(page)
    _parse(page)
    assert "None" not in page and ">inf<" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_party_names_and_other_user_text_are_escaped() -> None:
    evil = "<script>alert(1)</script>"
    result = horizontal()
    result["parties"][evil] = {"rows": 10, "auc": 0.5, "local_auc": 0.4}
    for h in result["history"]:
        h["parties"][evil] = 0.5
    result["features"].append(evil)
    result["mode"] = "'><svg onload=alert(1)>"
    result["iv"] = {evil: 0.2}
    page = render_report(result)
    _self_contained(page)
    _parse(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<svg onload" not in page and "&#x27;&gt;&lt;svg onload" in page
    page = render_report({"kind": evil})
    assert "<script" not in page and "&lt;script&gt;" in page


def test_many_parties_are_drawn_without_a_legend_each() -> None:
    result = horizontal()
    names = [f"p{i:03d}" for i in range(MAX_LEGEND_PARTIES + 5)]
    for h in result["history"]:
        h["parties"] = dict.fromkeys(names, 0.6)
    page = render_report(result)
    auc = page[page.index("aria-label='AUC by round'"):page.index("Cost per round")]
    assert auc.count("<polyline") == len(names) + 1
    assert "</i>p000</span>" not in auc and f"each of the {len(names)} parties" in auc


def test_render_report_needs_a_kind() -> None:
    with pytest.raises(InputError, match="kind"):
        render_report({"rounds": 3})
    with pytest.raises(InputError, match="mapping"):
        render_report([1, 2])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- CLI


def _cli(*args: object) -> Result:
    return CliRunner().invoke(main, ["fl", "report", *map(str, args)])


@pytest.fixture
def result_file(tmp_path: Path) -> Path:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(horizontal()), encoding="utf-8")
    return path


def test_cli_writes_the_report(result_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.html"
    r = _cli(result_file, "-o", out)
    assert r.exit_code == 0, r.output
    assert str(out) in r.stdout
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "bank_2" in page
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary left
    out2 = tmp_path / "r2.html"
    r = _cli(result_file, "-o", out2, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"report": str(out2)}


def test_cli_refuses_to_overwrite_without_force(result_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("keep me", encoding="utf-8")
    r = _cli(result_file, "-o", out)
    assert r.exit_code == 2
    assert "exists" in r.stderr and "--force" in r.stderr
    assert out.read_text(encoding="utf-8") == "keep me"
    r = _cli(result_file, "-o", out, "--force")
    assert r.exit_code == 0, r.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(("content", "message"), [
    ('{"kind": "horizontal", "rounds": 3,,}', r"bad\.json:1: not valid JSON"),
    ("[1, 2, 3]", "expected a JSON object"),
    ('{"rounds": 3}', "missing 'kind'"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_cli_bad_result_file_exits_2(tmp_path: Path, content: str | bytes,
                                     message: str) -> None:
    bad = tmp_path / "bad.json"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content, encoding="utf-8")
    out = tmp_path / "report.html"
    r = _cli(bad, "-o", out)
    assert r.exit_code == 2
    assert re.search(message, r.stderr), r.stderr
    assert str(bad) in r.stderr
    assert not out.exists()


def test_cli_missing_result_file_exits_2(tmp_path: Path) -> None:
    r = _cli(tmp_path / "nope.json", "-o", tmp_path / "report.html")
    assert r.exit_code == 2
    assert "nope.json" in r.stderr and "No such file" in r.stderr
