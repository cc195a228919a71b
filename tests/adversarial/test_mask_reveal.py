"""Issue 11 (7): `mask reveal` must not trust a column plan it cannot authenticate.

Before the fix the reveal took the column plan (operator, options, context per column)
from the input's own metadata (Parquet schema metadata or OUTPUT.meta.json) as it
found it. Someone holding only the masked file copied the resident-id tokens into the
``mobile`` column and pointed the plan's ``mobile`` context at ``id_no``'s: an officer
authorised to reveal mobiles got resident ids, and the ledger said ``mobile``.

Now `mask apply` authenticates the canonical plan (with the policy hash and view) with
an HMAC-SHA256 per keyset under a key HKDF-derived from the keyset
(``covault.plan_mac``), and `mask reveal` verifies the tag of every keyset it decrypts
with before anything is decrypted or recorded: an edited plan, a missing or stripped
tag, or a tag made with another keyset exits 2, writing nothing.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from covault.cli import main
from covault.demo.context import sample_customers_path
from masking.writer import sidecar_path
from privacy.keys import Keyset
from privacy.ledger import Ledger

from . import _keyfiles as keyfiles

SAMPLE = str(sample_customers_path())
MAC = "covault.plan_mac"

POLICY = """
version: 1
context: joint
views:
  partner_export:
    columns:
      - {name: id_no, operator: tokenize}
      - {name: mobile, operator: tokenize}
      - {name: city, operator: keep}
"""

Meta = dict[str, Any]


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, Path]:
    kek_file = keyfiles.kek_file(tmp_path)
    siv = keyfiles.sealed_keyset(tmp_path / "siv.json", "AES256_SIV", kek_file)
    policy = tmp_path / "policy.yaml"
    policy.write_text(textwrap.dedent(POLICY), encoding="utf-8")
    return {"dir": tmp_path, "kek": kek_file, "siv": siv, "policy": policy}


def apply(env: dict[str, Path], out: Path) -> None:
    res = run("mask", "apply", SAMPLE, "-o", out, "-p", env["policy"], "-v", "partner_export",
              "-k", env["siv"], "--kek-file", env["kek"])
    assert res.exit_code == 0, res.output


def reveal(env: dict[str, Path], masked: Path, out: Path, ledger: Path,
           *keyset: str | Path) -> Result:
    keys = keyset or ("-k", env["siv"])
    return run("mask", "reveal", masked, "-o", out, "-p", env["policy"], *keys, "--kek-file",
               env["kek"], "--columns", "mobile", "--reason", "complaint 7", "--ledger", ledger)


def strings(path: Path) -> pa.Table:
    types = {c: pa.string() for c in ("id_no", "mobile")}
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))


def tamper(masked: Path, edit_meta: Callable[[Meta], None], swap_data: bool = True) -> None:
    """Put the id_no tokens in the mobile column and edit the metadata, in place."""
    if masked.suffix == ".parquet":
        table = pq.read_table(masked)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        if swap_data:
            table = table.set_column(table.column_names.index("mobile"), "mobile",
                                     table.column("id_no"))
        edit_meta(meta)
        pq.write_table(table.replace_schema_metadata(meta), masked)
        return
    table = strings(masked)
    if swap_data:
        table = table.set_column(table.column_names.index("mobile"), "mobile",
                                 table.column("id_no"))
        pacsv.write_csv(table, masked)
    side = sidecar_path(masked)
    meta = json.loads(side.read_text())
    edit_meta(meta)
    side.write_text(json.dumps(meta))


def retarget_mobile(meta: Meta) -> None:
    plan = json.loads(meta["covault.plan"])
    plan["mobile"]["context"] = plan["id_no"]["context"]
    meta["covault.plan"] = json.dumps(plan)


def strip_mac(meta: Meta) -> None:
    retarget_mobile(meta)
    meta.pop(MAC, None)


def drop_plan(meta: Meta) -> None:
    meta.pop("covault.plan", None)
    meta.pop(MAC, None)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("edit", [retarget_mobile, strip_mac, drop_plan],
                         ids=["plan-edited", "mac-stripped", "plan-removed"])
def test_tampered_plan_is_refused(env: dict[str, Path], suffix: str,
                                  edit: Callable[[Meta], None]) -> None:
    d = env["dir"]
    masked, out, ledger = d / f"masked{suffix}", d / "revealed.csv", d / "ledger.db"
    apply(env, masked)
    tamper(masked, edit)
    res = reveal(env, masked, out, ledger)
    # before the fix: exit 0, and out's "mobile" column held the resident ids
    assert res.exit_code == 2, res.output
    assert res.stdout == "" and "authenticat" in res.stderr
    assert not out.exists() and not sidecar_path(out).exists()
    assert not ledger.exists()  # refused before anything was recorded or decrypted
    assert not [p for p in d.iterdir() if "tmp" in p.name]


def test_data_swapped_without_editing_the_plan_does_not_decrypt(env: dict[str, Path]) -> None:
    d = env["dir"]
    masked, out, ledger = d / "masked.csv", d / "revealed.csv", d / "ledger.db"
    apply(env, masked)
    tamper(masked, lambda meta: None)
    res = reveal(env, masked, out, ledger)
    assert res.exit_code == 2 and not out.exists()  # the context is bound into each token


def test_plan_signed_with_another_keyset_is_refused(env: dict[str, Path]) -> None:
    """A forger with a keyset of the same template can make a well-formed tag, which
    must not verify under the revealing officer's keyset."""
    from masking.engine import sign_plan

    d = env["dir"]
    masked, out, ledger = d / "masked.csv", d / "revealed.csv", d / "ledger.db"
    apply(env, masked)
    forger = Keyset.create("AES256_SIV")

    def forge(meta: Meta) -> None:
        retarget_mobile(meta)
        plan = json.loads(meta["covault.plan"])
        tags = sign_plan([forger], meta["covault.policy_hash"], meta["covault.view"], plan)
        meta[MAC] = json.dumps(tags)

    tamper(masked, forge)
    res = reveal(env, masked, out, ledger)
    assert res.exit_code == 2 and "authenticat" in res.stderr
    assert not out.exists() and not ledger.exists()


