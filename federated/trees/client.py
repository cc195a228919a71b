"""The ClientApp of the federated trees: what one bank runs on its own data.

It answers the horizontal app's setup messages (schema, moments, CKKS and secure
aggregation, the same functions as :mod:`federated.horizontal.client`) and four of its
own (see :mod:`federated.trees.protocol`). Every reply that carries data about rows is a
vector protected for secure sum; the ledger mod records every message.
"""

from __future__ import annotations

from typing import Any

from federated.horizontal import client as H
from federated.horizontal import protocol as P
from federated.horizontal.message_ledger import ledger_mod
from federated.horizontal.protect import protect
from federated.trees import party as T
from federated.trees import protocol as TP

__all__ = ["app"]


def _make_app() -> Any:
    from flwr.clientapp import ClientApp

    app = ClientApp(mods=[ledger_mod])
    for name, fn in (("schema", H.schema), ("stat", H.stat),
                     ("ckks_keygen", H.ckks_keygen_handler),
                     ("ckks_setup", H.ckks_setup_handler),
                     ("ckks_decrypt", H.ckks_decrypt_handler),
                     ("secagg_advertise", H.secagg_advertise),
                     ("secagg_setup", H.secagg_setup), ("secagg_unmask", H.secagg_unmask)):
        app.query(name)(fn)
    return app


app = _make_app()


@app.query(TP.SKETCH.removeprefix("query."))
@H._guarded
def sketch(msg: Any, context: Any) -> Any:
    """The party's sketch of its training rows, protected for secure sum."""
    cfg = P.config_of(msg)
    vec, name = T.sketch(cfg, context)
    return H._reply(msg, secure=protect(vec, cfg, context, party=name))


@app.query(TP.SETUP.removeprefix("query."))
@H._guarded
def setup(msg: Any, context: Any) -> Any:
    """Store the global bins; reply with their digest."""
    return H._reply(msg, config=T.setup(P.config_of(msg), context))


@app.query(TP.LEVEL.removeprefix("query."))
@H._guarded
def level(msg: Any, context: Any) -> Any:
    """Gradient and hessian histograms of one tree level, protected for secure sum."""
    cfg = P.config_of(msg)
    vec, info = T.level(cfg, context)
    return H._reply(msg, config=info, secure=protect(vec, cfg, context, party=info["party"]))


@app.query(TP.LOCAL.removeprefix("query."))
@H._guarded
def local(msg: Any, context: Any) -> Any:
    """The federated and a local-only model scored on the party's own test rows."""
    return H._reply(msg, metrics=T.local_scores(msg, context))
