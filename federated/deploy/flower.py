"""The Flower commands a local federation runs: arguments, environment, CLI calls.

Flower 1.42 serves the SuperLink's Fleet, Control and Runtime APIs on one
``--host``/``--port``; the ``flwr`` CLI finds it through ``$FLWR_HOME/config.toml``
(connection ``local``).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from privacy.errors import FederationError, InputError

from .appdir import ConfigValue, check_key, toml_value
from .certs import CertPaths

__all__ = [
    "CONNECTION",
    "connection_toml",
    "flower_env",
    "healthy",
    "json_payload",
    "node_config_arg",
    "run_cli",
    "superlink_argv",
    "supernode_argv",
    "tool",
]

CONNECTION = "local"


def tool(name: str) -> str:
    """The path of a Flower console script, preferring this interpreter's environment."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FederationError(f"{name} not found: install Flower with `pip install covault[fl]`")
    return found


def flower_env(
    flwr_home: Path, pythonpath: Sequence[str], poll_interval: float, extra: Mapping[str, str]
) -> dict[str, str]:
    """The environment of every Flower process: offline, quiet, this ``bin`` first."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [env.get("PYTHONPATH")])])
    env.update(
        FLWR_HOME=str(flwr_home),
        FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
        FLWR_DISABLE_UPDATE_CHECK="1",
        FLWR_TELEMETRY_ENABLED="0",
        FLWR_SUPEREXEC_TASK_POLL_INTERVAL=str(poll_interval),
        RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def superlink_argv(host: str, port: int, certs: CertPaths | None) -> list[str]:
    """``flower-superlink``: simulation and insecure without ``certs``, else TLS and
    SuperNode authentication."""
    argv = [tool("flower-superlink"), "--host", host, "--port", str(port),
            "--disable-runtime-dependency-installation"]
    if certs is None:
        return [*argv, "--insecure", "--simulation"]
    return [
        *argv,
        "--ssl-ca-certfile", str(certs.ca_cert),
        "--ssl-certfile", str(certs.server_cert),
        "--ssl-keyfile", str(certs.server_key),
        "--enable-supernode-auth",
    ]


def supernode_argv(
    superlink: str, certs: CertPaths, index: int, node_config: str, runtime_port: int
) -> list[str]:
    """``flower-supernode`` for node ``index``: TLS, its auth key, its node config, and
    its own Runtime API port on loopback (ClientApps run in subprocesses)."""
    return [
        tool("flower-supernode"),
        "--superlink", superlink,
        "--root-certificates", str(certs.ca_cert),
        "--auth-supernode-private-key", str(certs.node_keys[index].private_key),
        "--node-config", node_config,
        "--host", "127.0.0.1",
        "--port", str(runtime_port),
    ]


def node_config_arg(config: Mapping[str, ConfigValue], index: int) -> str:
    """``--node-config`` text: space-separated ``key=value`` with TOML values."""
    what = f"node_configs[{index}]"
    parts = []
    for key, value in config.items():
        text = toml_value(value, what)
        if isinstance(value, str) and any(c in value for c in "\"'\n\\"):
            raise InputError(f"{what}: value {value!r} must not contain quotes, '\\' or newlines")
        parts.append(f"{check_key(key, what)}={text}")
    return " ".join(parts)


def connection_toml(address: str, ca_cert: Path | None) -> str:
    """``config.toml`` for the ``flwr`` CLI: the SuperLink, and how to trust it."""
    lines = [
        "[superlink]",
        f"default = {toml_value(CONNECTION)}",
        "",
        f"[superlink.{CONNECTION}]",
        f"address = {toml_value(address)}",
    ]
    if ca_cert is None:
        lines.append("insecure = true")
    else:
        lines.append(f"root-certificates = {toml_value(str(ca_cert.resolve()))}")
    return "\n".join(lines) + "\n"


def healthy(address: str, ca_cert: Path | None) -> bool:
    """Whether the SuperLink answers ``GET /health`` (HTTPS when ``ca_cert`` is given)."""
    scheme = "http" if ca_cert is None else "https"
    context = None if ca_cert is None else ssl.create_default_context(cafile=str(ca_cert))
    try:
        with urllib.request.urlopen(f"{scheme}://{address}/health", timeout=1.0,
                                    context=context) as res:
            return bool(res.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def run_cli(args: Sequence[str], env: Mapping[str, str], timeout: float = 60.0) -> str:
    """Run ``flwr ARGS``; its stdout, or :class:`FederationError` with its output."""
    try:
        res = subprocess.run([tool("flwr"), *args], capture_output=True, env=dict(env),
                             timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FederationError(f"`flwr {' '.join(args)}` took over {timeout:.0f} s") from exc
    out = res.stdout.decode("utf-8", "replace")
    if res.returncode != 0:
        err = res.stderr.decode("utf-8", "replace")
        raise FederationError(
            f"`flwr {' '.join(args)}` failed (exit {res.returncode}):\n"
            + "\n".join((out + err).splitlines()[-30:])
        )
    return out


def json_payload(out: str, command: str) -> dict[str, Any]:
    """The JSON object that ``flwr <command> --format json`` printed."""
    start = out.find("{")
    try:
        payload = json.loads(out[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict) or not payload.get("success", False):
        raise FederationError(f"`flwr {command}` printed no successful JSON result:\n{out[-2000:]}")
    return payload
