"""federated.deploy: certificates, app dirs, and real Flower processes on loopback.

The process tests start ``flower-superlink``/``flower-supernode`` themselves (simulation,
and deployment with TLS and SuperNode authentication) and run the toy app in
``tests/fl_toy``; they need only ``pip install -e .[all,dev]`` and no network.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from federated.deploy import (
    LocalFederation,
    RunFailedError,
    make_certs,
    write_app_dir,
)
from federated.deploy.flower import supernode_argv
from federated.deploy.processes import _tree, free_port, kill_tree, spawn
from privacy.errors import CovaultError, FederationError, InputError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TESTS = Path(__file__).resolve().parent
TOY_CONFIG: dict[str, str | int | float | bool] = {
    "result-path": "",
    "num-rounds": 1,
    "min-nodes": 3,
    "first-round-timeout": 60.0,
    "round-timeout": 60.0,
    "pause-after-round": 0,
    "fail": False,
}
PARTIES = [
    {"partition-id": i, "num-partitions": 3, "party": f"bank_{i + 1}"} for i in range(3)
]


@pytest.fixture(scope="module")
def toy_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_app_dir(
        tmp_path_factory.mktemp("app"), "fl_toy.app:server", "fl_toy.app:client", TOY_CONFIG,
        name="toy",
    )


def _result(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _running(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rfind(")") + 2] != "Z"


# ---------------------------------------------------------------- certificates, app dir


def test_make_certs_load_with_cryptography(tmp_path: Path) -> None:
    paths = make_certs(tmp_path / "c", num_nodes=2)
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert server.issuer == ca.subject
    ca.public_key().verify(  # type: ignore[union-attr]
        server.signature, server.tbs_certificate_bytes, ec.ECDSA(server.signature_hash_algorithm)  # type: ignore[arg-type]
    )
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    server_key = serialization.load_pem_private_key(paths.server_key.read_bytes(), None)
    assert server_key.public_key() == server.public_key()
    for node in paths.node_keys:
        private = serialization.load_ssh_private_key(node.private_key.read_bytes(), None)
        public = serialization.load_ssh_public_key(node.public_key.read_bytes())
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert private.curve.name == "secp384r1"
        assert private.public_key() == public
    for secret in [paths.ca_key, paths.server_key, *(n.private_key for n in paths.node_keys)]:
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_make_certs_refuses_to_overwrite(tmp_path: Path) -> None:
    first = make_certs(tmp_path, num_nodes=1)
    before = first.ca_cert.read_bytes()
    with pytest.raises(InputError, match="already exist"):
        make_certs(tmp_path, num_nodes=1)
    assert first.ca_cert.read_bytes() == before
    again = make_certs(tmp_path, num_nodes=1, force=True)
    assert again.ca_cert.read_bytes() != before


def test_write_app_dir_declares_components_and_config(tmp_path: Path) -> None:
    app = write_app_dir(tmp_path / "app", "pkg.server:app", "pkg.client:app",
                        {"rounds": 3, "lr": 0.5, "name": 'a "b"', "dp": True})
    doc = tomllib.loads((app / "pyproject.toml").read_text())
    flwr = doc["tool"]["flwr"]["app"]
    assert flwr["components"] == {"serverapp": "pkg.server:app", "clientapp": "pkg.client:app"}
    assert flwr["config"] == {"rounds": 3, "lr": 0.5, "name": 'a "b"', "dp": True}
    with pytest.raises(InputError, match="pkg.module:app"):
        write_app_dir(tmp_path / "x", "not a ref", "pkg.client:app", {})
    with pytest.raises(InputError, match="bare TOML key"):
        write_app_dir(tmp_path / "x", "a:b", "a:c", {"bad key": 1})


def test_bad_arguments_are_covault_errors() -> None:
    with pytest.raises(InputError, match="num_nodes"):
        LocalFederation("simulation")
    with pytest.raises(InputError, match="mode='deployment'"):
        LocalFederation("simulation", node_configs=PARTIES)
    with pytest.raises(InputError, match="quotes"):
        LocalFederation("deployment", node_configs=[{"party": 'x"y'}])
    assert issubclass(FederationError, CovaultError) and issubclass(FederationError, RuntimeError)


# ---------------------------------------------------------------- simulation


@pytest.mark.slow
def test_simulation_three_virtual_nodes(toy_app: Path, tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    with LocalFederation("simulation", num_nodes=3, pythonpath=[TESTS],
                         ray_num_cpus=2) as fed:
        status = fed.run(toy_app, {"result-path": str(result), "num-rounds": 2}, timeout=120)
        with pytest.raises(InputError, match="not processes"):
            fed.kill_node(0)
    assert status.ok and status.status == "finished:completed"
    data = _result(result)
    assert [r["replies"] for r in data["rounds"]] == [3, 3]
    configs = [a["node-config"] for a in data["rounds"][0]["answers"]]
    assert configs == [{"partition-id": i, "num-partitions": 3} for i in range(3)]
    assert [a["array"] for a in data["rounds"][1]["answers"]] == [[2] * 3, [12] * 3, [22] * 3]


# ---------------------------------------------------------------- deployment


@pytest.fixture(scope="module")
def _deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    with LocalFederation("deployment", node_configs=PARTIES, pythonpath=[TESTS],
                         workdir=tmp_path_factory.mktemp("deploy")) as fed:
        yield fed


@pytest.fixture()
def deployment(_deployment: LocalFederation) -> LocalFederation:
    """One TLS + node-auth federation for the module, with every SuperNode running.

    The node-failure test runs last and kills a node; if tests run in another order,
    the node is restarted here (which waits out the SuperLink's heartbeat, ~60 s).
    """
    for index in range(_deployment.num_nodes):
        if not _deployment.node_alive(index):
            _deployment.restart_node(index)
    return _deployment


@pytest.mark.slow
def test_deployment_tls_auth_three_supernodes(
    deployment: LocalFederation, toy_app: Path, tmp_path: Path
) -> None:
    fed = deployment
    assert len(set(fed.node_ids)) == 3
    node_pids = [fed._nodes[i].pid for i in range(3)]
    assert len(set(node_pids)) == 3 and os.getpid() not in node_pids
    assert "--enable-supernode-auth" in fed._superlink.argv  # type: ignore[union-attr]
    result = tmp_path / "result.json"
    status = fed.run(toy_app, {"result-path": str(result), "num-rounds": 3}, timeout=120)
    assert status.ok
    data = _result(result)
    assert sorted(data["nodes"]) == sorted(fed.node_ids)
    assert [r["replies"] for r in data["rounds"]] == [3, 3, 3]
    for server_round, entry in enumerate(data["rounds"], start=1):
        assert [a["node-config"] for a in entry["answers"]] == PARTIES
        assert [a["array"] for a in entry["answers"]] == [
            [10 * i + server_round] * 3 for i in range(3)
        ]
    # Each ClientApp ran in a process of its own, none of them this test's.
    pids = {a["pid"] for r in data["rounds"] for a in r["answers"]}
    assert os.getpid() not in pids and len(pids) == 9


@pytest.mark.slow
def test_supernode_with_unregistered_key_is_refused(
    deployment: LocalFederation, tmp_path: Path
) -> None:
    assert deployment.certs is not None
    stranger = make_certs(tmp_path, num_nodes=1).node_keys[0]  # CA unused: key only
    certs = dataclasses.replace(deployment.certs, node_keys=(stranger,))
    argv = supernode_argv(deployment.address, certs, 0, 'party="mallory"', free_port())
    proc = spawn("stranger", argv, tmp_path / "stranger.log", deployment._env())
    try:
        proc.popen.wait(timeout=60)
    finally:
        kill_tree(proc, grace=0)
    assert proc.popen.returncode != 0
    assert "Failed to activate SuperNode" in proc.tail(200)
    assert "SuperNode ID:" not in proc.tail(200)


@pytest.mark.slow
def test_failing_serverapp_raises_with_reason_and_log(
    deployment: LocalFederation, toy_app: Path, tmp_path: Path
) -> None:
    run_id = deployment.submit(toy_app, {"result-path": str(tmp_path / "r.json"), "fail": True})
    with pytest.raises(RunFailedError) as caught:
        deployment.wait(run_id, timeout=60)
    err = caught.value
    assert isinstance(err, FederationError) and not err.status.ok
    assert err.status.status == "finished:failed"
    assert "toy ServerApp failure requested" in str(err)
    assert "toy ServerApp failure requested" in err.status.log_tail
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_graceful_stop_and_restart_of_a_supernode(deployment: LocalFederation) -> None:
    old_pid = deployment._nodes[1].pid
    deployment.kill_node(1, graceful=True)
    assert not deployment.node_alive(1)
    deployment.restart_node(1, timeout=30)
    assert deployment.node_alive(1) and deployment._nodes[1].pid != old_pid


# ---------------------------------------------------------------- failures and cleanup


@pytest.mark.slow
def test_process_that_cannot_start_gives_its_log(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs", num_nodes=1)
    certs.server_key.write_bytes(b"not a key")
    with pytest.raises(FederationError, match="flower-superlink") as caught:
        LocalFederation("deployment", num_nodes=1, certs=certs, workdir=tmp_path / "w",
                        startup_timeout=30).start()
    assert "log" in str(caught.value)


_CHILD = """
import sys, time
from federated.deploy import LocalFederation
from federated.deploy.flower import supernode_argv
from federated.deploy.processes import _tree, free_port, kill_tree, spawn
fed = LocalFederation("simulation", num_nodes=2)
fed.start()
print(" ".join(map(str, _tree(fed._superlink.pid, fed._superlink.pid, include_root=True))),
      flush=True)
time.sleep(120)
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_no_orphans_after_interrupt_or_kill(sig: int) -> None:
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE,
                             cwd=TESTS.parent, text=True)
    try:
        assert child.stdout is not None
        pids = [int(p) for p in child.stdout.readline().split()]
        assert len(pids) >= 2  # the SuperLink and its SuperExec
        child.send_signal(sig)
        child.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_running(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in pids if _running(p)]
    finally:
        child.kill()
        child.wait()


