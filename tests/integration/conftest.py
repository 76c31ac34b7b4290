"""Fixtures for tests that talk to the app over HTTP, as a mobile app or the CLI does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from local.runtime import free_port


@pytest.fixture(scope="module")
def app_url(runtime: Any) -> Iterator[str]:
    """The runtime's app served on a port of its own for the module's tests."""
    from local.server import make_server

    port = free_port()
    server = make_server(runtime.app, "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