def test_authentic_plan_reveals_and_records(env: dict[str, Path]) -> None:
    d = env["dir"]
    masked, out, ledger = d / "masked.csv", d / "revealed.csv", d / "ledger.db"
    apply(env, masked)
    meta = json.loads(sidecar_path(masked).read_text())
    assert set(json.loads(meta[MAC])) == {"AES256_SIV"}
    res = reveal(env, masked, out, ledger)
    assert res.exit_code == 0, res.output
    assert strings(out).column("mobile").equals(strings(Path(SAMPLE)).column("mobile"))
    with Ledger(ledger) as log:
        records = list(log.records())
    assert [r.kind for r in records] == ["masking.reveal.started", "masking.reveal"]
    assert records[0].payload["columns"] == ["mobile"]
    assert records[0].payload["run"] == records[1].payload["run"]
    assert records[1].payload["rows"] == 500 and records[1].payload["status"] == "finished"


def test_plan_still_verifies_after_rotation(env: dict[str, Path]) -> None:
    d = env["dir"]
    masked, out, ledger = d / "masked.parquet", d / "revealed.csv", d / "ledger.db"
    apply(env, masked)
    assert run("keys", "rotate", env["siv"], "--kek-file", env["kek"]).exit_code == 0
    res = reveal(env, masked, out, ledger)
    assert res.exit_code == 0, res.output


def test_view_mismatch_is_refused(env: dict[str, Path]) -> None:
    d = env["dir"]
    masked, out = d / "masked.csv", d / "revealed.csv"
    apply(env, masked)
    res = run("mask", "reveal", masked, "-o", out, "-p", env["policy"], "-v", "other",
              "-k", env["siv"], "--kek-file", env["kek"], "--columns", "mobile")
    assert res.exit_code == 2 and not out.exists()
