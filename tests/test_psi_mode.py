"""A PSI mode mismatch names ``--mode`` and both sides' modes, by role, on both sides.

Before, the joiner read the server's own view relayed back ("peer aborted: hello: peer
mode 'cardinality', ours is 'intersection'"): "peer" and "ours" pointed the wrong way
and no option was named.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from privacy.errors import PSIError
from privacy.psi import PsiParty, join, serve, write_request, write_response

EXPECTED = ("the initiator (psi join / psi request) runs --mode cardinality, the "
            "responder (psi serve / psi respond) --mode intersection; both parties must "
            "give the same --mode")


def test_live_mismatch_names_both_modes_on_both_sides() -> None:
    ready = threading.Event()
    port: list[int] = []
    server_errors: list[Exception] = []

    def run() -> None:
        try:
            serve(PsiParty(["a", "b"], workers=1), port=0, timeout=10,
                  on_listen=lambda _h, p: (port.append(p), ready.set()))
        except PSIError as exc:
            server_errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert ready.wait(10)
    with pytest.raises(PSIError) as joined:
        join(PsiParty(["a"], mode="cardinality", workers=1), "127.0.0.1", port[0], timeout=10)
    thread.join(10)
    assert EXPECTED in str(joined.value)
    assert server_errors and EXPECTED in str(server_errors[0])


def test_file_flow_mismatch_names_both_modes(tmp_path: Path) -> None:
    write_request(PsiParty(["a"], mode="cardinality", workers=1), tmp_path / "req.msg",
                  tmp_path / "a.state")
    with pytest.raises(PSIError) as info:
        write_response(PsiParty(["a"], workers=1), tmp_path / "req.msg", tmp_path / "resp.msg")
    assert EXPECTED in str(info.value)
    assert not (tmp_path / "resp.msg").exists()


def test_initiator_side_check_names_both_modes() -> None:
    initiator = PsiParty(["a"], mode="intersection", workers=1)
    responder = PsiParty(["a"], mode="cardinality", workers=1)
    accept = {**responder.accept({**initiator.hello(), "mode": "cardinality"})}
    with pytest.raises(PSIError) as info:
        initiator.absorb(accept, responder.records())
    assert ("the initiator (psi join / psi request) runs --mode intersection, the responder "
            "(psi serve / psi respond) --mode cardinality") in str(info.value)


def test_a_hostile_mode_is_shown_as_data() -> None:
    with pytest.raises(PSIError) as info:
        PsiParty(["a"], workers=1).accept({**PsiParty(["a"], workers=1).hello(),
                                           "mode": "x\x1b[2J"})
    assert "--mode 'x\\x1b[2J'" in str(info.value)
