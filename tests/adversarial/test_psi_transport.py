"""Issue 11 (6), the transport: `psi serve/join` over mutual TLS, digests on message files.

Before the fix the TCP channel was plaintext and unauthenticated (anyone who could
connect got answers; an observer saw the sum), and a message file was trusted as it was:
a truncated or corrupted request, response, SUM or state file was parsed as far as it
went, with no check that it was complete. Now sessions run over TLS 1.2+ where the server
requires a client certificate from its CA and the client checks the server's certificate
and host name; plaintext needs ``--insecure-plaintext``. Every message file ends with the
SHA-256 of its bytes, checked before any of it is used.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from privacy.errors import KeyfileError, PSIError
from privacy.psi import PsiParty, join
from privacy.psi.files import finish_files, read_state, write_request, write_response
from privacy.psi.wire import Frame, FrameReader, encode_frame, encode_json
from privacy.tls import TestPki, client_context, make_test_pki, server_context

from ._psiserver import Server

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from covault.cli import main; main()", "psi"]
IDS = ["c-101", "c-202", "c-303", "c-404"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"), clients=("bank-a",))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """Another CA, with a server and a client certificate of its own."""
    return make_test_pki(tmp_path_factory.mktemp("rogue"), clients=("bank-a",))


def server_ctx(pki: TestPki) -> ssl.SSLContext:
    return server_context(pki.server_cert, pki.server_key, pki.ca_cert)


def client_ctx(pki: TestPki, trust: TestPki | None = None) -> ssl.SSLContext:
    cert, key = pki.clients[0]
    return client_context(cert, key, (trust or pki).ca_cert)


def tls_psi_server(tls: ssl.SSLContext) -> Server:
    """A plain-intersection PSI server speaking TLS with ``tls``."""
    return Server(PsiParty(IDS, workers=1), timeout=10, session_timeout=30, tls=tls)


@pytest.fixture()
def tls_server(pki: TestPki) -> Iterator[Server]:
    server = tls_psi_server(server_ctx(pki))
    yield server
    server.close()


def joiner(ids: list[str] | None = None) -> PsiParty:
    return PsiParty(ids or ["c-202", "C-404 ", "zz"], workers=1)


# -- mutual TLS -------------------------------------------------------------------------

def test_contexts_require_tls12_and_certificates(pki: TestPki) -> None:
    for ctx in (server_ctx(pki), client_ctx(pki)):
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert client_ctx(pki).check_hostname


def test_mutual_tls_session_works_and_names_the_client(pki: TestPki,
                                                       tls_server: Server) -> None:
    result = join(joiner(), "127.0.0.1", tls_server.port, timeout=20, connect_timeout=5,
                  tls=client_ctx(pki))
    assert result.size == 2 and sorted(result.ids or []) == ["c-202", "c-404"]
    (report,) = tls_server.wait_reports(1)
    assert report.outcome == "ok" and report.identity == "bank-a"
    assert report.record()["identity"] == "bank-a"


def test_client_without_a_certificate_is_refused(pki: TestPki, tls_server: Server) -> None:
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(cafile=str(pki.ca_cert))  # trusts the server, shows nothing
    with pytest.raises(PSIError, match="TLS"):
        join(joiner(), "127.0.0.1", tls_server.port, timeout=10, connect_timeout=5, tls=bare)
    (report,) = tls_server.wait_reports(1)
    assert report.outcome == "failed" and "TLS handshake failed" in (report.error or "")
    assert report.peer_size is None  # nothing of the protocol ran
    # the server goes on serving a client with a good certificate
    assert join(joiner(), "127.0.0.1", tls_server.port, timeout=20, connect_timeout=5,
                tls=client_ctx(pki)).size == 2


def test_client_certificate_from_another_ca_is_refused(pki: TestPki, other_pki: TestPki,
                                                       tls_server: Server) -> None:
    rogue = client_ctx(other_pki, trust=pki)  # its own cert, but trusts the real server
    with pytest.raises(PSIError, match="TLS"):
        join(joiner(), "127.0.0.1", tls_server.port, timeout=10, connect_timeout=5, tls=rogue)
    (report,) = tls_server.wait_reports(1)
    assert report.outcome == "failed" and "TLS handshake failed" in (report.error or "")


def test_client_refuses_a_server_it_does_not_trust_or_that_names_another_host(
        pki: TestPki, other_pki: TestPki) -> None:
    impostor = tls_psi_server(server_ctx(other_pki))  # a server certificate from another CA
    try:
        with pytest.raises(PSIError, match="TLS handshake failed.*CERTIFICATE_VERIFY_FAILED"):
            join(joiner(), "127.0.0.1", impostor.port, timeout=10, connect_timeout=5,
                 tls=client_ctx(pki))
    finally:
        impostor.close()
    real = tls_psi_server(server_ctx(pki))
    try:  # the right CA, but the certificate names 127.0.0.1/localhost, not this host
        with pytest.raises(PSIError, match="CERTIFICATE_VERIFY_FAILED"):
            join(joiner(), "127.0.0.1", real.port, timeout=10, connect_timeout=5,
                 tls=client_ctx(pki), server_hostname="bank-b.example")
    finally:
        real.close()


def test_plaintext_client_is_refused_by_a_tls_server(pki: TestPki, tls_server: Server) -> None:
    with pytest.raises(PSIError):
        join(joiner(), "127.0.0.1", tls_server.port, timeout=10, connect_timeout=5)
    (report,) = tls_server.wait_reports(1)
    assert report.outcome == "failed" and "TLS handshake failed" in (report.error or "")
    assert report.peer_size is None


def test_certificate_files_are_checked(pki: TestPki, other_pki: TestPki,
                                       tmp_path: Path) -> None:
    with pytest.raises(KeyfileError, match="no such TLS"):
        server_context(tmp_path / "none.pem", pki.server_key, pki.ca_cert)
    with pytest.raises(KeyfileError, match="matching"):  # a key of another certificate
        server_context(pki.server_cert, other_pki.server_key, pki.ca_cert)


# -- the command line: TLS or an explicit opt-out -----------------------------------------

def test_cli_refuses_plaintext_without_the_flag(tmp_path: Path, pki: TestPki) -> None:
    table = tmp_path / "ids.csv"
    table.write_text("id\n" + "".join(f"{i}\n" for i in IDS), encoding="utf-8")
    for command in (["serve", "--port", "0", "--once"],
                    ["join", "--connect", "127.0.0.1:1", "--mode", "cardinality"]):
        proc = cli(*command, "--ids", str(table), "-c", "id")
        assert proc.returncode == 2 and proc.stdout == ""
        assert "mutual TLS" in proc.stderr and "--insecure-plaintext" in proc.stderr
        assert "Traceback" not in proc.stderr
    proc = cli("join", "--ids", str(table), "-c", "id", "--connect", "127.0.0.1:1",
               "--mode", "cardinality", "--cert", str(pki.clients[0][0]))
    assert proc.returncode == 2 and "missing --key, --ca" in proc.stderr
    proc = cli("join", "--ids", str(table), "-c", "id", "--connect", "127.0.0.1:1",
               "--mode", "cardinality", "--insecure-plaintext", "--ca", str(pki.ca_cert))
    assert proc.returncode == 2 and "excludes --ca" in proc.stderr


def test_cli_certs_writes_a_test_pki_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    proc = cli("certs", str(out), "--client", "bank-a", "--client", "bank-c",
               "--host", "127.0.0.1", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    assert [Path(c["cert"]).name for c in made["clients"]] == ["bank-a.pem", "bank-c.pem"]
    for name in ("ca.key", "server.key", "bank-a.key", "bank-c.key"):
        assert (out / name).stat().st_mode & 0o777 == 0o600
    before = (out / "ca.key").read_bytes()
    proc = cli("certs", str(out), "--client", "bank-a")
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert (out / "ca.key").read_bytes() == before


# -- message files carry a digest ----------------------------------------------------------

@pytest.fixture()
def flow(tmp_path: Path) -> dict[str, Path]:
    f = {n: tmp_path / n for n in ("req.msg", "a.state", "resp.msg")}
    write_request(PsiParty(["c-101", "c-202", "zz"], workers=1), f["req.msg"], f["a.state"])
    write_response(PsiParty(IDS, workers=1), f["req.msg"], f["resp.msg"])
    return f


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_message_files_end_with_a_digest_and_round_trip(flow: dict[str, Path]) -> None:
    for name in ("req.msg", "a.state", "resp.msg"):
        data = flow[name].read_bytes()
        digest_frame = data[-44:]
        assert digest_frame[:12] == encode_frame(Frame.DIGEST, bytes(32))[:12]
    result = finish_files(["c-101", "c-202", "zz"], flow["a.state"], flow["resp.msg"])
    assert result.size == 2


def test_tampered_request_is_refused_before_answering(flow: dict[str, Path],
                                                      tmp_path: Path) -> None:
    flip(flow["req.msg"], len(flow["req.msg"].read_bytes()) - 80)  # inside a blinded point
    out = tmp_path / "resp2.msg"
    with pytest.raises(PSIError, match="integrity digest mismatch") as caught:
        write_response(PsiParty(IDS, workers=1), flow["req.msg"], out)
    assert str(flow["req.msg"]) in str(caught.value) and not out.exists()


@pytest.mark.parametrize("cut", ["digest", "mid-frame", "garbage"])
def test_truncated_or_extended_response_is_refused(flow: dict[str, Path], cut: str) -> None:
    data = flow["resp.msg"].read_bytes()
    bad = {"digest": data[:-44], "mid-frame": data[:-50], "garbage": data + b"x" * 12}[cut]
    flow["resp.msg"].write_bytes(bad)
    with pytest.raises(PSIError) as caught:
        finish_files(["c-101", "c-202", "zz"], flow["a.state"], flow["resp.msg"])
    message = str(caught.value)
    assert str(flow["resp.msg"]) in message
    assert {"digest": "no integrity digest", "mid-frame": "truncated",
            "garbage": "bad magic"}[cut] in message


def test_tampered_state_file_is_refused(flow: dict[str, Path]) -> None:
    data = flow["a.state"].read_bytes()
    i = data.index(b'"mode"')
    flow["a.state"].write_bytes(data[:i] + b'"mods"' + data[i + 6:])
    with pytest.raises(PSIError, match="digest mismatch"):
        read_state(flow["a.state"])


def test_file_without_a_digest_is_refused(flow: dict[str, Path]) -> None:
    with open(flow["req.msg"], "rb") as fh:  # the frames, as an older covault wrote them
        reader = FrameReader(fh, "req")
        hello = reader.expect_json(Frame.HELLO)
        frames = encode_json(Frame.HELLO, hello)
        while True:
            frame, payload = reader._next_strict()
            frames += encode_frame(frame, payload)
            if frame is Frame.END:
                break
    flow["req.msg"].write_bytes(frames)
    with pytest.raises(PSIError, match="no integrity digest"):
        write_response(PsiParty(IDS, workers=1), flow["req.msg"], flow["req.msg"].with_name("r"))


def test_cli_tampered_message_exits_2_naming_the_file(flow: dict[str, Path],
                                                      tmp_path: Path) -> None:
    table = tmp_path / "ids.csv"
    table.write_text("id\n" + "".join(f"{i}\n" for i in IDS), encoding="utf-8")
    flip(flow["req.msg"], len(flow["req.msg"].read_bytes()) - 80)  # inside a point
    out = tmp_path / "out.msg"
    proc = cli("respond", "--ids", str(table), "-c", "id", "--in-message", str(flow["req.msg"]),
               "--out-message", str(out))
    assert proc.returncode == 2 and not out.exists(), proc.stderr
    assert str(flow["req.msg"]) in proc.stderr and "Traceback" not in proc.stderr
