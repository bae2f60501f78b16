"""bot.sdnotify against real datagram sockets, the way systemd listens."""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from bot import sdnotify
from bot.sdnotify import notify, watchdog_interval


@pytest.fixture
def short_dir(tmp_path):
    """A unix socket path must fit in 108 bytes; pytest's tmp_path may not."""
    if len(str(tmp_path)) < 90:
        return tmp_path
    return Path(tempfile.mkdtemp(prefix="sdn"))


@pytest.fixture
def listener(short_dir):
    path = short_dir / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


@pytest.fixture
def abstract_listener():
    name = f"herald-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    yield "@" + name, sock
    sock.close()


def test_states_go_as_one_datagram_to_a_file_socket(listener):
    path, sock = listener
    assert notify("READY=1", "STATUS=polling 3 feeds", env={"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=polling 3 feeds"


def test_an_at_sign_names_the_abstract_namespace(abstract_listener):
    address, sock = abstract_listener
    assert notify("WATCHDOG=1", env={"NOTIFY_SOCKET": address})
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_each_call_is_its_own_datagram(listener):
    path, sock = listener
    for state in ("RELOADING=1", "READY=1", "STOPPING=1"):
        assert notify(state, env={"NOTIFY_SOCKET": path})
    assert [sock.recv(4096) for _ in range(3)] == [b"RELOADING=1", b"READY=1", b"STOPPING=1"]


def test_outside_systemd_nothing_is_sent():
    assert notify("READY=1", env={}) is False
    assert notify("READY=1", env={"NOTIFY_SOCKET": ""}) is False


def test_no_states_sends_nothing(listener):
    path, sock = listener
    assert notify(env={"NOTIFY_SOCKET": path}) is False
    sock.settimeout(0.05)
    with pytest.raises(TimeoutError):
        sock.recv(4096)


def test_a_dead_socket_is_false_and_logged_once_at_debug(short_dir, caplog):
    path = short_dir / "gone.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.close()  # the file stays, nobody listens: ECONNREFUSED
    caplog.set_level(logging.DEBUG, logger="bot.sdnotify")
    env = {"NOTIFY_SOCKET": str(path)}
    assert [notify("WATCHDOG=1", env=env) for _ in range(3)] == [False] * 3
    lines = [r for r in caplog.records if r.name == "bot.sdnotify"]
    assert len(lines) == 1 and lines[0].levelno == logging.DEBUG
    assert str(path) in lines[0].getMessage()


@pytest.mark.parametrize("address", ["/nonexistent/herald/notify", "vsock:2:1234", "@", "relative.sock",
                                     "/tmp/with\0nul"])
def test_unreachable_or_foreign_addresses_are_false(address):
    assert notify("READY=1", env={"NOTIFY_SOCKET": address}) is False


@settings(max_examples=200, deadline=None)
@given(st.text(), st.lists(st.text(), min_size=1, max_size=3))
def test_any_address_and_state_never_raise(address, states):
    # Only addresses that cannot name a real socket on this machine: the rejected
    # kinds, and paths under a folder that does not exist.
    if address.startswith("@"):
        address = "@herald-test-none-" + address
    elif address.startswith("/"):
        address = "/nonexistent-herald" + address
    assert notify(*states, env={"NOTIFY_SOCKET": address}) in (True, False)


def test_states_with_surrogates_are_false_not_an_error(listener):
    path, _ = listener
    assert notify("STATUS=\ud800", env={"NOTIFY_SOCKET": path}) is False


def test_the_watchdog_interval_is_read_in_seconds():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "1500000", "WATCHDOG_PID": str(os.getpid())}) == 1.5


@pytest.mark.parametrize("env", [{}, {"WATCHDOG_USEC": "0"}, {"WATCHDOG_USEC": "-5"},
                                 {"WATCHDOG_USEC": "soon"}, {"WATCHDOG_USEC": ""},
                                 {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}])
def test_no_watchdog_without_a_usable_interval_for_this_process(env):
    if env.get("WATCHDOG_PID") == str(os.getpid()):
        pytest.skip("the test runs as pid 1")
    assert watchdog_interval(env) is None


def test_the_once_only_memory_is_per_address(short_dir, caplog):
    caplog.set_level(logging.DEBUG, logger="bot.sdnotify")
    sdnotify._reported.clear()
    for name in ("a.sock", "b.sock", "a.sock"):
        notify("READY=1", env={"NOTIFY_SOCKET": str(short_dir / "none" / name)})
    assert len([r for r in caplog.records if r.name == "bot.sdnotify"]) == 2


def test_a_reader_that_stopped_reading_never_blocks_the_sender(tmp_path):
    import socket as socket_

    from bot.sdnotify import notify as send
    path = tmp_path / "full.sock"
    with socket_.socket(socket_.AF_UNIX, socket_.SOCK_DGRAM) as reader:
        reader.bind(str(path))
        sent = [send("WATCHDOG=1", env={"NOTIFY_SOCKET": str(path)}) for _ in range(200)]
    assert sent[0] and not sent[-1], "the queue fills; later sends give up instead of blocking"
