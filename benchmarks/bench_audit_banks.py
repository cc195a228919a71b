"""Generalisation harness: detection quality per bank configuration, through the CLI.

Each bank is drawn from a seed (``privacy.audit.sim_bank.random_bank``: its own schema,
role labels and mix, rotas with late shifts, application accounts, nightly jobs with
range scans, explaining tables, watch-list sizes, closing days, DBA grants), simulated
with every scenario in each of its variants (slow, split across days, through an
application account...), and run the way a new user would run it: canonical JSONL
events with that bank's catalogue and lists (no rules file) through

    covault audit ingest events.jsonl --db DB --detect --catalog catalog.yaml \\
        --lists lists.yaml [--keyset ... --kek-file ...] --no-model --json
    covault audit detect --db DB --catalog catalog.yaml --lists lists.yaml ... \\
        --no-model --format json

and the ``detect --format json`` alerts are scored against the answer key (an alert
matches an incident of the same actor, overlapping in time, when its primary scenario
is one the incident accepts). Per bank: events, actor-days, incidents, recall,
precision, false alerts per 1,000 actor-days, scenarios never detected.

    .venv/bin/python benchmarks/bench_audit_banks.py                 # tuning + held-out
    .venv/bin/python benchmarks/bench_audit_banks.py --set held-out
    .venv/bin/python benchmarks/bench_audit_banks.py --seeds 101 --inline   # in process
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine, table  # noqa: E402

from privacy.audit.sim_eval import evaluate  # noqa: E402
from privacy.audit.sim_harness import (  # noqa: E402
    HELD_OUT_SEEDS,
    TUNING_SEEDS,
    generate,
    random_bank,
)

TARGETS = {"recall": 0.9, "precision": 0.8, "fp_per_1000": 5.0}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "covault", *args], capture_output=True,
                         text=True, check=False)
    if run.returncode not in (0, 1):
        raise SystemExit(f"covault {' '.join(args[:2])} failed ({run.returncode}): "
                         f"{run.stderr[-2000:]}")
    return run


def run_bank(seed: int, root: Path, *, actors: int, days: int, per_variant: int,
             inline: bool, keep: bool) -> dict[str, Any]:
    bank = random_bank(seed, actors=actors, days=days, per_variant=per_variant)
    t = time.perf_counter()
    run = generate(bank)
    folder = root / bank.name
    tok_args: list[str] = []
    tok = None
    if bank.hashed_lists:
        from privacy.fields import Tokenizer
        from privacy.keys import Kek, Keyset

        folder.mkdir(parents=True, exist_ok=True)
        Kek.generate_key_file(folder / "watch.kek")
        ks = Keyset.create("HMAC_SHA256")
        ks.save(folder / "watch-keyset.json", Kek.from_key_file(folder / "watch.kek"))
        tok = Tokenizer(ks)
        tok_args = ["--keyset", str(folder / "watch-keyset.json"), "--kek-file",
                    str(folder / "watch.kek")]
    paths = run.write(folder, tok)
    t_gen = time.perf_counter() - t
    conf = ["--catalog", paths["catalog"], "--lists", paths["lists"], *tok_args]
    t = time.perf_counter()
    if inline:
        from privacy.audit.catalog import Catalog
        from privacy.audit.detect import Detector
        from privacy.audit.lists import ListSet

        cat = Catalog.load(paths["catalog"])
        det = Detector(catalog=cat, lists=ListSet.load(paths["lists"], tokenizer=tok))
        for e in run.events():
            det.score(e)
        alerts = [a.to_dict() for a in det.alerts()]
    else:
        db = str(folder / "audit.db")
        _cli("audit", "ingest", paths["events"], "--db", db, "--detect", *conf, "--no-model",
             "--json")
        out = _cli("audit", "detect", "--db", db, *conf, "--no-model", "--format", "json")
        alerts = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    t_det = time.perf_counter() - t
    (folder / "alerts.jsonl").write_text("".join(json.dumps(a, ensure_ascii=False) + "\n"
                                                 for a in alerts), encoding="utf-8")
    q = evaluate(alerts, run.answers)
    ov = q["overall"]
    fp_by: dict[str, int] = {}
    for code, s in q["scenarios"].items():
        fp_by[code] = int(s["alerts"]) - _tp(alerts, run.answers, code)
    res = {"bank": bank.name, "seed": seed, "events": run.answers["events"],
           "actor_days": run.answers["actor_days"], "incidents": ov["incidents"],
           "detected": ov["detected"], "recall": ov["recall"], "alerts": ov["alerts"],
           "precision": ov["precision"], "false_alerts": q["false_positives"],
           "fp_per_1000": q["fp_per_1000_actor_days"], "missed": ov["missed_scenarios"],
           "false_by_code": {c: n for c, n in sorted(fp_by.items()) if n},
           "generate_s": round(t_gen, 1), "detect_s": round(t_det, 1),
           "missed_incidents": [f"{i['scenario']}/{i['variant']}" for i in
                                run.answers["incidents"] if not _found(alerts, i)]}
    res["pass"] = bool(ov["recall"] is not None and ov["recall"] >= TARGETS["recall"]
                       and (ov["precision"] or 0) >= TARGETS["precision"]
                       and res["fp_per_1000"] <= TARGETS["fp_per_1000"] and not res["missed"])
    return res


def _found(alerts: list[dict[str, Any]], inc: dict[str, Any]) -> bool:
    q = evaluate(alerts, {"incidents": [inc], "actor_days": 1})
    return bool(q["overall"]["detected"])


def _tp(alerts: list[dict[str, Any]], answers: dict[str, Any], code: str) -> int:
    mine = [a for a in alerts if a["scenarios"][0] == code]
    q = evaluate(mine, answers)
    return int(q["overall"]["alerts"]) - int(q["false_positives"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=["all", "tuning", "held-out"], default="all")
    ap.add_argument("--seeds", type=int, nargs="*", default=None)
    ap.add_argument("--actors", type=int, default=300)
    ap.add_argument("--days", type=int, default=21)
    ap.add_argument("--per-variant", type=int, default=2)
    ap.add_argument("--inline", action="store_true",
                    help="Score in this process instead of through the CLI (faster).")
    ap.add_argument("--keep", default=None, help="Keep the banks' files in this folder.")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    seeds: list[tuple[str, int]] = []
    if args.seeds:
        seeds = [("given", s) for s in args.seeds]
    else:
        if args.set in ("all", "tuning"):
            seeds += [("tuning", s) for s in TUNING_SEEDS]
        if args.set in ("all", "held-out"):
            seeds += [("held-out", s) for s in HELD_OUT_SEEDS]
    print(f"# bench_audit_banks — {machine()}; {args.actors} actors, {args.days} days, "
          f"{args.per_variant} incident(s) per scenario variant\n")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for which, seed in seeds:
            res = run_bank(seed, root, actors=args.actors, days=args.days,
                           per_variant=args.per_variant, inline=args.inline,
                           keep=bool(args.keep))
            res["set"] = which
            results.append(res)
            print(f"{which} {res['bank']}: recall {res['recall']} precision {res['precision']} "
                  f"false/1000 actor-days {res['fp_per_1000']} missed {res['missed']} "
                  f"false by code {res['false_by_code']} missed incidents "
                  f"{res['missed_incidents']} ({res['generate_s']} s + {res['detect_s']} s)",
                  flush=True)
    rows = [(r["set"], r["bank"], f"{r['events']:,}", f"{r['actor_days']:,}",
             str(r["incidents"]), str(r["detected"]), str(r["recall"]), str(r["alerts"]),
             str(r["precision"]), str(r["fp_per_1000"]), ", ".join(r["missed"]) or "none",
             "pass" if r["pass"] else "FAIL") for r in results]
    print()
    print(table(rows, ("set", "bank", "events", "actor-days", "incidents", "detected",
                       "recall", "alerts", "precision", "false /1000 ad", "never detected",
                       "targets")))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
