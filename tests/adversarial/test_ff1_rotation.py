"""Issue 11 (4): FF1 after a key rotation must not decrypt to wrong plaintext with exit 0.

FF1 output is digits only and cannot carry a key id. Before the fix, `covault field
decrypt` and `covault mask reveal` always used the primary key, so after `keys rotate`
they returned wrong digits and exited 0 (`mask reveal`: 0 of 500 cards right). Now:

- `mask apply` records the FF1 key id per column in the output's metadata (inside the
  authenticated plan) and in its ledger record; `mask reveal` decrypts with that key
  and refuses (exit 2) when the metadata names no key id or one the keyset lacks;
- `field encrypt` reports the key id it used, `field decrypt` takes it as --key-id and
  refuses (exit 2) to guess on a rotated keyset or with an unknown key id;
- `keys rotate` on an FF1 keyset warns (stderr) that earlier values need the old key,
  which stays in the keyset, and that outputs record it.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from covault.cli import main
from covault.demo.context import sample_customers_path
from masking.engine import METADATA_HASH, METADATA_PLAN, METADATA_VIEW
from masking.writer import sidecar_path
from privacy.keys import Kek, Keyset, format_key_id
from privacy.ledger import Ledger

from . import _keyfiles as keyfiles

SAMPLE = str(sample_customers_path())
CARD = "6222021234567890123"

POLICY = """
version: 1
context: joint
columns:
  - {name: card_no, pii: bank_card}
views:
  partner_export:
    columns:
      - {name: card_no, operator: fpe, options: {keep_prefix: 6, keep_suffix: 4}}
      - {name: id_no, operator: tokenize}
