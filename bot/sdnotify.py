"""systemd's readiness protocol (sd_notify): one datagram of ``KEY=value`` lines sent to
the socket named by ``$NOTIFY_SOCKET``. Outside systemd, or with the socket gone, every
call is a harmless False: the service never fails because its supervisor went away."""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)
# Addresses already reported as unreachable: a watchdog ping every few seconds
# must not repeat the same DEBUG line for the life of the process.
_reported: set[str] = set()


def notify(*states: str, env: Mapping[str, str] = os.environ) -> bool:
    """Send ``states`` (``"READY=1"``, ``"WATCHDOG=1"``, ``"STATUS=..."``) as one datagram.

    Returns True when the datagram was sent, False when not running under systemd
    (no ``$NOTIFY_SOCKET``), the address is of a kind we do not speak (``vsock:``),
    or the socket cannot be reached. Never raises for those. A newline inside a state
    starts a new one (the protocol's separator): keep ``STATUS=`` text to one line."""
    address = env.get("NOTIFY_SOCKET", "")
    if not states or not address:
        return False
    try:
        target = _target(address)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # Never block: a full queue (a reader that stopped reading, the
            # kernel's 10 datagrams) must not hang a heartbeat or a SIGTERM.
            sock.sendto("\n".join(states).encode(), socket.MSG_DONTWAIT, target)
    except (OSError, ValueError) as exc:  # ValueError: a NUL or an unencodable name
        _report_once(address, str(exc))
        return False
    return True


def watchdog_interval(env: Mapping[str, str] = os.environ) -> float | None:
    """The watchdog timeout systemd enforces on this process, in seconds, or None when
    there is none (no ``WatchdogSec=``, or ``$WATCHDOG_PID`` names another process).
    Send ``WATCHDOG=1`` at least every half of it."""
    pid = env.get("WATCHDOG_PID")
    if pid is not None and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


def _target(address: str) -> bytes:
    """The socket address for ``sendto``: ``@name`` is Linux's abstract namespace (a
    leading NUL byte), an absolute path a file socket; raises OSError for the rest."""
    if address.startswith("@") and len(address) > 1:
        return b"\0" + os.fsencode(address[1:])
    if address.startswith("/"):
        return os.fsencode(address)
    raise OSError(f"not a unix socket address: {address!r}")


def _report_once(address: str, reason: str) -> None:
    if address not in _reported:
        _reported.add(address)
        log.debug("sd_notify: cannot reach %s (%s); systemd will not hear from Herald", address, reason)
