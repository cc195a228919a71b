"""Running the console with uvicorn: loopback by default.

Another interface needs ``allow_remote`` and TLS (a certificate and its key): the login
password and the session cookie must not cross a network in clear, and the cookie is
then ``Secure``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from privacy.errors import InputError

__all__ = ["is_loopback", "check_bind", "serve", "REMOTE_WARNING"]

REMOTE_WARNING = ("the console listens on {host}, not only on this machine: anyone who "
                  "can reach it may try to log in. Prefer 127.0.0.1 behind an SSH tunnel.")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, allow_remote: bool, tls: bool) -> None:
    """Refuse a non-loopback ``host`` unless ``allow_remote`` and ``tls``."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise InputError(f"--host {host} is not a loopback address; the console serves "
                         "127.0.0.1 by default. Pass --allow-remote (with --tls-cert and "
                         "--tls-key) to listen on other interfaces")
    if not tls:
        raise InputError(f"--host {host} with --allow-remote needs --tls-cert and --tls-key: "
                         "passwords and session cookies must not cross a network in clear")


def serve(db_path: str, *, host: str = "127.0.0.1", port: int = 8765,
          users_path: str | None = None, allow_remote: bool = False,
          tls_cert: str | None = None, tls_key: str | None = None,
          allowed_hosts: tuple[str, ...] = (), checkpoint: str | None = None,
          public_key: str | None = None, on_start: Any = None) -> None:
    """Serve the console until interrupted (see :func:`covault.web.app.create_app`)."""
    import uvicorn

    from covault.web.app import LOOPBACK_HOSTS, create_app

    if (tls_cert is None) != (tls_key is None):
        raise InputError("--tls-cert and --tls-key go together")
    check_bind(host, allow_remote=allow_remote, tls=tls_cert is not None)
    hosts = list(LOOPBACK_HOSTS) + list(allowed_hosts)
    if host in ("0.0.0.0", "::"):
        if not allowed_hosts:
            raise InputError(f"--host {host} listens on every interface: name the host names "
                             "clients will use with --allowed-host")
    elif not is_loopback(host):
        hosts.append(host)
    app = create_app(db_path, users_path=users_path, allowed_hosts=tuple(hosts),
                     checkpoint=checkpoint, public_key=public_key)
    scheme = "https" if tls_cert else "http"
    if on_start is not None:
        shown = f"[{host}]" if ":" in host else host
        on_start(f"{scheme}://{shown}:{port}/")
    uvicorn.run(app, host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                log_level="warning", server_header=False, proxy_headers=False,
                access_log=False)
