"""Calling a hospital's webhook: one signed POST, answered or not, never to an inside address.

The host is resolved here, every address it has is judged (`domain.webhooks.refused_address`),
and the connection goes to the address that was judged, not to the name: a second DNS answer
(rebinding) cannot send the request elsewhere. TLS still verifies the certificate against the
real host name, sent as SNI. No redirect is followed, no proxy from the environment is used, and
the receiver's body is read only up to a few kilobytes and never kept.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

from chalicelib.domain.webhooks import AttemptResult, refused_address

USER_AGENT = "CareLoop-Webhooks/1.0"
# Short: a receiver that cannot answer in this long is retried later by the state machine, and
# the whole attempt stays far inside the function's timeout (55 s).
TIMEOUT_SECONDS = 10.0
READ_AT_MOST = 4096


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the name has now, in the resolver's order. Tests replace this (a name that
    resolves inside at delivery time: DNS rebinding)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address`, with SNI and certificate checks for `host` (the URL's name)."""

    def __init__(
        self, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to `address`: the local stage's loopback receiver only (the URL rules refuse
    http:// anywhere else)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def _port(scheme: str, port: int | None) -> int:
    return port or (443 if scheme == "https" else 80)


class WebhookCaller:
    def __init__(self, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self._timeout = timeout_seconds
        self._tls = ssl.create_default_context()  # verifies the chain and the host name

    def refused(self, url: str, *, allow_loopback: bool) -> str | None:
        """Why the URL's host may not be called, as it resolves now; None when it may, or when
        it does not resolve (yet): every delivery resolves and judges it again."""
        parts = urlsplit(url)
        try:
            addresses = resolve_host(parts.hostname or "", _port(parts.scheme, parts.port))
        except (OSError, UnicodeError):
            return None
        return _first_refusal(addresses, allow_loopback)

    def post(
        self, url: str, body: bytes, headers: dict[str, str], *, allow_loopback: bool
    ) -> AttemptResult:
        parts = urlsplit(url)
        host, port = parts.hostname or "", _port(parts.scheme, parts.port)
        try:
            addresses = resolve_host(host, port)
        except (OSError, UnicodeError):
            return {"failure": "the host name did not resolve"}
        why = _first_refusal(addresses, allow_loopback)
        if why is not None:
            return {"refused": why}  # nothing is sent, not even a connection attempt
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {**headers, "User-Agent": USER_AGENT}
        # One judged address after another, until one takes the connection.
        for address in addresses:
            connection: http.client.HTTPConnection = (
                _PinnedHTTPSConnection(host, port, address, self._timeout, self._tls)
                if parts.scheme == "https"
                else _PinnedHTTPConnection(host, port, address, self._timeout)
            )
            result = _call(connection, target, body, sent)
            if result is not None:
                return result
        return {"failure": "the connection was refused"}


def _call(
    connection: http.client.HTTPConnection, target: str, body: bytes, headers: dict[str, str]
) -> AttemptResult | None:
    """One POST on one connection; None when the address refused the connection (nothing was
    sent: the next address may take it)."""
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(READ_AT_MOST)  # a little, then dropped: the answer's body is not ours
        return {"status_code": response.status}
    except TimeoutError:
        return {"failure": "timed out"}  # it may have arrived: the receiver drops a copy
    except ssl.SSLError:
        return {"failure": "TLS failed (certificate or handshake)"}
    except ConnectionRefusedError:
        return None
    except (OSError, http.client.HTTPException):
        return {"failure": "the connection failed"}
    finally:
        connection.close()


def _first_refusal(addresses: list[str], allow_loopback: bool) -> str | None:
    """One inside address refuses the name: the next connection might go there."""
    for address in addresses:
        why = refused_address(address, allow_loopback=allow_loopback)
        if why is not None:
            return why
    return None
