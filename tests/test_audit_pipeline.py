"""Scoring while ingesting: a forked scorer gives exactly the inline scorer's alerts."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from privacy.audit.adapters import read_jsonl
from privacy.audit.catalog import Catalog
from privacy.audit.detect import Detector
from privacy.audit.events import QueryEvent
from privacy.audit.lists import ListSet
from privacy.audit.pipeline import InlineScorer, ProcessScorer, _pack, _Unpacker, scorer_for
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


def _now_event(i: int) -> QueryEvent:
    return QueryEvent(event_id=f"e{i}", ts=datetime.now(timezone.utc), actor="a",
                      statement=f"SELECT {i}")


def _scorer_of(world: dict[str, object], score: Callable[..., None],
               batch_size: int = 1) -> ProcessScorer:
    """A forked scorer whose child's detector runs ``score`` instead of scoring."""
    det = world["make"]()  # type: ignore[operator]
    det.score = score  # the child gets this copy of the detector
    return ProcessScorer(det, batch_size=batch_size)


def _fail(event: QueryEvent, lexed: object = None) -> None:
    raise RuntimeError(f"cannot score {event.event_id}")


def _fail_at_length(event: QueryEvent, lexed: object = None) -> None:
    raise RuntimeError("cannot score " + "x" * 200_000)


def _die(event: QueryEvent, lexed: object = None) -> None:
    os._exit(3)


@needs_fork
def test_process_scorer_reports_the_childs_error(world: dict[str, object]) -> None:
    scorer = _scorer_of(world, _fail, batch_size=1000)
    scorer.score(_now_event(1))
    with pytest.raises(RuntimeError, match="cannot score e1"):
        scorer.finish()


@needs_fork
def test_a_failed_child_stops_the_ingest_instead_of_hanging_it(
        world: dict[str, object]) -> None:
    """The queue to the child is bounded: once the child has failed, feeding it more
    raises the child's error instead of waiting forever for room."""
    scorer = _scorer_of(world, _fail)
    try:
        with pytest.raises(RuntimeError, match="cannot score e0"):
            for i in range(1000):
                scorer.score(_now_event(i))
    finally:
        scorer.close()


@needs_fork
def test_a_child_error_larger_than_the_pipe_is_still_reported(
        world: dict[str, object]) -> None:
    """A failing child blocks sending an error bigger than the pipe buffer until the
    parent reads it: the parent must read it rather than wait for the child to exit."""
    scorer = _scorer_of(world, _fail_at_length)
    try:
        with pytest.raises(RuntimeError, match="cannot score xxx"):
            for i in range(1000):
                scorer.score(_now_event(i))
            scorer.finish()
    finally:
        scorer.close()


@needs_fork
def test_a_child_that_dies_without_a_word_is_reported(world: dict[str, object]) -> None:
    scorer = _scorer_of(world, _die)
    scorer.score(_now_event(0))
    with pytest.raises(RuntimeError, match="exited with code 3 before returning"):
        scorer.finish()


@pytest.mark.parametrize("tz", [timezone.utc, timezone(timedelta(hours=8)),
                                timezone(timedelta(hours=-5, minutes=-30)),
                                timezone(timedelta(seconds=3725, microseconds=5)),
                                timezone(timedelta(hours=1), "CET"),
                                ZoneInfo("America/New_York")])
def test_events_cross_to_the_scoring_process_unchanged(tz: tzinfo) -> None:
    """What the child rebuilds from a packed item is the event and lexed statement sent."""
    det = Detector()
    unpack = _Unpacker()
    ts = datetime(2026, 11, 1, 1, 30, 0, 123456, tzinfo=tz, fold=1)
    event = QueryEvent(event_id="e1", ts=ts, actor="ann", actor_kind="human", role="teller",
                       department="branch-1", source_ip="10.0.0.1", client="psql",
                       database="core", statement="SELECT * FROM t WHERE id IN (1, '2')",
                       rows=3, status="ok", duration_ms=1.5)
    lexed = det.analyzer.lex(event.statement)
    item = pickle.loads(pickle.dumps(_pack(event, lexed)))
    back, back_lexed = unpack(item)
    assert back == event and back.ts.utcoffset() == ts.utcoffset()
    assert back.ts.fold == 1 and back.ts.tzinfo == ts.tzinfo
    assert back.ts.tzname() == ts.tzname()
    assert (back_lexed.key, back_lexed.lits, back_lexed.starts, back_lexed.sizes) == (
        lexed.key, lexed.lits, lexed.starts, lexed.sizes)


def test_scorer_for_one_process_is_inline(world: dict[str, object]) -> None:
    assert isinstance(scorer_for(world["make"](), processes=1), InlineScorer)  # type: ignore[operator]
