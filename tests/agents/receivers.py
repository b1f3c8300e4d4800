"""Real HTTP receivers for wake deliveries: a `ThreadingHTTPServer` on 127.0.0.1 (port 0) in a
background thread, recording every request it gets. Used as fixtures by the delivery tests.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Answers the scripted statuses in turn (then 200) and records each request first, so a
    delivery that got its answer is always already recorded."""

    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self.requests: list[Received] = []
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/wake"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._lock:
                    receiver.requests.append(Received("POST", self.path, headers, body))
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                answer = json.dumps({"received": status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test asserts on `requests`, not on the server's log."""

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def running_receiver(statuses: Iterable[int] = ()) -> Iterator[Receiver]:
    """A receiver serving for the duration of the block, shut down afterwards."""
    receiver = Receiver(statuses)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just free), so connecting is
    refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/wake"


class HangingReceiver(Receiver):
    """Records the first request, then holds it open without an answer until `release()`, so the
    sender is provably mid-delivery while `in_flight` is set; later requests are answered as by
    `Receiver`. Stopping it releases a request still held."""

    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self.in_flight = threading.Event()
        self._released = threading.Event()
        self._held = False
        super().__init__(statuses)

    def release(self) -> None:
        self._released.set()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self
        answering = super()._handler_class()

        class Handler(answering):
            def do_POST(self) -> None:
                with receiver._lock:
                    first, receiver._held = not receiver._held, True
                if not first:
                    super().do_POST()
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._lock:
                    receiver.requests.append(Received("POST", self.path, headers, body))
                receiver.in_flight.set()
                receiver._released.wait()
                self.close_connection = True  # never answered: the sender gets nothing back

        return Handler

    def stop(self) -> None:
        self.release()
        super().stop()


@contextmanager
def hanging_receiver() -> Iterator[HangingReceiver]:
    """A `HangingReceiver` serving for the duration of the block, shut down afterwards."""
    receiver = HangingReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
