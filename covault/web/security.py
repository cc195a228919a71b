"""HTTP hardening of the console: response headers, same-origin checks, local paths."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders", "same_origin", "is_local_path", "HEADERS"]

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = (("content-security-policy", CSP), ("x-content-type-options", "nosniff"),
           ("x-frame-options", "DENY"), ("referrer-policy", "same-origin"),
           ("cache-control", "no-store"), ("cross-origin-opener-policy", "same-origin"))


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` (and HSTS over HTTPS) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in HEADERS:
                    headers[k] = v
                if scope.get("scheme") == "https":
                    headers["strict-transport-security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def same_origin(request: Request) -> bool:
    """Whether a request comes from a page of this server: ``Sec-Fetch-Site`` (when
    sent) is ``same-origin`` or ``none``, and ``Origin`` (when sent) is this server's."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


def is_local_path(path: str) -> bool:
    """Whether ``path`` is a path on this server (no open redirect)."""
    return path.startswith("/") and not path.startswith("//") and "\\" not in path
