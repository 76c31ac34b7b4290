"""The local HTTP front door: Chalice's threaded dev server, as `make run` and the tests use it."""

from __future__ import annotations

import json
from typing import Any

from local.runtime import ROOT

# http.server listens with a backlog of 5; a burst of app requests (or a load test) needs more.
LISTEN_BACKLOG = 128


def make_server(app: Any, host: str, port: int) -> Any:
    from chalice import local as chalice_local
    from chalice.config import Config

    chalice_local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
    if isinstance(app, chalice_local.CustomLocalChalice):
        # Served once already in this process: Chalice re-bases the app's class on every
        # serve, and a second re-basing onto itself is an inheritance cycle.
        app.__class__ = chalice_local.CustomLocalChalice.__bases__[1]
    config = Config(
        chalice_stage="local",
        user_provided_params={},
        config_from_disk=json.loads((ROOT / ".chalice" / "config.json").read_text()),
    )
    return chalice_local.create_local_server(app, config, host, port)
