"""deploy/: the systemd unit, the container file and the example env file say what the
README says, run commands Herald has, and the service speaks systemd's protocol."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bot.cli import parser

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "herald.service"
CONTAINERFILE = DEPLOY / "Containerfile"
ANALYZE = shutil.which("systemd-analyze")


def unit_keys(text: str) -> dict[str, dict[str, list[str]]]:
    """Section → key → every value in order (systemd lets a key repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit():
    return unit_keys(UNIT.read_text())


def one(unit, section, key) -> str:
    values = unit[section].get(key)
    assert values and len(values) == 1, f"[{section}] {key}= should be set once: {values}"
    return values[0]


def test_the_unit_runs_herald_as_its_own_user_after_the_network(unit):
    assert one(unit, "Service", "User") == "herald" and one(unit, "Service", "Group") == "herald"
    assert one(unit, "Unit", "Wants") == "network-online.target"
    assert one(unit, "Unit", "After") == "network-online.target"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_the_unit_speaks_sd_notify_with_a_watchdog(unit):
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    seconds = int(one(unit, "Service", "WatchdogSec").removesuffix("s"))
    assert 30 <= seconds <= 600   # room for a heartbeat every 15 s, found stuck within minutes
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(unit, "Service", "Restart") == "on-failure"


def test_the_unit_starts_the_run_command_with_the_etc_config(unit):
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0] == "/opt/herald/.venv/bin/python" and argv[1] == "run_bot.py"
    args = parser().parse_args(argv[2:])
    assert (args.command, args.config) == ("run", "/etc/herald/herald.yaml")
    assert one(unit, "Service", "WorkingDirectory") == "/opt/herald"
    assert one(unit, "Service", "EnvironmentFile") == "/etc/herald/herald.env"
    # cli exits 2 on a config error: restarting every 10 s would only repeat it
    assert one(unit, "Service", "RestartPreventExitStatus") == "2"


def test_only_the_data_folder_is_writable(unit):
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert one(unit, "Service", "StateDirectory") == "herald"
    assert unit["Service"]["ReadWritePaths"] == ["/var/lib/herald"]


