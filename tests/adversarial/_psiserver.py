"""A PSI server (``privacy.psi.serve(once=False)``) on a thread, for the adversarial tests."""

from __future__ import annotations

import threading
import time
from typing import Any

from privacy.psi import PsiParty, ServeReport, serve


class Server:
    """``serve(once=False)`` on a thread, stopped at the end of the test."""

    def __init__(self, party: PsiParty, **kw: Any) -> None:
        self.reports: list[ServeReport] = []
        self.stop = threading.Event()
        ready = threading.Event()
        self.port = 0
        self.error: BaseException | None = None

        def listening(_h: str, p: int) -> None:
            self.port = p
            ready.set()

        def run() -> None:
            try:
                serve(party, port=0, once=False, on_listen=listening,
                      on_session=self.reports.append, stop=self.stop, **kw)
            except BaseException as exc:  # noqa: BLE001 - checked by the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def wait_reports(self, n: int, limit: float = 30) -> list[ServeReport]:
        deadline = time.monotonic() + limit
        while len(self.reports) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.reports) >= n, self.reports
        return self.reports

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert self.error is None, self.error
