"""Two-party private set intersection (semi-honest ECDH-PSI on ristretto255).

The recipe is :class:`PsiParty` (see :mod:`privacy.psi.party` for the protocol, its
modes and what each party learns); :func:`serve` / :func:`join` run it over TCP and
:func:`write_request` ... :func:`reveal_files` through message files. The modules, each
importing only those listed after it:

* :mod:`privacy.psi.net` - a session between two processes over TCP;
* :mod:`privacy.psi.files` - the same session as message files, one step per command;
* :mod:`privacy.psi.party` - :class:`PsiParty`: normalising, hashing, blinding, matching;
* :mod:`privacy.psi.sums` - Paillier for the ``intersection-sum`` mode (phe, lazily);
* :mod:`privacy.psi.wire` - the framing of every PSI message, bounded and checked;
* :mod:`privacy.psi.group` - ristretto255 hashing and blinding (rbcl, lazily), batched.

Importing this package imports neither rbcl nor phe.
"""

from privacy.psi.files import (
    finish_files,
    read_state,
    reveal_files,
    write_request,
    write_response,
)
from privacy.psi.net import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_TIMEOUT,
    DEFAULT_TIMEOUT,
    PER_FRAME,
    ServeReport,
    join,
    serve,
)
from privacy.psi.party import MODES, PROTOCOL, Mode, PsiParty, PsiResult, normalize_id
from privacy.psi.sums import SumRefusedError

__all__ = [
    "PROTOCOL",
    "MODES",
    "Mode",
    "normalize_id",
    "PsiParty",
    "PsiResult",
    "serve",
    "join",
    "ServeReport",
    "DEFAULT_TIMEOUT",
    "DEFAULT_SESSION_TIMEOUT",
    "DEFAULT_MAX_SESSIONS",
    "PER_FRAME",
    "SumRefusedError",
    "write_request",
    "write_response",
    "finish_files",
    "reveal_files",
    "read_state",
]
