"""Query-audit benchmark on simulator output.

Measures: simulator size; ingest events/s (JSONL -> audit store with ledger); detection
events/s over the stored events and per-event scoring latency p50/p99 (all events, and
events whose template was already seen); the one-pass pipeline a user runs
(``covault audit ingest --detect`` in its own process: JSONL -> stored, ledgered,
scored, alerts saved) in events/s, median of ``--runs`` runs; per-scenario recall and
precision of the one-pass alerts against the answer key; false positives per 1,000
actor-days; median time to detect; ledger appends/s batched (with the single-append
rate in the same run as baseline).

    .venv/bin/python benchmarks/bench_audit.py            # 500 actors, 30 days (~1M events)
    .venv/bin/python benchmarks/bench_audit.py --quick    # 60 actors, 15 days
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine, table  # noqa: E402

from privacy.audit.adapters import read_jsonl  # noqa: E402
from privacy.audit.catalog import Catalog  # noqa: E402
from privacy.audit.detect import Detector  # noqa: E402
from privacy.audit.lists import ListSet  # noqa: E402
from privacy.audit.rules import Rules  # noqa: E402
from privacy.audit.simulate import evaluate, simulate, write_bundle  # noqa: E402
from privacy.audit.store import AuditStore  # noqa: E402
from privacy.audit.triage import Triage  # noqa: E402
from privacy.fields import Tokenizer  # noqa: E402
from privacy.keys import Kek, Keyset  # noqa: E402
from privacy.ledger import Ledger  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="60 actors, 15 days")
    ap.add_argument("--actors", type=int, default=None)
    ap.add_argument("--days", type=int, default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3,
                    help="One-pass runs (the median is reported; this machine's speed varies).")
    ap.add_argument("--json", dest="json_out", default=None, help="Write results as JSON.")
    args = ap.parse_args()
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    actors = args.actors or (60 if args.quick else 500)
    days = args.days or (15 if args.quick else 30)
    res: dict[str, object] = {"machine": machine(), "actors": actors, "days": days}
    print(f"# bench_audit — {machine()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        sim = simulate(args.seed, actors, days)
        sim.write(root / "events.jsonl", root / "answers.json")
        res["simulate_s"] = round(time.perf_counter() - t, 1)
        n = len(sim.events)
        res["events"] = n
        res["actor_days"] = sim.answers["actor_days"]
        print(f"simulated {n:,} events, {len(sim.answers['incidents'])} incidents "
              f"in {res['simulate_s']} s")
        keyset = Keyset.create("HMAC_SHA256")
        kek_path, keyset_path = root / "kek.bin", root / "watch.keyset.json"
        kek_path.write_bytes(os.urandom(32))
        kek_path.chmod(0o600)
        keyset.save(keyset_path, Kek.from_key_file(kek_path))
        tok = Tokenizer(keyset)
        paths = write_bundle(sim, root, tok)
        del sim

        store = AuditStore(root / "audit.db")
        t = time.perf_counter()
        rep = store.ingest(read_jsonl(root / "events.jsonl"), source="events.jsonl")
        t_ingest = time.perf_counter() - t
        res["ingest_events_per_s"] = round(rep.added / t_ingest)
        print(f"ingest: {rep.added:,} events in {t_ingest:.1f} s = "
              f"{res['ingest_events_per_s']:,} events/s ({rep.batches} ledger records)")

        cat = Catalog.load(paths["catalog"])

        def detector() -> Detector:
            return Detector(rules=Rules.load(paths["rules"], cat),
                            lists=ListSet.load(paths["lists"], tokenizer=tok), catalog=cat)

        det = detector()
        t = time.perf_counter()
        evs = list(store.events())
        t_read = time.perf_counter() - t
        lat_all: list[float] = []
        lat_seen: list[float] = []
        clock = time.perf_counter
        t0 = clock()
        for e in evs:
            misses = det.analyzer.misses
            s = clock()
            det.score(e)
            d = clock() - s
            lat_all.append(d)
            if det.analyzer.misses == misses:
                lat_seen.append(d)
        t_detect = clock() - t0 + t_read
        separate = [a.to_dict() for a in det.alerts()]
        res["detect_events_per_s"] = round(n / t_detect)
        res["ingest_then_detect_events_per_s"] = round(n / (t_ingest + t_detect))
        res["latency_all_us"] = {"p50": round(pct(lat_all, 0.5) * 1e6, 1),
                                 "p99": round(pct(lat_all, 0.99) * 1e6, 1)}
        res["latency_seen_template_us"] = {"p50": round(pct(lat_seen, 0.5) * 1e6, 1),
                                           "p99": round(pct(lat_seen, 0.99) * 1e6, 1),
                                           "max": round(max(lat_seen) * 1e6, 1)}
        res["templates"] = det.analyzer.cache_info()
        print(f"detect: {n:,} events in {t_detect:.1f} s (incl. {t_read:.1f} s reading the "
              f"store) = {res['detect_events_per_s']:,} events/s; "
              f"ingest then detect = {res['ingest_then_detect_events_per_s']:,} events/s")
        print(f"scoring latency per event (µs): all {res['latency_all_us']}, "
              f"seen templates {res['latency_seen_template_us']}")

        # the pipeline as a user runs it: `covault audit ingest --detect` into a fresh
        # store, in its own process (this one holds a million events' worth of state)
        del evs, lat_all, lat_seen
        rates: list[float] = []
        alerts: list[dict[str, object]] = []
        same = True
        for attempt in range(args.runs):
            one_db = root / f"one-pass-{attempt}.db"
            cmd = [sys.executable, "-m", "covault", "audit", "ingest",
                   str(root / "events.jsonl"), "--db", str(one_db), "--detect",
                   "--rules", str(paths["rules"]), "--lists", str(paths["lists"]),
                   "--catalog", str(paths["catalog"]), "--keyset", str(keyset_path),
                   "--kek-file", str(kek_path), "--no-model", "--json"]
            t = time.perf_counter()
            run = subprocess.run(cmd, capture_output=True, text=True, check=False)
            t_one = time.perf_counter() - t
            if run.returncode != 0:
                raise SystemExit(f"one-pass ingest failed ({run.returncode}): {run.stderr}")
            summary = json.loads(run.stdout)
            with AuditStore(one_db) as one:
                stored = Triage(one).alerts(include_suppressed=True)
            workflow = ("state", "close_reason", "suppressed_by")
            alerts = sorted(({k: v for k, v in a.items() if k not in workflow} for a in stored),
                            key=lambda a: (str(a["first_ts"]), str(a["alert_id"])))
            same = same and alerts == json.loads(json.dumps(separate))
            rates.append(summary["added"] / t_one)
            print(f"one pass {attempt + 1}/{args.runs} (`covault audit ingest --detect`, own "
                  f"process): {summary['added']:,} events stored, ledgered and scored, "
                  f"{summary['detection']['alerts']} alerts saved in {t_one:.1f} s = "
                  f"{rates[-1]:,.0f} events/s")
        res["one_pass_command"] = "covault audit ingest --detect --no-model"
        res["one_pass_events_per_s"] = round(statistics.median(rates))
        res["one_pass_events_per_s_runs"] = [round(r) for r in rates]
        res["one_pass_same_alerts"] = same
        print(f"one pass: median {res['one_pass_events_per_s']:,} events/s over {args.runs} "
              f"runs (min {min(rates):,.0f}, max {max(rates):,.0f}); alerts identical to "
              f"ingest then detect in every run: {same}")
        answers = json.loads((root / "answers.json").read_text(encoding="utf-8"))
        q = evaluate(alerts, answers)
        res["quality"] = q
        rows = [(c, str(s["incidents"]), str(s["detected"]), str(s["alerts"]),
                 f"{s['recall']}", f"{s['precision']}", f"{s['median_detect_s']}")
                for c, s in q["scenarios"].items()]
        print()
        print(table(rows, ("scenario", "incidents", "detected", "alerts", "recall",
                           "precision", "median detect s")))
        print(f"\nfalse positives: {q['false_positives']} = {q['fp_per_1000_actor_days']} per "
              f"1,000 actor-days; median time to detect {q['median_time_to_detect_s']} s")
        t = time.perf_counter()
        store.verify()
        res["verify_s"] = round(time.perf_counter() - t, 1)
        store.close()

        led = Ledger(root / "bench.ledger.db")
        m = 50_000 if not args.quick else 20_000
        t = time.perf_counter()
        led.append_many(("audit.bench", {"i": i, "h": "ab" * 16}) for i in range(m))
        batched = m / (time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(200):
            led.append("audit.bench", {"i": i})
        single = 200 / (time.perf_counter() - t)
        led.close()
        res["ledger_appends_per_s"] = {"batched": round(batched), "single": round(single)}
        print(f"ledger: {batched:,.0f} appends/s batched vs {single:,.0f}/s one per "
              f"transaction ({batched / single:.0f}x); verify of the store {res['verify_s']} s")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
