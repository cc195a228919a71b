"""The roster: built by the server from the clients' adverts, checked by every client.

Both secure-sum protocols (:mod:`privacy.secagg` with dropout recovery, and
:mod:`privacy.secagg.pairwise` in one exchange) start from the same ``ROSTER`` message:
a fresh nonce, the run's parameters and every client's id and long-term X25519 public
key. Its SHA-256 is the session id every later message carries.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

from privacy.errors import SecAggError
from privacy.secagg import crypto, messages
from privacy.secagg.fixedpoint import SecAggConfig
from privacy.secagg.messages import Advert, Roster

__all__ = ["build_roster", "check_roster", "check_client_id"]


def _reject(client: int, message: str) -> NoReturn:
    raise SecAggError(f"client {client}: {message}", sender=client)


def _refuse(message: str) -> NoReturn:
    raise SecAggError(f"server: {message}", sender="server")


def check_client_id(client_id: object) -> int:
    """``client_id`` if it is an integer in ``[0, MAX_ID]`` (a Flower node id fits)."""
    if isinstance(client_id, bool) or not isinstance(client_id, int) \
            or not 0 <= client_id <= messages.MAX_ID:
        raise SecAggError(f"client id must be an integer in [0, {messages.MAX_ID}], "
                          f"got {client_id!r}")
    return client_id


def build_roster(config: SecAggConfig, adverts: Mapping[int, bytes]
                 ) -> tuple[bytes, dict[int, bytes]]:
    """Server: check every client's ``ADVERT`` (keyed by the id the transport vouches
    for); return the ``ROSTER`` to broadcast and the id -> public key map.

    Raises
    ------
    SecAggError
        Too few or too many clients, an id out of range, a malformed or unusable public
        key, or two clients advertising the same key (naming the client).
    """
    if not config.threshold <= len(adverts) <= messages.MAX_CLIENTS:
        raise SecAggError(f"{len(adverts)} clients: need {config.threshold} (the threshold) "
                          f"to {messages.MAX_CLIENTS}")
    config.check_capacity(len(adverts))
    parsed: dict[int, bytes] = {}
    seen: dict[bytes, int] = {}
    for cid in sorted(adverts):
        if isinstance(cid, bool) or not isinstance(cid, int) \
                or not 0 <= cid <= messages.MAX_ID:
            raise SecAggError(f"client id {cid!r} is not an integer in "
                              f"[0, {messages.MAX_ID}]")
        key = messages.decode_advert(adverts[cid], cid).enc_key
        crypto.check_public_key(key, peer=cid)
        if key in seen:
            _reject(cid, f"advertises the public key of client {seen[key]}")
        parsed[cid], seen[key] = key, cid
    out = messages.encode(Roster(os.urandom(16), config.threshold, config.frac_bits,
                                 float(config.max_abs),
                                 tuple(Advert(c, k) for c, k in parsed.items())))
    return out, parsed


def check_roster(roster: bytes, config: SecAggConfig, client_id: int, public_key: bytes
                 ) -> tuple[dict[int, bytes], bytes]:
    """Client: the roster's id -> public key map and the session id, after checking that
    it carries this client's parameters, lists this client with its own key, and is big
    enough and small enough for the parameters.

    Raises
    ------
    SecAggError
        (sender ``"server"``) when any check fails or the message is malformed.
    """
    parsed = messages.decode_roster(roster)
    cfg = config
    if (parsed.threshold, parsed.frac_bits, parsed.max_abs) != (
            cfg.threshold, cfg.frac_bits, float(cfg.max_abs)):
        _refuse(f"roster parameters (threshold {parsed.threshold}, frac_bits "
                f"{parsed.frac_bits}, max_abs {parsed.max_abs}) differ from this "
                "client's configuration")
    clients = {a.client_id: a.enc_key for a in parsed.clients}
    if clients.get(client_id) != public_key:
        _refuse(f"roster omits client {client_id} or alters its public key")
    if len(clients) < cfg.threshold:
        _refuse(f"roster of {len(clients)} clients is below threshold {cfg.threshold}")
    cfg.check_capacity(len(clients))
    if max(clients) > messages.MAX_ID:
        _refuse(f"roster client id {max(clients)} is out of range")
    return clients, messages.session_id(roster)
