"""Demo step: keysets, field encryption, joinable tokens and FF1 on the sample customers."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from covault.demo.context import DemoContext, sample_customers
from privacy.atomic import atomic_output
from privacy.fields import DeterministicCipher, FieldCipher, Tokenizer
from privacy.fpe import FF1

TITLE = "Keysets and field-level encryption"


def run(ctx: DemoContext) -> dict[str, Any]:
    """Encrypt the sample's id numbers three ways and its card numbers with FF1."""
    table = sample_customers()
    ids = table.column("id_no").combine_chunks()
    cards = table.column("card_no").combine_chunks()
    det = DeterministicCipher(ctx.keyset("AES256_SIV"))
    fc = FieldCipher(ctx.keyset("AES256_GCM"))
    tok = Tokenizer(ctx.keyset("HMAC_SHA256"))
    ff1_key = ctx.keyset("FF1_AES256").key_material()
    ff1 = FF1(ff1_key, 10, b"cif.customers.card_no")
    det_ids = det.encrypt_many(ids, "cif.customers.id_no")
    ff1_cards = ff1.encrypt_many(cards)
    out = pa.table(
        {
            "customer_id": table.column("customer_id"),
            "id_no_det": det_ids,
            "id_no_enc": fc.encrypt_many(ids, "cif.customers.id_no"),
            "mobile_tok": tok.encrypt_many(table.column("mobile"), "cif.customers.mobile"),
            "card_no_ff1": ff1_cards,
        }
    )
    path = ctx.out / "fields" / "customers_encrypted.csv"
    with atomic_output(path) as fh:
        pacsv.write_csv(out, fh)
    # Round trips prove the tokens are usable by key holders.
    assert det.decrypt_many(det_ids, "cif.customers.id_no").equals(ids)
    assert ff1.decrypt_many(ff1_cards).equals(cards)
    ctx.keyset("AES256_SIV").rotate()
    ctx.save_keyset("AES256_SIV")
    still = det.decrypt(det_ids[0].as_py(), "cif.customers.id_no") == ids[0].as_py()
    return {
        "rows": table.num_rows,
        "output": str(path.relative_to(ctx.out)),
        "example": {
            "id_no": ids[0].as_py(),
            "det": det_ids[0].as_py(),
            "card_no": cards[0].as_py(),
            "ff1": ff1_cards[0].as_py(),
        },
        "decrypts_after_rotation": still,
    }
