"""Scoring while ingesting: a forked scorer gives exactly the inline scorer's alerts."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path
from types import SimpleNamespace

import pytest

from privacy.audit.adapters import read_jsonl
from privacy.audit.catalog import Catalog
from privacy.audit.detect import Detector
from privacy.audit.lists import ListSet
from privacy.audit.pipeline import InlineScorer, ProcessScorer, scorer_for
from privacy.audit.rules import Rules
from privacy.audit.simulate import simulate, write_bundle
from privacy.audit.store import AuditStore
from privacy.fields import Tokenizer
from privacy.keys import Keyset

logging.getLogger("sqlglot").setLevel(logging.ERROR)
needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="needs the fork start method")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pipe")
    sim = simulate(seed=3, actors=40, days=15, service_rate=200)
    sim.write(d / "ev.jsonl", d / "ans.json")
    tok = Tokenizer(Keyset.create("HMAC_SHA256"))
    paths = write_bundle(sim, d, tok)
    cat = Catalog.load(paths["catalog"])

    def make() -> Detector:
        return Detector(rules=Rules.load(paths["rules"], cat),
                        lists=ListSet.load(paths["lists"], tokenizer=tok), catalog=cat)
    return {"dir": d, "make": make}  # type: ignore[dict-item]


def _ingest(world: dict[str, object], name: str, scorer: object) -> list[dict[str, object]]:
    d = world["dir"]
    assert isinstance(d, Path)
    with AuditStore(d / name) as store:
        store.ingest(read_jsonl(d / "ev.jsonl"), on_event=scorer.score)  # type: ignore[attr-defined]
        found = scorer.finish()  # type: ignore[attr-defined]
        assert found.events_scored == store.count()
    return [a.to_dict() for a in found.alerts]


@needs_fork
def test_process_scorer_matches_inline_and_stored_detect(world: dict[str, object]) -> None:
    make = world["make"]
    inline = _ingest(world, "a.db", InlineScorer(make()))  # type: ignore[operator]
    forked = _ingest(world, "b.db", ProcessScorer(make(), batch_size=777))  # type: ignore[operator]
    assert forked == inline and len(inline) >= 5
    det = make()  # type: ignore[operator]
    with AuditStore(world["dir"] / "a.db") as store:  # type: ignore[operator]
        det.run(store.events())
    assert [a.to_dict() for a in det.alerts()] == inline


@needs_fork
def test_process_scorer_reports_the_childs_error(world: dict[str, object]) -> None:
    scorer = ProcessScorer(world["make"]())  # type: ignore[operator]
    # Has the statement the ingest side lexes, but no timestamp: the child's detector fails.
    scorer.score(SimpleNamespace(statement="SELECT 1"))  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        scorer.finish()


def test_scorer_for_one_process_is_inline(world: dict[str, object]) -> None:
    assert isinstance(scorer_for(world["make"](), processes=1), InlineScorer)  # type: ignore[operator]
