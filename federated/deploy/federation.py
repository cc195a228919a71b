"""`LocalFederation`: a SuperLink and its SuperNodes as real Flower processes.

See the package docstring (:mod:`federated.deploy`) for the commands it runs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Literal

from privacy.errors import FederationError, InputError

from .appdir import ConfigValue, write_toml_table
from .certs import CertPaths, make_certs
from .flower import (
    CONNECTION,
    connection_toml,
    flower_env,
    healthy,
    json_payload,
    node_config_arg,
    run_cli,
    superlink_argv,
    supernode_argv,
    tool,
)
from .processes import Proc, free_port, free_ports, kill_tree, log_tail, spawn, wait_until
from .status import RunFailedError, RunStatus

__all__ = ["LocalFederation", "Mode", "RunFailedError", "RunStatus"]

Mode = Literal["simulation", "deployment"]

_PORT_ATTEMPTS = 3


class LocalFederation:
    """A SuperLink and SuperNodes on this machine, started and cleaned up together.

    Parameters
    ----------
    mode:
        ``"simulation"``: one ``flower-superlink --simulation`` runs the ServerApp and
        ``num_nodes`` virtual SuperNodes as Ray actors. ``"deployment"``: a
        ``flower-superlink`` with TLS and SuperNode authentication, and one
        ``flower-supernode`` OS process per node, each with its own node config and
        authentication key.
    num_nodes:
        How many SuperNodes; defaults to ``len(node_configs)``.
    node_configs:
        Deployment: one mapping per node (``{"partition-id": 0, "num-partitions": 3,
        "party": "bank_1"}``), passed as ``--node-config``. Default: partition id and
        count. Simulation gives each virtual node exactly these two keys, so only
        those defaults are accepted there.
    workdir:
        Where logs, certificates, Flower's home and run configs go. Default: a new
        temporary folder, removed on :meth:`close` unless ``keep_workdir``.
    certs:
        Deployment: certificates and node keys from :func:`make_certs` (at least
        ``num_nodes`` keys). Default: made fresh under ``workdir/certs``.
    pythonpath:
        Folders prepended to ``PYTHONPATH`` for every Flower process, for app code
        that is not installed (tests).
    env:
        Extra environment variables for every Flower process.
    client_num_cpus, client_num_gpus:
        Simulation: resources one ClientApp reserves in Ray. With ``ray_num_cpus`` they
        fix how many Ray workers run at once (``ray_num_cpus // client_num_cpus``);
        memory follows the workers, not the virtual nodes, so 100 nodes with 2 workers
        fit in a few GiB.
    ray_num_cpus:
        Simulation: CPUs Ray may use (default: all cores).
    host:
        The loopback address the SuperLink listens on.
    startup_timeout:
        Seconds each process may take to become ready.
    superexec_poll_interval:
        Seconds between SuperExec polls for new ServerApp/ClientApp work
        (``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``; Flower's default is 1 s).
    keep_workdir:
        Keep a temporary ``workdir`` after :meth:`close`.

    Warnings
    --------
    Simulation runs with ``--insecure`` on loopback: the SuperLink's API is reachable
    by any local user for the federation's lifetime. Deployment mode always uses TLS
    and SuperNode authentication. On Linux each child is bound to the *thread* that
    started it (``PR_SET_PDEATHSIG``): start and use a federation from one thread.
    """

    def __init__(
        self,
        mode: Mode = "simulation",
        *,
        num_nodes: int | None = None,
        node_configs: Sequence[Mapping[str, ConfigValue]] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        certs: CertPaths | None = None,
        pythonpath: Sequence[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
        client_num_cpus: int = 1,
        client_num_gpus: float = 0.0,
        ray_num_cpus: int | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 60.0,
        superexec_poll_interval: float = 0.1,
        keep_workdir: bool = False,
    ) -> None:
        if mode not in ("simulation", "deployment"):
            raise InputError(f"LocalFederation: mode {mode!r} must be 'simulation' or 'deployment'")
        count = num_nodes if num_nodes is not None else len(node_configs or ())
        if count < 1:
            raise InputError("LocalFederation: give num_nodes >= 1 or node_configs")
        if node_configs is not None and len(node_configs) != count:
            raise InputError(
                f"LocalFederation: {len(node_configs)} node_configs for {count} nodes"
            )
        defaults: list[dict[str, ConfigValue]] = [
            {"partition-id": i, "num-partitions": count} for i in range(count)
        ]
        configs = [dict(c) for c in node_configs] if node_configs is not None else defaults
        if mode == "simulation" and configs != defaults:
            raise InputError(
                "LocalFederation: simulated nodes only get 'partition-id' and "
                "'num-partitions'; custom node_configs need mode='deployment'"
            )
        if client_num_cpus < 1:
            raise InputError(
                f"LocalFederation: client_num_cpus must be >= 1, got {client_num_cpus}"
            )
        if certs is not None and len(certs.node_keys) < count:
            raise InputError(
                f"LocalFederation: certs hold {len(certs.node_keys)} node keys for {count} nodes"
            )
        self.mode: Mode = mode
        self.num_nodes = count
        self.node_configs: list[dict[str, ConfigValue]] = configs
        self._node_args = [node_config_arg(c, i) for i, c in enumerate(configs)]
        self._owned_workdir = workdir is None
        self._keep = keep_workdir
        self.workdir = Path(workdir) if workdir is not None else Path(
            tempfile.mkdtemp(prefix="covault-fl-")
        )
        self.certs = certs
        self._pythonpath = [str(Path(p).resolve()) for p in pythonpath]
        self._extra_env = dict(env or {})
        self._client_num_cpus = client_num_cpus
        self._client_num_gpus = client_num_gpus
        self._ray_num_cpus = ray_num_cpus
        self.host = host
        self.port = 0
        self.node_ids: list[int] = []
        self._startup_timeout = startup_timeout
        self._poll = superexec_poll_interval
        self._superlink: Proc | None = None
        self._nodes: list[Proc] = []
        self._killed: set[int] = set()
        self._streams: dict[int, Proc] = {}
        self._submitted = 0
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalFederation:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def address(self) -> str:
        """The SuperLink's ``host:port`` (Fleet, Control and Runtime APIs share it)."""
        return f"{self.host}:{self.port}"

    @property
    def flwr_home(self) -> Path:
        """The ``FLWR_HOME`` every Flower process and CLI call uses."""
        return self.workdir / "flwr-home"

    def start(self) -> None:
        """Start the SuperLink (and SuperNodes) and wait until they are ready.

        Raises
        ------
        FederationError
            If a process fails to start or is not ready within ``startup_timeout``;
            the message quotes its log. Everything started so far is stopped.
        """
        if self._started:
            return
        self._started = True
        atexit.register(self.close)
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.flwr_home.mkdir(parents=True, exist_ok=True)
            if self.mode == "deployment" and self.certs is None:
                self.certs = make_certs(
                    self.workdir / "certs", (self.host, "localhost"), num_nodes=self.num_nodes,
                    force=True,
                )
            self._start_superlink()
            (self.flwr_home / "config.toml").write_text(
                connection_toml(self.address, self._ca())
            )
            if self.mode == "deployment":
                self.node_ids = self._register_nodes()
                self._start_supernodes()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop every process this federation started (idempotent)."""
        atexit.unregister(self.close)
        procs = [*self._streams.values(), *self._nodes]
        if self._superlink is not None:
            procs.append(self._superlink)
        for proc in procs:
            kill_tree(proc, grace=3.0)
        self._streams.clear()
        self._nodes = []
        self._superlink = None
        self._started = False
        if self._owned_workdir and not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ processes

    def _env(self) -> dict[str, str]:
        return flower_env(self.flwr_home, self._pythonpath, self._poll, self._extra_env)

    def _log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def _ca(self) -> Path | None:
        return None if self.certs is None else self.certs.ca_cert

    def _cli(self, args: Sequence[str]) -> str:
        return run_cli(args, self._env())

    def _start_superlink(self) -> None:
        for attempt in range(_PORT_ATTEMPTS):
            self.port = free_port(self.host)
            argv = superlink_argv(self.host, self.port, self.certs)
            proc = spawn("flower-superlink", argv, self._log("superlink"), self._env())
            self._superlink = proc
            try:
                wait_until(lambda: healthy(self.address, self._ca()),
                           timeout=self._startup_timeout,
                           what=f"flower-superlink on {self.address}", watch=[proc])
                return
            except FederationError:
                in_use = "address already in use" in proc.tail(200).lower()
                kill_tree(proc, grace=1.0)
                self._superlink = None
                if not in_use or attempt == _PORT_ATTEMPTS - 1:
                    raise

    def _register_nodes(self) -> list[int]:
        """``flwr supernode register`` each node's public key; the node ids."""
        assert self.certs is not None
        keys = [str(self.certs.node_keys[i].public_key) for i in range(self.num_nodes)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            outs = list(pool.map(
                lambda i: self._cli(["supernode", "register", keys[i], CONNECTION,
                                     "--name", f"node-{i}", "--format", "json"]),
                range(self.num_nodes),
            ))
        return [int(json_payload(out, "supernode register")["node-id"]) for out in outs]

    def _start_supernodes(self) -> None:
        ports = free_ports(self.num_nodes)
        self._nodes = [self._spawn_supernode(i, port) for i, port in enumerate(ports)]
        for proc in self._nodes:
            self._wait_connected(proc)

    def _spawn_supernode(self, index: int, port: int) -> Proc:
        log = self._log(f"supernode-{index}")
        log.unlink(missing_ok=True)  # readiness is read from this run's log
        assert self.certs is not None
        argv = supernode_argv(self.address, self.certs, index, self._node_args[index], port)
        return spawn(f"flower-supernode {index}", argv, log, self._env())

    def _wait_connected(self, proc: Proc) -> None:
        """Wait for the line a SuperNode logs once the SuperLink has accepted it."""
        wait_until(lambda: "SuperNode ID:" in log_tail(proc.log, 400),
                   timeout=self._startup_timeout, what=proc.name, watch=[proc])

    # ------------------------------------------------------------------ runs

    def _federation_config(self) -> str:
        parts = [f"num-supernodes={self.num_nodes}",
                 f"client-resources-num-cpus={self._client_num_cpus}",
                 f"client-resources-num-gpus={float(self._client_num_gpus)}"]
        if self._ray_num_cpus is not None:
            parts.append(f"init-args-num-cpus={self._ray_num_cpus}")
        return " ".join(parts)

    def submit(
        self, app_dir: str | os.PathLike[str], run_config: Mapping[str, ConfigValue] | None = None
    ) -> int:
        """Start a run of the app in ``app_dir`` (see :func:`write_app_dir`).

        Parameters
        ----------
        app_dir:
            The app directory.
        run_config:
            Overrides of keys declared in the app's ``[tool.flwr.app.config]``.

        Returns
        -------
        int
            The run id, for :meth:`wait`.

        Raises
        ------
        FederationError
            If the federation is not started or the SuperLink refuses the run.
        """
        if not self._started:
            raise FederationError("LocalFederation.submit: the federation is not started")
        self._submitted += 1
        args = ["run", str(Path(app_dir).resolve()), CONNECTION, "--format", "json"]
        if run_config:
            path = self.workdir / "run-configs" / f"run-{self._submitted}.toml"
            path.parent.mkdir(parents=True, exist_ok=True)
            args += ["--run-config", str(write_toml_table(path, run_config, "run config"))]
        if self.mode == "simulation":
            args += ["--federation-config", self._federation_config()]
        run_id = int(json_payload(self._cli(args), "run")["run-id"])
        self._streams[run_id] = spawn(
            f"flwr log {run_id}", [tool("flwr"), "log", str(run_id), CONNECTION, "--stream"],
            self._log(f"run-{run_id}"), self._env(),
        )
        return run_id

    def running(self, run_id: int) -> bool:
        """Whether the run's log stream is still open, i.e. the run has not finished.

        Cheap (no CLI call), unlike :meth:`status`; for progress loops.
        """
        stream = self._streams.get(run_id)
        return stream is not None and stream.alive()

    def status(self, run_id: int) -> RunStatus:
        """The run's status now (``flwr list --run-id``)."""
        out = self._cli(["list", "--run-id", str(run_id), CONNECTION, "--format", "json"])
        runs = json_payload(out, "list").get("runs") or []
        if not runs:
            raise FederationError(f"run {run_id} is unknown to the SuperLink at {self.address}")
        run = runs[0]
        log = self._log(f"run-{run_id}")
        return RunStatus(
            run_id=run_id,
            status=str(run.get("status", "")),
            details=str(run.get("status-details", "")),
            elapsed=float(run.get("elapsed") or 0.0),
            log_path=log,
            log_tail=log_tail(log, 60),
            nodes_down=tuple(i for i, p in enumerate(self._nodes) if not p.alive()),
        )

    def wait(self, run_id: int, timeout: float = 600.0, *, check: bool = True) -> RunStatus:
        """Wait until the run finishes; its final status.

        Parameters
        ----------
        run_id:
            From :meth:`submit`.
        timeout:
            Seconds to wait; then the run is stopped (``flwr stop``).
        check:
            Raise :class:`RunFailedError` if the run did not complete successfully.

        Raises
        ------
        RunFailedError
            If ``check`` and the run failed or was stopped (with Flower's reason and
            the tail of the ServerApp's log), or whatever ``check``, after ``timeout``.
        FederationError
            If the SuperLink died.
        """
        deadline = time.monotonic() + timeout
        stream = self._streams.get(run_id)
        while stream is not None and stream.alive() and time.monotonic() < deadline:
            self._check_superlink()
            time.sleep(0.05)
        status = self.status(run_id)
        while not status.finished and time.monotonic() < deadline:
            self._check_superlink()
            time.sleep(0.5)
            status = self.status(run_id)
        if not status.finished:
            with contextlib.suppress(FederationError):
                self._cli(["stop", str(run_id), CONNECTION])
                status = self.status(run_id)
            self._end_stream(run_id)
            raise RunFailedError(
                f"run {run_id} did not finish within {timeout:g} s and was stopped "
                f"(status {status.status}); log {status.log_path}:\n{status.log_tail}",
                status,
            )
        self._end_stream(run_id)
        if check and not status.ok:
            raise RunFailedError(
                f"run {run_id} {status.status}: {status.details}\n"
                f"log {status.log_path}:\n{status.log_tail}{self._crashed_nodes()}",
                status,
            )
        return status

    def _crashed_nodes(self) -> str:
        """Log tails of SuperNodes that died without :meth:`kill_node`."""
        crashed = [p for i, p in enumerate(self._nodes)
                   if not p.alive() and i not in self._killed]
        return "".join(f"\n{p.died()}" for p in crashed)

    def run(
        self,
        app_dir: str | os.PathLike[str],
        run_config: Mapping[str, ConfigValue] | None = None,
        timeout: float = 600.0,
    ) -> RunStatus:
        """:meth:`submit` then :meth:`wait` (raising if the run does not complete)."""
        return self.wait(self.submit(app_dir, run_config), timeout)

    def _end_stream(self, run_id: int) -> None:
        stream = self._streams.pop(run_id, None)
        if stream is not None:
            kill_tree(stream, grace=1.0)

    def _check_superlink(self) -> None:
        if self._superlink is not None and not self._superlink.alive():
            raise self._superlink.died()

    # ------------------------------------------------------------------ nodes

    def kill_node(self, index: int, *, graceful: bool = False) -> None:
        """Stop SuperNode ``index`` and its ClientApp processes.

        Parameters
        ----------
        index:
            The node, as in ``node_configs``.
        graceful:
            False (default): SIGKILL at once, as a crashed machine; the SuperLink is not
            told and keeps the node "online" until its heartbeat lapses (about 60 s).
            True: SIGTERM, so the SuperNode signs off first and can be restarted at once.

        Raises
        ------
        InputError
            In simulation mode (virtual nodes are not processes) or for a bad index.
        """
        if self.mode != "deployment":
            raise InputError("kill_node: simulated nodes are not processes; use mode='deployment'")
        if not 0 <= index < len(self._nodes):
            raise InputError(f"kill_node: index {index} out of range 0..{len(self._nodes) - 1}")
        kill_tree(self._nodes[index], grace=5.0 if graceful else 0.0)
        self._killed.add(index)

    def restart_node(self, index: int, *, timeout: float = 90.0) -> None:
        """Start SuperNode ``index`` again (same key and node config) after
        :meth:`kill_node`, and wait until the SuperLink has accepted it.

        After a crash (``kill_node(graceful=False)``) the SuperLink refuses the node
        until its heartbeat lapses (about 60 s); this retries until ``timeout``.

        Raises
        ------
        InputError
            In simulation mode, for a bad index, or if the node is still running.
        FederationError
            If it is not accepted within ``timeout`` seconds (with its log).
        """
        if self.mode != "deployment" or not 0 <= index < len(self._nodes):
            raise InputError(f"restart_node: no SuperNode process {index}")
        if self._nodes[index].alive():
            raise InputError(f"restart_node: SuperNode {index} is running")
        deadline = time.monotonic() + timeout
        while True:
            proc = self._spawn_supernode(index, free_port())
            self._nodes[index] = proc
            try:
                self._wait_connected(proc)
            except FederationError:
                refused = "Failed to activate SuperNode" in proc.tail(100)
                if not refused or time.monotonic() > deadline:
                    raise
                time.sleep(2.0)
                continue
            self._killed.discard(index)
            return

    def node_alive(self, index: int) -> bool:
        """Whether SuperNode ``index``'s process is running (deployment mode)."""
        return 0 <= index < len(self._nodes) and self._nodes[index].alive()

    def logs(self) -> dict[str, Path]:
        """The log file of every process started so far, by role."""
        return {p.stem: p for p in sorted((self.workdir / "logs").glob("*.log"))}