"""


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, Path]:
    kek_file = keyfiles.kek_file(tmp_path)
    ff1 = keyfiles.sealed_keyset(tmp_path / "ff1.json", "FF1_AES256", kek_file)
    siv = keyfiles.sealed_keyset(tmp_path / "siv.json", "AES256_SIV", kek_file)
    policy = tmp_path / "policy.yaml"
    policy.write_text(textwrap.dedent(POLICY), encoding="utf-8")
    return {"dir": tmp_path, "kek": kek_file, "ff1": ff1, "siv": siv, "policy": policy}


def keys(env: dict[str, Path]) -> list[str | Path]:
    return ["-k", env["ff1"], "-k", env["siv"], "--kek-file", env["kek"]]


def open_ks(env: dict[str, Path], name: str = "ff1") -> Keyset:
    return Keyset.load(env[name], Kek.from_key_file(env["kek"]))


def original_cards() -> list[str]:
    strings = pacsv.ConvertOptions(column_types={"card_no": "string"})
    return pacsv.read_csv(SAMPLE, convert_options=strings).column("card_no").to_pylist()


def read_cards(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return pq.read_table(path).column("card_no").to_pylist()
    strings = pacsv.ConvertOptions(column_types={"card_no": "string"})
    return pacsv.read_csv(path, convert_options=strings).column("card_no").to_pylist()


# ---- covault field / covault keys rotate ---------------------------------------------


def test_field_decrypt_after_rotation_needs_the_recorded_key_id(env: dict[str, Path]) -> None:
    common = ["-k", env["ff1"], "--kek-file", env["kek"], "-c", "cif.cards.card_no"]
    first = open_ks(env).primary_id
    enc = run("field", "encrypt", *common, CARD, "--format", "json")
    assert enc.exit_code == 0, enc.output
    doc = json.loads(enc.stdout)
    token = doc["values"][0]
    assert doc["key_id"] == format_key_id(first) and token != CARD and len(token) == len(CARD)
    assert run("field", "encrypt", *common, CARD).stdout.strip() == token

    rot = run("keys", "rotate", env["ff1"], "--kek-file", env["kek"])
    assert rot.exit_code == 0, rot.output
    assert "warning" in rot.stderr and "FF1" in rot.stderr
    assert format_key_id(first) in rot.stderr and "record" in rot.stderr
    assert open_ks(env).primary_id != first and first in open_ks(env).key_ids

    # the old behaviour: wrong digits, exit 0
    guess = run("field", "decrypt", *common, token)
    assert guess.exit_code == 2 and guess.stdout == ""
    assert "--key-id" in guess.stderr

    right = run("field", "decrypt", *common, token, "--key-id", format_key_id(first))
    assert right.exit_code == 0, right.output
    assert right.stdout.strip() == CARD

    unknown = run("field", "decrypt", *common, token, "--key-id", "0x0badf00d")
    assert unknown.exit_code == 2 and unknown.stdout == ""
    assert "0x0badf00d" in unknown.stderr

    new = run("field", "encrypt", *common, CARD, "--format", "json")
    assert json.loads(new.stdout)["key_id"] == format_key_id(open_ks(env).primary_id)
    text = run("field", "encrypt", *common, CARD)  # once rotated, text mode says it too
    assert format_key_id(open_ks(env).primary_id) in text.stderr


def test_rotate_warns_only_for_ff1(env: dict[str, Path]) -> None:
    rot = run("keys", "rotate", env["siv"], "--kek-file", env["kek"])
    assert rot.exit_code == 0 and "warning" not in rot.stderr


def test_key_id_is_for_ff1_only(env: dict[str, Path]) -> None:
    res = run("field", "encrypt", "-k", env["siv"], "--kek-file", env["kek"], "-c", "x.y",
              "v", "--key-id", "0x1")
    assert res.exit_code == 2 and res.stdout == ""


def test_single_key_ff1_keyset_still_decrypts_without_key_id(env: dict[str, Path]) -> None:
    common = ["-k", env["ff1"], "--kek-file", env["kek"], "-c", "cif.cards.card_no"]
    token = run("field", "encrypt", *common, CARD).stdout.strip()
    back = run("field", "decrypt", *common, token)
    assert back.exit_code == 0 and back.stdout.strip() == CARD


# ---- covault mask apply / reveal -------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_mask_reveal_after_rotation_uses_the_recorded_key(env: dict[str, Path],
                                                           suffix: str) -> None:
    d = env["dir"]
    masked, ledger = d / f"masked{suffix}", d / "ledger.db"
    first = format_key_id(open_ks(env).primary_id)
    res = run("mask", "apply", SAMPLE, "-o", masked, "-p", env["policy"], "-v",
              "partner_export", *keys(env), "--ledger", ledger, "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["key_ids"] == {"card_no": first}
    with Ledger(ledger) as log:
        assert log.get(0).payload["key_ids"] == {"card_no": first}
    if suffix == ".parquet":
        meta = {k.decode(): v.decode() for k, v in pq.read_schema(masked).metadata.items()}
    else:
        meta = json.loads(sidecar_path(masked).read_text())
    assert json.loads(meta[METADATA_PLAN])["card_no"]["key_id"] == first

    assert run("keys", "rotate", env["ff1"], "--kek-file", env["kek"]).exit_code == 0
    out = d / f"revealed{suffix}"
    res = run("mask", "reveal", masked, "-o", out, "-p", env["policy"], "-v", "partner_export",
              *keys(env), "--columns", "card_no", "--reason", "test", "--ledger", ledger,
              "--format", "json")
    assert res.exit_code == 0, res.output
    expected = original_cards()
    got = read_cards(out)
    assert sum(a == b for a, b in zip(got, expected, strict=True)) == len(expected) == 500
    with Ledger(ledger) as log:
        kinds = {r.kind: r.payload for r in log.records()}
    assert kinds["masking.reveal.started"]["key_ids"] == {"card_no": first}
    assert kinds["masking.reveal"]["key_ids"] == {"card_no": first}


def resign(env: dict[str, Path], masked: Path, edit: object) -> None:
    """Edit the recorded plan of a CSV output and re-authenticate it with the keysets:
    what an older writer, or a key holder, could produce. Only the key id check stands
    between such a plan and a wrong reveal."""
    from masking.engine import METADATA_MAC, sign_plan

    side = sidecar_path(masked)
    meta = json.loads(side.read_text())
    plan = json.loads(meta[METADATA_PLAN])
    edit(plan["card_no"])  # type: ignore[operator]
    meta[METADATA_PLAN] = json.dumps(plan)
    macs = sign_plan([open_ks(env), open_ks(env, "siv")], meta[METADATA_HASH],
                     meta[METADATA_VIEW], plan)
    meta[METADATA_MAC] = json.dumps(macs)
    side.write_text(json.dumps(meta))


@pytest.mark.parametrize("edit, message", [
    (lambda col: col.pop("key_id"), "carries no key id"),
    (lambda col: col.update(key_id="0x0badf00d"), "0x0badf00d"),
])
def test_reveal_refuses_fpe_column_without_a_usable_key_id(env: dict[str, Path], edit: object,
                                                           message: str) -> None:
    d = env["dir"]
    masked, out, ledger = d / "masked.csv", d / "out.csv", d / "ledger.db"
    assert run("mask", "apply", SAMPLE, "-o", masked, "-p", env["policy"], "-v",
               "partner_export", *keys(env)).exit_code == 0
    assert run("keys", "rotate", env["ff1"], "--kek-file", env["kek"]).exit_code == 0
    resign(env, masked, edit)
    res = run("mask", "reveal", masked, "-o", out, "-p", env["policy"], *keys(env),
              "--columns", "card_no", "--reason", "test", "--ledger", ledger)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and res.stdout == ""
    assert not out.exists() and not ledger.exists()


def test_reveal_with_another_ff1_keyset_is_refused(env: dict[str, Path]) -> None:
    d = env["dir"]
    masked, out = d / "masked.parquet", d / "out.csv"
    assert run("mask", "apply", SAMPLE, "-o", masked, "-p", env["policy"], "-v",
               "partner_export", *keys(env)).exit_code == 0
    other = d / "other.json"
    Keyset.create("FF1_AES256").save(other, Kek.from_key_file(env["kek"]))
    res = run("mask", "reveal", masked, "-o", out, "-p", env["policy"], "-k", other,
              "--kek-file", env["kek"], "--columns", "card_no")
    assert res.exit_code == 2 and res.stdout == "" and not out.exists()


def test_engine_records_the_key_id_and_reverse_refuses_to_guess() -> None:
    import pyarrow as pa

    from masking.engine import MaskingEngine
    from masking.operators import KeyProvider, OpContext, build_operator
    from masking.policy import Policy
    from privacy.errors import KeysetError

    ks = Keyset.create("FF1_AES256")
    policy = Policy.from_yaml(textwrap.dedent(POLICY).replace("- {name: id_no, operator: "
                                                               "tokenize}", ""))
    table = pa.table({"card_no": [CARD]})
    out = MaskingEngine(policy, ks).apply(table, view="partner_export")
    plan = json.loads(out.schema.metadata[METADATA_PLAN.encode()])
    assert plan["card_no"]["key_id"] == format_key_id(ks.primary_id)
    op = build_operator("fpe")
    old = ks.primary_id
    token = op.apply(pa.array([CARD]), OpContext("c", "t.c", keys=KeyProvider(ks))).values
    ks.rotate()
    with pytest.raises(KeysetError, match="no key id"):
        op.reverse(token, OpContext("c", "t.c", keys=KeyProvider(ks)))
    back = op.reverse(token, OpContext("c", "t.c", keys=KeyProvider(ks), key_id=old))
    assert back.to_pylist() == [CARD]