def test_tree_helper_sees_this_process_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in _tree(os.getpid(), -1, include_root=True)
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
def test_run_past_its_timeout_is_stopped(
    deployment: LocalFederation, toy_app: Path, tmp_path: Path
) -> None:
    result = tmp_path / "r.json"
    run_id = deployment.submit(toy_app, {"result-path": str(result), "num-rounds": 2,
                                         "pause-after-round": 1})
    with pytest.raises(RunFailedError, match="did not finish within 1 s") as caught:
        deployment.wait(run_id, timeout=1)
    assert caught.value.status.status == "finished:stopped"
    assert not deployment.running(run_id)
    assert not result.exists()


@pytest.mark.slow
def test_killed_supernode_is_noticed_by_the_server(
    deployment: LocalFederation, toy_app: Path, tmp_path: Path
) -> None:
    """Last test on the shared federation: it leaves node 2 dead (a crash)."""
    fed = deployment
    result = tmp_path / "result.json"
    run_id = fed.submit(toy_app, {"result-path": str(result), "num-rounds": 2,
                                  "round-timeout": 10.0, "pause-after-round": 1})
    paused = Path(f"{result}.paused")
    deadline = time.monotonic() + 60
    while not paused.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert paused.exists(), fed.status(run_id)
    victim = fed._nodes[2].pid
    fed.kill_node(2)
    assert not fed.node_alive(2) and not _running(victim)
    Path(f"{result}.resume").touch()
    status = fed.wait(run_id, timeout=90)
    assert status.ok and status.nodes_down == (2,)
    rounds = _result(result)["rounds"]
    assert [r["replies"] for r in rounds] == [3, 2]
    assert rounds[1]["sent"] == 3
    assert [a["node-config"]["party"] for a in rounds[1]["answers"]] == ["bank_1", "bank_2"]
