"""Test helpers for the feed and HTTP tests: a raw threaded server on 127.0.0.1
for answers pytest-httpserver cannot shape (trickling bodies), and fake resolvers."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager


@contextmanager
def trickle_server(head: bytes, body: bytes, delay: float, hold: bool = False):
    """Serve ``head`` at once, then ``body`` one byte every ``delay`` seconds,
    then hang up (or, with ``hold``, stay silent until the block ends).
    Yields the base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                _drip(conn, head, body, delay, stop)
                if hold:
                    stop.wait()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _drip(conn: socket.socket, head: bytes, body: bytes, delay: float, stop) -> None:
    try:
        conn.recv(65536)
        conn.sendall(head)
        for i in range(len(body)):
            if stop.wait(delay):
                return
            conn.sendall(body[i:i + 1])
    except OSError:
        return  # the client gave up, as it should


def fake_resolver(table: dict[str, str]):
    """A ``resolve`` callable answering from ``table`` (name -> IP) without DNS."""
    def resolve(host, port, *args, **kwargs):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = socket.AF_INET6 if ":" in table[host] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (table[host], port))]
    return resolve


class Stopwatch:
    """Elapsed wall time of a ``with`` block, in seconds."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.start
