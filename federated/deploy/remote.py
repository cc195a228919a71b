"""`RemoteSuperLink`: submit and follow runs on a SuperLink that runs elsewhere.

A real multi-bank federation: the coordinator runs ``flower-superlink`` (TLS, SuperNode
authentication), each bank runs its own ``flower-supernode``, and ``covault fl run`` with
``[deployment] superlink = "HOST:PORT"`` submits the app to that SuperLink and follows
it, starting no process of its own but ``flwr`` CLI calls. The same interface as
:class:`~federated.deploy.LocalFederation` (``submit``, ``wait``, ``status``,
``running``, ``logs``).
"""

from __future__ import annotations

import os
from pathlib import Path

from privacy.errors import InputError

from .federation import LocalFederation
from .flower import connection_toml

__all__ = ["RemoteSuperLink"]


class RemoteSuperLink(LocalFederation):
    """A SuperLink (and SuperNodes) that this process did not start.

    Parameters
    ----------
    address:
        The SuperLink's ``host:port`` for ``flwr`` CLI calls (its Control API).
    root_certificates:
        The CA certificate that signed the SuperLink's TLS certificate (PEM). TLS is
        required: there is no insecure mode for a remote SuperLink.
    workdir:
        Where the ``flwr`` CLI's home, run configs and run logs go (default: a new
        temporary folder, removed on :meth:`close`).
    """

    def __init__(self, address: str, *, root_certificates: str | os.PathLike[str],
                 workdir: str | os.PathLike[str] | None = None) -> None:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InputError(f"superlink address {address!r} must be HOST:PORT")
        ca = Path(root_certificates)
        if not ca.is_file():
            raise InputError(f"root certificates {str(ca)!r} not found")
        super().__init__("deployment", num_nodes=1, workdir=workdir)
        self.host, self.port = host, int(port)
        self._ca_file = ca.resolve()

    def start(self) -> None:
        """Write the ``flwr`` CLI's connection settings (nothing is started)."""
        if self._started:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.flwr_home.mkdir(parents=True, exist_ok=True)
        (self.flwr_home / "config.toml").write_text(connection_toml(self.address, self._ca_file))
        self._started = True

    def kill_node(self, index: int, *, graceful: bool = False) -> None:
        """Refused: the SuperNodes belong to the banks."""
        raise InputError("kill_node: a remote federation's SuperNodes are not this process's")
