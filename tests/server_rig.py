"""A real uvicorn server on a free loopback port, over a given Engine (tests of `edgellm serve`)."""

from __future__ import annotations

import socket
import threading
import time

from edgellm_sdk.server.app import create_app
from edgellm_sdk.server.cli import make_server

MODEL = "smollm2-135m"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Running:
    """create_app + uvicorn on a thread; ``url`` once it accepts connections."""

    def __init__(self, engine, host="127.0.0.1", **options):
        self.app = create_app(engine, model_name=MODEL, **options)
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.server = make_server(self.app, host, self.port, "warning")
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    def close(self):
        self.app.state.server.queue.stop()
        self.server.should_exit = True
        self.thread.join(10)