@pytest.mark.parametrize("key, value", [
    ("NoNewPrivileges", "yes"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"), ("ProtectKernelTunables", "yes"), ("ProtectKernelModules", "yes"),
    ("ProtectControlGroups", "yes"), ("LockPersonality", "yes"), ("MemoryDenyWriteExecute", "yes"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"), ("CapabilityBoundingSet", ""),
])
def test_the_unit_is_hardened(unit, key, value):
    assert one(unit, "Service", key) == value


def test_system_calls_are_those_of_a_system_service(unit):
    assert unit["Service"]["SystemCallFilter"][0] == "@system-service"


@pytest.fixture
def checkable_unit(tmp_path):
    """The unit with ExecStart's interpreter swapped for this test's Python.

    `systemd-analyze verify` fails a unit whose ExecStart binary is missing, and
    /opt/herald/.venv does not exist on a test machine; `--root=` does not help, as
    verify then wants a whole systemd tree (sysinit.target...) under that root.
    Everything else in the unit is checked as written."""
    text = UNIT.read_text().replace("/opt/herald/.venv/bin/python", sys.executable)
    assert sys.executable in text
    path = tmp_path / "herald.service"
    path.write_text(text)
    return path


@pytest.mark.skipif(not ANALYZE, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing(checkable_unit):
    # verify exits 0 on an unknown key or a bad value ("..., ignoring"): silence is the pass.
    done = subprocess.run([ANALYZE, "verify", "--man=no", str(checkable_unit)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and (done.stdout + done.stderr).strip() == "", done.stdout + done.stderr


@pytest.mark.skipif(not ANALYZE, reason="systemd-analyze is not installed")
def test_systemd_analyze_catches_a_broken_unit(tmp_path, checkable_unit):
    """The check above can fail: a misspelt key and a bad duration are reported."""
    broken = tmp_path / "broken.service"
    broken.write_text(checkable_unit.read_text().replace("ProtectHome=yes", "ProtectHom=yes")
                      .replace("WatchdogSec=60s", "WatchdogSec=sixty"))
    done = subprocess.run([ANALYZE, "verify", "--man=no", str(broken)], capture_output=True,
                          text=True, timeout=60)
    assert "ProtectHom" in done.stderr and "sixty" in done.stderr


def exposure(path: Path) -> float | None:
    done = subprocess.run([ANALYZE, "security", "--offline=true", "--no-pager", str(path)],
                          capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    return float(found[1]) if found else None


@pytest.mark.skipif(not ANALYZE, reason="systemd-analyze is not installed")
def test_the_exposure_score_is_low(checkable_unit):
    score = exposure(checkable_unit)
    if score is None:
        pytest.skip("this systemd-analyze has no `security --offline` (systemd < 250)")
    assert score <= 2.0   # 1.4 when written; an unhardened service scores 9.6 ("UNSAFE")


# --- the container file ---------------------------------------------------------------

def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    found, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        word, _, rest = (pending + line).partition(" ")
        found.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "a continuation line ends the file"
    return found


@pytest.fixture(scope="module")
def container():
    return instructions(CONTAINERFILE.read_text())


def only(container, word) -> str:
    values = [rest for w, rest in container if w == word]
    assert len(values) == 1, f"{word} should appear once: {values}"
    return values[0]


def test_every_instruction_is_a_known_one(container):
    known = {"FROM", "ENV", "RUN", "WORKDIR", "COPY", "USER", "VOLUME", "HEALTHCHECK",
             "ENTRYPOINT", "CMD", "ARG", "LABEL", "EXPOSE", "STOPSIGNAL"}
    assert {word for word, _ in container} <= known
    assert container[0][0] == "FROM"


def test_the_base_is_a_slim_python_311_by_tag(container):
    base = only(container, "FROM")
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base), base


def test_herald_runs_as_a_non_root_user(container):
    user = only(container, "USER")
    assert user not in ("root", "0") and not user.startswith("0:")
    words = [w for w, _ in container]
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")


def test_the_data_folder_is_a_volume(container):
    assert only(container, "VOLUME") == "/data"


def test_requirements_are_installed_as_the_readme_says(container):
    assert "pip install -r requirements.txt" in [rest for w, rest in container if w == "RUN"]


def exec_form(text: str) -> list[str]:
    argv = json.loads(text)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return argv


def test_the_healthcheck_calls_herald_health(container):
    argv = exec_form(only(container, "HEALTHCHECK").split("CMD", 1)[1])
    assert argv == ["python", "run_bot.py", "--config", "/config/herald.yaml", "health"]
    assert parser().parse_args(argv[2:]).command == "health"


def test_the_container_runs_the_service(container):
    argv = exec_form(only(container, "ENTRYPOINT")) + exec_form(only(container, "CMD"))
    assert argv[:2] == ["python", "run_bot.py"]
    args = parser().parse_args(argv[2:])
    assert (args.command, args.config) == ("run", "/config/herald.yaml")


def copied(container) -> list[str]:
    return [src for w, rest in container if w == "COPY" for src in rest.split()[:-1]]


def test_what_the_image_copies_exists_and_passes_the_ignore_file(container):
    ignore = (DEPLOY / "Containerfile.dockerignore").read_text().splitlines()
    for source in copied(container):
        assert (ROOT / source).exists(), source
        assert "!" + source.rstrip("/") in ignore, f"{source} is left out of the build context"


def demo_config(folder: Path) -> Path:
    """The bundled demo (a local feed, a console account) with its database in ``folder``."""
    shutil.copytree(ROOT / "config" / "demo", folder / "demo")
    config = folder / "herald.yaml"
    config.write_text((ROOT / "config" / "demo.yaml").read_text()
                      .replace("sqlite:///../data/demo.db", "sqlite:///herald.db"))
    return config


def test_the_copied_files_are_enough_to_run_herald(container, tmp_path):
    """What the image holds (its COPY lines) runs the demo with nothing else beside it."""
    app = tmp_path / "app"
    app.mkdir()
    for source in copied(container):
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, app / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, app / source)
    config = demo_config(tmp_path / "config")
    done = subprocess.run([sys.executable, "run_bot.py", "--config", str(config), "once"],
                          cwd=app, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr
    assert "post sent" in done.stderr


# --- the example env file ---------------------------------------------------------------

def test_the_env_example_names_every_secret_of_the_example_config():
    # the ${VAR}s the example really uses, not those its comments mention
    lines = (ROOT / "config" / "example.yaml").read_text().splitlines()
    wanted = {var for line in lines for var in re.findall(r"\$\{(\w+)\}", line.partition("#")[0])}
    example = (DEPLOY / "herald.env.example").read_text()
    given = set(re.findall(r"^#?\s*(\w+)=", example, re.MULTILINE))
    assert wanted and wanted <= given, sorted(wanted - given)


# --- the README gives the same commands ---------------------------------------------------

@pytest.fixture
def readme():
    text = (ROOT / "README.md").read_text()
    if "Run as a service" not in text:
        pytest.skip("README has no 'Run as a service' section yet (deploy's text is being merged)")
    return text


@pytest.mark.parametrize("command", [
    "systemctl enable --now herald", "systemctl reload herald", "journalctl -u herald",
    "/opt/herald/.venv/bin/python run_bot.py --config /etc/herald/herald.yaml",
    "deploy/herald.service", "/etc/herald/herald.env", "/var/lib/herald",
    "docker build -f deploy/Containerfile", ":/config", ":/data",
    "run_bot.py --config /config/herald.yaml", "migrate", "backup", "pg_dump",
])
def test_the_readme_gives_the_deploy_commands(readme, command):
    assert command in readme


# --- the service speaks sd_notify as systemd expects ---------------------------------------

@pytest.fixture
def notify_socket():
    folder = Path(tempfile.mkdtemp(prefix="hrld"))   # a socket path must fit in 108 bytes
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(folder / "notify"))
    yield str(folder / "notify"), sock
    sock.close()
    shutil.rmtree(folder, ignore_errors=True)


def wait_for(sock: socket.socket, state: str, timeout: float = 20) -> list[str]:
    """Datagrams until one holds ``state``; fails after ``timeout`` seconds."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if state in seen[-1].split("\n"):
            return seen
    pytest.fail(f"no {state} within {timeout}s; got {seen}")


def test_the_service_says_ready_watchdog_reloading_and_stopping(tmp_path, notify_socket):
    path, sock = notify_socket
    config = demo_config(tmp_path)
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "3000000"}
    service = subprocess.Popen([sys.executable, "run_bot.py", "--config", str(config), "run"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(sock, "READY=1")
        wait_for(sock, "WATCHDOG=1", timeout=5)   # a beat every WATCHDOG_USEC/3 = 1 s
        health = subprocess.run([sys.executable, "run_bot.py", "--config", str(config), "health"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert health.returncode == 0, health.stdout + health.stderr
        service.send_signal(signal.SIGHUP)        # what ExecReload does
        wait_for(sock, "RELOADING=1")
        wait_for(sock, "READY=1")
        service.send_signal(signal.SIGTERM)       # what systemctl stop does
        wait_for(sock, "STOPPING=1")
        assert service.wait(timeout=60) == 0
    finally:
        if service.poll() is None:
            service.kill()
        service.wait()
        service.stderr.close()
