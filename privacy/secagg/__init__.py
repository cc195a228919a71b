"""Secure aggregation: the server learns the sum of the clients' vectors, nothing else.

Two protocols share the primitives and the roster: this one (below), which survives
clients dropping out mid-round at two exchanges per sum, and the one-exchange sums of
:mod:`privacy.secagg.pairwise` (pairwise pads only; a dropout loses the round).

The construction is Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving
Machine Learning" (ACM CCS 2017), in its variant without signatures, run over many
rounds with one setup: each client's material for an input - a fresh X25519 mask key
pair and a fresh self-mask seed - is secret-shared along with its previous input, so a
round costs two exchanges. It needs no key holder and tolerates clients that drop out
mid-round. The transport is the caller's: every message is ``bytes``
(:mod:`.messages`), and the recipe is::

    cfg = SecAggConfig(threshold=3, frac_bits=32, max_abs=1e4)
    clients = {i: SecAggClient(i, cfg) for i in ids}
    server = SecAggServer(cfg, vector_length=d)
    roster = server.roster({i: c.advertise() for i, c in clients.items()})  # broadcast
    inbox = server.route({i: c.setup(roster) for i, c in clients.items()})  # one per client
    # each round r = 1, 2, ...
    participants = server.start_round(r)           # broadcast with the train message
    replies = {i: clients[i].masked_input(x[i], r, participants, inbox[i]) for i in alive}
    request, inbox = server.collect(r, replies)    # request to the survivors; next inboxes
    unmask = {i: clients[i].unmask(request) for i in still_alive}
    total, contributors = server.finish(r, unmask)  # float64 sum over the contributors

``server.inbox(i)`` always gives client ``i``'s current inbox (needed after a
``collect`` that abandoned its round). ``dump_client`` / ``load_client``
(:mod:`.state`) carry a client between messages where the transport rebuilds it (Flower).

Protocol
--------
Setup (once): each client advertises a long-term X25519 public key ``enc``; the server
broadcasts the roster (a fresh nonce, the parameters, every id and key). The session id
is the SHA-256 of the roster; it enters every key derivation, every associated data and
every later message. Each client then makes its first *material* (label 0): a mask key
pair ``s`` and a 256-bit self-mask seed ``b``. It Shamir-shares both (threshold ``t``,
GF(2^521 - 1), share point ``id + 1``) among the whole roster, itself included, encrypts
each pair of shares for ``v`` with ChaCha20-Poly1305 under HKDF(X25519(enc_u, enc_v)),
with associated data (session, sender, receiver, label, public mask key), and sends the
boxes, its public mask key and a SHA-256 commitment to ``b``.

Round ``r`` (two exchanges):

1. The server sends the participants ``P_r``, each with the label of the material it
   must use, and each participant its inbox: every peer's latest boxes and public mask
   keys. A client opens the boxes (which proves each public mask key is its owner's,
   since the box comes under the owner's roster key) and sends
   ``y_u = x_u + PRG(b_u) + sum_{v in P_r, v != u} sign(u, v) PRG(k_uv)  mod 2^64``
   with ``k_uv = HKDF(X25519(s_u, s_v), info = round r, u, v)``, ``sign = +1`` when
   ``u < v`` else ``-1``, PRG the ChaCha20 keystream and ``x_u`` the fixed-point
   encoding (:mod:`.fixedpoint`). On the same reply it sends its next material
   (label ``r``): public mask key, seed commitment, encrypted shares.
2. The server announces survivors ``S`` (who sent ``y``) and dropped ``D = P_r \\ S``.
   Each survivor returns its shares of ``b_v`` for ``v in S`` and of ``s_v`` for
   ``v in D`` (the round's labels). From ``t`` replies the server rebuilds them, checks
   each seed against its commitment and each mask key against its public key, removes
   the self-masks and the pairwise masks between ``S`` and ``D``, and decodes the sum.
   Clients in ``D`` are excluded from later rounds: their material is spent.

A client answers one unmasking request per round, only for the round it sent input to,
and refuses when it is listed as dropped, when ``S`` and ``D`` overlap or do not make up
``P_r``, or when ``|S| < t``. It refuses a round that lists a client with material
whose shares it already revealed, or lists itself with other material than its unused
one (its previous reply was lost: it needs a new setup).

Why fresh mask keys per input. A first design derived every round's pairwise masks
from one long-term mask key per client. Then revealing a dropped client's
key (which unmasking must do) also reveals its pairwise masks for every earlier round,
in which its seed was revealed because it survived: an honest-but-curious server reads
all its earlier inputs (reproduced in ``tests/adversarial/test_secagg_attacks.py``).
With a fresh key pair per input, a revealed key covers one round only.

Threat model
------------
* **Who learns what.** The server learns, per round, the sum over ``S`` (to within
  ``|S| * 2**-(frac_bits+1)`` of rounding), ``S`` and ``D``, the vector length, and the
  dropped clients' mask keys for that round (useless once the round is over). A client
  learns nothing about other inputs: it sees public keys, ids and its own shares. Shares
  are end-to-end encrypted between clients; use TLS against outside observers.
* **Honest-but-curious server**, colluding with up to ``t - 1`` clients: learns nothing
  beyond the sum over ``S`` of the honest clients' inputs (for ``|S| >= t``), as in the
  paper's honest-but-curious analysis (section 6), round after round.
* **Active (malicious) server.** It may show different clients different ``S``/``D``.
  Every honest client answers once per round and never reveals the seed and the mask
  key of one material, so to unmask an honest input the server needs ``t`` holders
  revealing its seed and another ``t`` revealing its mask key; with ``c`` colluding
  clients among ``n`` this is impossible when ``2t > n + c``. That counting argument is
  ours: the paper's proof for this setting adds a signed consistency round, which needs
  a PKI. **Without signatures a malicious server can also forge the roster**: add
  clients it controls (Sybils, making ``c`` arbitrary) or run a round with one honest
  client among fake ones, so the "sum" is that input. Flower's node authentication
  tells the *server* who is who; it does not let clients check the roster. Clients can:
  compare ``session_id`` (the roster digest) out of band or through the ledger.
  Recommended: ``t > 2n/3`` against a deviating server, ``t > n/2`` at least.
* **Malicious clients** cannot learn other inputs (fewer than ``t`` shares when
  ``c < t``), but can spoil the result: send any value (``max_abs`` is checked only by
  honest clients), send wrong shares (the round fails its reconstruction check and can
  be finished without them), or drop out. This protects confidentiality, not robustness.
* **Dropouts.** A round completes when at least ``t`` participants send their input and
  at least ``t`` of them answer the unmasking request. A client that drops before
  sending is left out of the sum and of later rounds; one that drops after sending is
  included and carries on.
* **Bound.** Values are fixed point with ``frac_bits`` fractional bits in Z_{2^64}; a
  client refuses ``|x| > max_abs`` and the roster is refused unless
  ``n * max_abs * 2**frac_bits < 2**63``, so the sum cannot wrap.

Warnings
--------
Secure aggregation hides individual updates from the server, not from the sum: a sum
over few clients (or over one honest client and several colluding ones) reveals much.
Add differential privacy where that matters. Without a way for clients to check the
roster (see above) the protection against a malicious server is void.
"""


from privacy.errors import SecAggError
from privacy.secagg.client import SecAggClient
from privacy.secagg.fixedpoint import SecAggConfig, decode, encode
from privacy.secagg.pairwise import PairwiseSumClient, PairwiseSumServer, RoundLost
from privacy.secagg.server import SecAggServer
from privacy.secagg.state import dump_client, load_client

__all__ = ["SecAggConfig", "SecAggClient", "SecAggServer", "SecAggError", "encode", "decode",
           "dump_client", "load_client", "PairwiseSumClient", "PairwiseSumServer", "RoundLost"]
