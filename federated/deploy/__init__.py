"""Run a Flower app on real Flower processes: SuperLink, SuperNodes, certificates.

The federated runner hands this package a ServerApp/ClientApp pair (Flower's Message
API) and gets back a finished run::

    from federated.deploy import LocalFederation, write_app_dir

    app = write_app_dir(workdir / "app", "federated.horizontal.server:app",
                        "federated.horizontal.client:app", {"num-rounds": 3})
    parties = [{"partition-id": i, "num-partitions": 3, "party": f"bank_{i + 1}"}
               for i in range(3)]
    with LocalFederation("deployment", node_configs=parties) as fed:
        status = fed.run(app, {"num-rounds": 5}, timeout=600)   # raises if it fails

* :func:`write_app_dir` writes the app folder ``flwr run`` needs (one
  ``pyproject.toml`` naming the components and declaring the run config).
* :func:`make_certs` writes a test CA, the SuperLink's TLS certificate (IP SANs for
  addresses) and one authentication key pair per SuperNode.
* :class:`LocalFederation` starts the processes, submits runs (``submit``), waits
  for them (``wait`` → :class:`RunStatus`; :class:`RunFailedError` with Flower's
  reason and the ServerApp's log tail), kills and restarts SuperNodes, and always
  stops every process it started, on errors, ``KeyboardInterrupt`` and interpreter
  exit alike. Logs go to ``workdir/logs/<process>.log``.

Modes
-----
``"simulation"``
    ``flower-superlink --simulation --insecure`` on loopback; ``flwr run`` with
    ``--federation-config "num-supernodes=N client-resources-num-cpus=C
    init-args-num-cpus=R"``. The ServerApp runs in a subprocess and the N virtual
    SuperNodes as Ray actors (``partition-id``/``num-partitions`` in their node
    config). Ray's start costs ~5 s, later rounds ~0.1 s.
``"deployment"``
    ``flower-superlink`` with TLS and ``--enable-supernode-auth``, each node's public
    key registered with ``flwr supernode register``, and one ``flower-supernode``
    OS process per node with its own ``--node-config``, key and Runtime API port.
    Each ClientApp message starts a fresh ``flwr-clientapp`` process and SuperNodes
    poll every 3 s (fixed in Flower 1.42), so a round costs ~6 s whatever the
    model: protocols should use few, large messages.

Every process gets ``FLWR_HOME`` in the work dir,
``FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1`` (no ``uv sync``: it fails
offline), ``FLWR_DISABLE_UPDATE_CHECK=1`` and ``FLWR_TELEMETRY_ENABLED=0`` (nothing
leaves the machine), and this interpreter's ``bin`` first on ``PATH`` (the SuperLink
and SuperNodes start ``flower-superexec`` by name).

A real multi-bank federation
----------------------------
The coordinator (a bank, or a neutral operator) runs the SuperLink; it needs a
certificate for its public name from the bank's PKI and a database for its state::

    flower-superlink --ssl-ca-certfile ca.crt --ssl-certfile server.pem \
        --ssl-keyfile server.key --enable-supernode-auth \
        --host 0.0.0.0 --port 8000 --database state.db \
        --disable-runtime-dependency-installation

Each bank makes its own key pair and keeps the private half
(``ssh-keygen -t ecdsa -b 384 -N "" -f supernode``: OpenSSH format, a NIST curve),
and sends the coordinator ``supernode.pub``, which the coordinator registers::

    flwr supernode register bank_1.pub coordinator --name bank_1

Then each bank runs, inside its own network, next to its data::

    flower-supernode --superlink coordinator.example:8000 \
        --root-certificates ca.crt --auth-supernode-private-key supernode \
        --node-config 'party="bank_1" partition-id=0 num-partitions=3' \
        --host 127.0.0.1 --port 9094

and the data team submits runs with ``flwr run APP coordinator`` (``config.toml`` in
``FLWR_HOME``: ``address``, ``root-certificates``).

Ports. Flower 1.42 serves the SuperLink's Fleet API (SuperNodes), Control API
(``flwr`` CLI) and Runtime API (its ServerApp processes) over HTTPS on one
``--host``/``--port`` (default 8000). SuperNodes only connect out to it: a bank opens
no inbound port. A SuperNode's own Runtime API (``--port``, default 9094) serves its
ClientApp processes and stays on loopback.

What the SuperLink sees. TLS protects messages on the wire, but the SuperLink relays
and stores every message in clear: the ServerApp's instructions and each bank's
replies (model updates, metrics, counts), the app (FAB) and run config, node ids,
registered public keys and names, and when each node is online. Node configs stay
on each SuperNode. Whatever must stay hidden from the coordinator has to be
protected inside the app (secure aggregation, CKKS/Paillier, DP noise). An
unregistered key is refused; a crashed node is refused again until its heartbeat
lapses (~60 s). A SuperNode can also refuse apps not signed by a publisher it
trusts (``--trusted-entities``), which this package does not set up.
"""

from __future__ import annotations

from .appdir import ConfigValue, write_app_dir
from .certs import CertPaths, NodeKey, make_certs
from .federation import LocalFederation, Mode
from .remote import RemoteSuperLink
from .status import RunFailedError, RunStatus

__all__ = [
    "CertPaths",
    "ConfigValue",
    "LocalFederation",
    "Mode",
    "NodeKey",
    "RemoteSuperLink",
    "RunFailedError",
    "RunStatus",
    "make_certs",
    "write_app_dir",
]
