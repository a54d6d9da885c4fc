"""Where the PostgreSQL comes from: a throwaway embedded cluster or an existing server.

The embedded cluster lives in a private run dir (on tmpfs when there is one), listens
only on a unix socket in that dir (no TCP port, so parallel runs never collide), is
tuned for tests (no fsync), starts from a cached pristine data dir instead of
re-running initdb, and is removed at exit. A pid file in the run dir lets the next
run reap clusters whose owner died without cleaning up (SIGKILL).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import hashlib
import importlib.util
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final, Protocol, Self, TypedDict

import attrs
import psycopg
from psycopg import sql

from modelcheck._config import Config
from modelcheck.errors import ConfigError, ServerError

#: Settings for a throwaway test cluster: durability off, small, socket only.
TEST_SETTINGS: Final[Mapping[str, str]] = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "shared_buffers": "32MB",
    "max_connections": "200",
    "max_locks_per_transaction": "128",
    "autovacuum": "off",
    "jit": "off",
    "checkpoint_timeout": "1d",
    "max_wal_size": "4GB",
    "deadlock_timeout": "1s",
}
_SUPERUSER: Final = "postgres"
_PORT: Final = 5432
_START_TIMEOUT_S: Final = 30.0
_STOP_TIMEOUT_S: Final = 10.0
_OWNER_FILE: Final = "owner.json"
_INITDB_ARGS: Final = (
    "--auth=trust",
    f"--username={_SUPERUSER}",
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
    # 1 MB WAL segments instead of 16 MB: a smaller data dir copies faster.
    "--wal-segsize=1",
)
_NO_POSTGRES_FIX: Final = (
    "To fix this, either: install PostgreSQL (e.g. `apt-get install postgresql`) or "
    "`pip install pgserver`, or point modelcheck at binaries with --modelcheck-pg-bin / "
    "MODELCHECK_PG_BIN, or use an existing server with --modelcheck-dsn / "
    "MODELCHECK_DATABASE_URL."
)


class Server(Protocol):
    """What the rest of modelcheck needs from a server, embedded or existing."""

    @property
    def dsn(self) -> str:
        """A superuser (or CREATEDB) connection string to a maintenance database."""
        ...

    def dsn_for(self, dbname: str) -> str:
        """The connection string for another database on the same server."""
        ...

    def describe(self) -> str:
        """One line for reports: which server this is."""
        ...

    def close(self) -> None:
        """Release the server (stop it, if it is ours)."""
        ...


# --------------------------------------------------------------------------- discovery


@attrs.frozen
class PgInstall:
    """A PostgreSQL installation: its bin dir, version and how it was found."""

    bin_dir: Path
    version: str
    source: str

    @property
    def major(self) -> int:
        """The major version, e.g. 15."""
        return int(self.version.split(".")[0])


@functools.cache
def _version_of(bin_dir: Path) -> str:
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    match = re.search(r"(\d+(?:\.\d+)?)", out)
    if match is None:  # pragma: no cover - every postgres prints a version
        raise ServerError(f"Cannot read the version from {out!r}. {_NO_POSTGRES_FIX}")
    return match.group(1)


def _is_bin_dir(path: Path) -> bool:
    return (path / "postgres").is_file() and (path / "initdb").is_file()


def _from_path() -> Path | None:
    found = shutil.which("postgres")
    if found is not None:
        bin_dir = Path(found).resolve().parent
        if _is_bin_dir(bin_dir):
            return bin_dir
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
            if out and _is_bin_dir(Path(out)):
                return Path(out)
    return None


def _from_debian_layout(root: Path = Path("/usr/lib/postgresql")) -> Path | None:
    candidates = [p / "bin" for p in root.glob("*") if p.name.isdigit() and _is_bin_dir(p / "bin")]
    return max(candidates, key=lambda p: int(p.parent.name), default=None)


def _from_pgserver() -> Path | None:
    # find_spec does not import pgserver (whose import has side effects).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    return bin_dir if _is_bin_dir(bin_dir) else None


def find_postgres(explicit: Path | None = None) -> PgInstall:
    """Find PostgreSQL binaries: explicit dir, PATH, /usr/lib/postgresql, pgserver.

    Raises :class:`ConfigError` for an explicit dir without ``postgres`` and
    :class:`ServerError` when nothing is installed.
    """
    if explicit is not None:
        if not _is_bin_dir(explicit):
            raise ConfigError(
                f"No 'postgres' and 'initdb' executables in {str(explicit)!r}. "
                "To fix this, either: point --modelcheck-pg-bin / MODELCHECK_PG_BIN at a "
                "PostgreSQL bin dir (e.g. the output of `pg_config --bindir`), or unset it."
            )
        return PgInstall(explicit, _version_of(explicit), "--modelcheck-pg-bin")
    finders: list[tuple[str, Callable[[], Path | None]]] = [
        ("PATH", _from_path),
        ("/usr/lib/postgresql", _from_debian_layout),
        ("pgserver", _from_pgserver),
    ]
    for source, finder in finders:
        bin_dir = finder()
        if bin_dir is not None:
            return PgInstall(bin_dir, _version_of(bin_dir), source)
    raise ServerError(f"No PostgreSQL binaries found. {_NO_POSTGRES_FIX}")


# ------------------------------------------------------------------------- run-as user


@attrs.frozen
class _RunAs:
    """The unprivileged account postgres runs under when we are root."""

    name: str
    uid: int
    gid: int


def _run_as() -> _RunAs | None:
    """None when we are not root; else the ``postgres`` or ``nobody`` account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return _RunAs(name, entry.pw_uid, entry.pw_gid)
    raise ServerError(
        "Running as root, and neither a 'postgres' nor a 'nobody' account exists; "
        "PostgreSQL refuses to run as root. To fix this, either: create one "
        "(`useradd --system postgres`), run as an ordinary user, or set "
        "MODELCHECK_DATABASE_URL."
    )


class _UserKwargs(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _user_kwargs(run_as: _RunAs | None) -> _UserKwargs:
    """subprocess arguments that drop root for the child (no supplementary groups)."""
    if run_as is None:
        return {}
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}


def _chown_tree(path: Path, run_as: _RunAs | None) -> None:
    if run_as is None:
        return
    os.chown(path, run_as.uid, run_as.gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), run_as.uid, run_as.gid, follow_symlinks=False)


_USABLE: dict[tuple[PgInstall, _RunAs | None], PgInstall] = {}


def _usable_install(install: PgInstall, run_as: _RunAs | None, base: Path) -> PgInstall:
    """Memoized :func:`_make_usable`: the check costs a process spawn per start."""
    key = (install, run_as)
    if key not in _USABLE:
        _USABLE[key] = _make_usable(install, run_as, base)
    return _USABLE[key]


def _make_usable(install: PgInstall, run_as: _RunAs | None, base: Path) -> PgInstall:
    """As root, make sure the run-as user can execute the binaries.

    pip-installed binaries can sit under ``/root`` (mode 0700), unreachable for the
    ``postgres`` account; then copy the install tree to a world-readable place once.
    """
    if run_as is None:
        return install
    try:
        subprocess.run(
            [str(install.bin_dir / "postgres"), "--version"],
            capture_output=True,
            check=True,
            timeout=30,
            **_user_kwargs(run_as),
        )
        return install
    except (OSError, subprocess.CalledProcessError):
        pass
    # Copy the install tree, plus a wheel's vendored `<pkg>.libs` dir that the
    # binaries find through an RPATH relative to themselves ($ORIGIN/../../../x.libs).
    install_root = install.bin_dir.parent
    trees = [install_root]
    layout_root = install_root
    if len(install.bin_dir.parents) > 2:
        site_dir = install.bin_dir.parents[2]
        vendored = site_dir / f"{install.bin_dir.parents[1].name}.libs"
        if vendored.is_dir():
            layout_root = site_dir
            trees.append(vendored)
    key = hashlib.sha256(str(install_root.resolve()).encode()).hexdigest()[:12]
    target = base / f"pginstall-{key}"
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix="pginstall-", dir=base))
        for tree in trees:
            shutil.copytree(tree, staging / "tree" / tree.relative_to(layout_root), symlinks=True)
        _make_world_readable(staging / "tree")
        with contextlib.suppress(OSError):  # another run won the race; use theirs
            (staging / "tree").rename(target)
        shutil.rmtree(staging, ignore_errors=True)
    relative_bin = install.bin_dir.relative_to(layout_root)
    return attrs.evolve(install, bin_dir=target / relative_bin)


def _make_world_readable(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        os.chmod(root, 0o755)  # noqa: S103 - binaries must be readable by the run-as user
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                file.chmod(
                    file.stat().st_mode | 0o444 | (0o111 if file.stat().st_mode & 0o100 else 0)
                )
        del dirs  # walked by os.walk itself


# -------------------------------------------------------------------------- run dirs


def _base_dir() -> Path:
    """Per-user parent of run dirs: tmpfs when available (clones are ~5x faster)."""
    override = os.environ.get("MODELCHECK_RUN_DIR")
    shm = Path("/dev/shm")  # noqa: S108 - an owned, checked 0711 dir is made inside it
    if override:
        parent = Path(override)
    elif shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        parent = shm
    else:
        parent = Path(tempfile.gettempdir())
    base = parent / f"modelcheck-{os.geteuid()}"
    base.mkdir(mode=0o711, exist_ok=True)
    # In a shared dir like /dev/shm, refuse a dir (or symlink) planted by someone else.
    info = base.lstat()
    if base.is_symlink() or info.st_uid != os.geteuid():
        raise ServerError(
            f"{base} is not a directory owned by uid {os.geteuid()}. To fix this, either: "
            "remove it, or set MODELCHECK_RUN_DIR to a directory of your own."
        )
    # The run-as user must traverse it (root case); nobody else may list it.
    base.chmod(0o711)
    return base


def _proc_start_time(pid: int) -> str | None:
    """The kernel start time of a process, to tell a live owner from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    return True


def owner_record() -> dict[str, object]:
    """Who owns a resource: this host, pid and its kernel start time (see reapers)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start_time": _proc_start_time(pid)}


def owner_is_dead(owner: Mapping[str, object]) -> bool:
    """True only when ``owner`` is provably gone: same host, and its process is not."""
    host = owner.get("host")
    return (host is None or host == socket.gethostname()) and not _owner_alive(owner)


def _owner_alive(owner: Mapping[str, object]) -> bool:
    pid = owner.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return False
    started = owner.get("start_time")
    return started is None or _proc_start_time(pid) in (None, started)


def _postmaster_pid(data_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


def _kill_postmaster(pid: int) -> None:
    """Immediate shutdown (SIGQUIT), then SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while _pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        time.sleep(0.005)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def reap_stale_runs(base: Path | None = None) -> list[Path]:
    """Kill postmasters and delete run dirs whose owning process is gone.

    Returns the run dirs removed. Safe to call concurrently from several runs.
    """
    base = _base_dir() if base is None else base
    removed: list[Path] = []
    for run_dir in base.glob("run-*"):
        try:
            owner = json.loads((run_dir / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            # Between mkdtemp and writing the owner file; only reap if clearly old.
            with contextlib.suppress(OSError):
                if time.time() - run_dir.stat().st_mtime > 60:
                    shutil.rmtree(run_dir, ignore_errors=True)
                    removed.append(run_dir)
            continue
        if _owner_alive(owner):
            continue
        pid = _postmaster_pid(run_dir / "data")
        if pid is not None and _pid_alive(pid):
            _kill_postmaster(pid)
        shutil.rmtree(run_dir, ignore_errors=True)
        removed.append(run_dir)
    return removed


# ------------------------------------------------------------------ embedded cluster


@attrs.frozen
class StartupTimings:
    """How long the cold start took and which way it went."""

    prepare_s: float
    start_s: float
    cached: bool

    @property
    def total_s(self) -> float:
        """Prepare (initdb or copy) plus start."""
        return self.prepare_s + self.start_s


def _set_parent_death_signal() -> None:
    """Ask Linux to SIGQUIT the postmaster (immediate shutdown) when we die."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGQUIT), 0, 0, 0)


class EmbeddedServer:
    """A throwaway PostgreSQL cluster owned by this process.

    >>> with EmbeddedServer() as server:  # doctest: +SKIP
    ...     psycopg.connect(server.dsn).close()
    """

    def __init__(
        self,
        install: PgInstall | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        use_cache: bool = True,
        base_dir: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self._install_arg = install
        self._settings = {**TEST_SETTINGS, **(settings or {})}
        self._use_cache = use_cache
        self._base_arg = base_dir
        self._cache_arg = cache_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._run_dir: Path | None = None
        self._install: PgInstall | None = None
        self._lock = threading.Lock()
        self._restore_sigterm: Callable[[], None] | None = None
        self.timings: StartupTimings | None = None

    # -- public surface

    @property
    def install(self) -> PgInstall:
        """The binaries this cluster runs (after :meth:`start`)."""
        if self._install is None:
            raise ServerError("The embedded server is not started; call start() first.")
        return self._install

    @property
    def run_dir(self) -> Path:
        """The private dir holding data, socket and log."""
        if self._run_dir is None:
            raise ServerError("The embedded server is not started; call start() first.")
        return self._run_dir

    @property
    def data_dir(self) -> Path:
        """The cluster's data dir."""
        return self.run_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """The dir holding the unix socket (the only way in)."""
        return self.run_dir / "sock"

    @property
    def pid(self) -> int:
        """The postmaster's pid."""
        if self._proc is None:
            raise ServerError("The embedded server is not started; call start() first.")
        return self._proc.pid

    @property
    def dsn(self) -> str:
        """Superuser connection string to the ``postgres`` database."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        """Connection string for ``dbname`` on this cluster."""
        return psycopg.conninfo.make_conninfo(
            host=str(self.socket_dir), port=_PORT, user=_SUPERUSER, dbname=dbname
        )

    def describe(self) -> str:
        """E.g. ``embedded PostgreSQL 15.18 from /usr/lib/postgresql/15/bin (PATH)``."""
        install = self._install or self._install_arg
        if install is None:
            return "embedded PostgreSQL (not started)"
        return f"embedded PostgreSQL {install.version} from {install.bin_dir} ({install.source})"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> Self:
        """Create and start the cluster; on failure leave nothing behind."""
        with self._lock:
            if self._proc is not None:
                return self
            base = self._base_arg or _base_dir()
            reap_stale_runs(base)
            run_as = _run_as()
            install = self._install_arg or find_postgres()
            self._install = _usable_install(install, run_as, _base_dir())
            self._run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=base))
            try:
                self._write_owner()
                self._start(run_as)
            except BaseException:
                self._teardown()
                raise
            self._install_signal_handlers()
            _LIVE_SERVERS.add(self)
            return self

    def close(self) -> None:
        """Stop the cluster (immediate shutdown) and delete its run dir. Idempotent."""
        with self._lock:
            self._teardown()

    stop = close

    def restart(self) -> None:
        """Fast shutdown (open transactions roll back, committed work stays), then start
        again on the same data dir and socket. With fsync off only a clean shutdown
        like this one is safe: a crash may lose committed work, and that is not claimed."""
        with self._lock:
            assert self._proc is not None, "start the server first"
            self._proc.send_signal(signal.SIGINT)  # "fast" shutdown mode
            try:
                self._proc.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._teardown()
                raise ServerError(
                    "PostgreSQL did not shut down within the timeout; the cluster was "
                    "removed. To fix this, either: check its log, or raise the timeout."
                ) from None
            self._proc = None
            self._launch(_run_as())
            self._wait_ready()

    # -- internals

    def _write_owner(self) -> None:
        (self.run_dir / _OWNER_FILE).write_text(json.dumps(owner_record()))

    def _start(self, run_as: _RunAs | None) -> None:
        self.socket_dir.mkdir()
        t0 = time.perf_counter()
        cached = self._prepare_data_dir(run_as)
        _chown_tree(self.socket_dir, run_as)
        if run_as is not None:
            os.chown(self.run_dir, run_as.uid, run_as.gid)
        t1 = time.perf_counter()
        self._launch(run_as)
        self._wait_ready()
        self.timings = StartupTimings(t1 - t0, time.perf_counter() - t1, cached)

    def _cache_path(self, run_as: _RunAs | None) -> Path:
        postgres = self.install.bin_dir / "postgres"
        key_parts = [
            str(postgres.resolve()),
            str(postgres.stat().st_mtime_ns),
            self.install.version,
            str(run_as.uid if run_as else os.geteuid()),
            *_INITDB_ARGS,
        ]
        key = hashlib.sha256("\0".join(key_parts).encode()).hexdigest()[:16]
        cache_root = self._cache_arg or _base_dir() / "cache"
        return cache_root / f"initdb-{key}"

    def _prepare_data_dir(self, run_as: _RunAs | None) -> bool:
        """Copy the cached pristine data dir, or initdb (and fill the cache)."""
        cache = self._cache_path(run_as)
        if self._use_cache and (cache / "PG_VERSION").is_file():
            # cp -a keeps ownership and modes (0700), which postgres insists on.
            subprocess.run(["cp", "-a", str(cache), str(self.data_dir)], check=True)
            return True
        self._initdb(run_as)
        if self._use_cache:
            cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix="tmp-", dir=cache.parent))
            subprocess.run(["cp", "-a", str(self.data_dir), str(staging / "data")], check=True)
            with contextlib.suppress(OSError):  # a concurrent run filled the cache first
                (staging / "data").rename(cache)
            shutil.rmtree(staging, ignore_errors=True)
        return False

    def _initdb(self, run_as: _RunAs | None) -> None:
        # initdb creates data_dir itself; it needs a writable parent as run_as.
        if run_as is not None:
            os.chown(self.run_dir, run_as.uid, run_as.gid)
        log = self.run_dir / "initdb.log"
        with log.open("wb") as out:
            result = subprocess.run(
                [str(self.install.bin_dir / "initdb"), "-D", str(self.data_dir), *_INITDB_ARGS],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
                timeout=120,
                **_user_kwargs(run_as),
            )
        if result.returncode != 0:
            raise ServerError(
                f"initdb failed (exit {result.returncode}); its log ends with:\n"
                f"{_tail(log)}\nTo fix this, either: check the PostgreSQL install at "
                f"{self.install.bin_dir}, or set MODELCHECK_DATABASE_URL."
            )

    def _launch(self, run_as: _RunAs | None) -> None:
        args = [str(self.install.bin_dir / "postgres"), "-D", str(self.data_dir)]
        settings = {**self._settings, "unix_socket_directories": str(self.socket_dir)}
        settings["port"] = str(_PORT)
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        # Parent-death signals follow the forking *thread*; only arm it from main.
        in_main = threading.current_thread() is threading.main_thread()
        log = (self.run_dir / "postgres.log").open("wb")
        with log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a terminal's Ctrl-C reaches us, and we stop it cleanly.
                start_new_session=True,
                preexec_fn=_set_parent_death_signal if in_main else None,  # noqa: PLW1509
                **_user_kwargs(run_as),
            )

    def _wait_ready(self) -> None:
        """Poll postmaster.pid for "ready" (cheaper and faster than pg_ctl -w)."""
        assert self._proc is not None
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerError(
                    f"PostgreSQL exited during startup (exit {self._proc.returncode}); "
                    f"its log ends with:\n{_tail(self.run_dir / 'postgres.log')}\n"
                    "To fix this, either: fix the setting or install named above, or set "
                    "MODELCHECK_DATABASE_URL to use an existing server."
                )
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    return
            time.sleep(0.002)
        raise ServerError(
            f"PostgreSQL did not become ready within {_START_TIMEOUT_S:.0f} s; its log "
            f"ends with:\n{_tail(self.run_dir / 'postgres.log')}"
        )

    def _teardown(self) -> None:
        if self._restore_sigterm is not None:
            self._restore_sigterm()
            self._restore_sigterm = None
        if self._proc is not None:
            if self._proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.send_signal(signal.SIGQUIT)
                try:
                    self._proc.wait(_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None
        _LIVE_SERVERS.discard(self)

    def _install_signal_handlers(self) -> None:
        """Turn SIGTERM into KeyboardInterrupt so pytest tears down (and we clean up)."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def _on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, _on_sigterm)

        def _restore() -> None:
            if threading.current_thread() is threading.main_thread():
                with contextlib.suppress(ValueError):
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)

        self._restore_sigterm = _restore


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_LIVE_SERVERS: set[EmbeddedServer] = set()


def _stop_live_servers() -> None:
    for server in list(_LIVE_SERVERS):
        server.close()


atexit.register(_stop_live_servers)


# ------------------------------------------------------------------- existing server


def _sqlstate(exc: psycopg.Error) -> str:
    return f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""


class ExternalServer:
    """An existing server given by DSN; modelcheck only creates and drops its own DBs."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.version: str | None = None

    @property
    def dsn(self) -> str:
        """The given connection string."""
        return self._dsn

    def dsn_for(self, dbname: str) -> str:
        """The given connection string with another database name."""
        return psycopg.conninfo.make_conninfo(self._dsn, dbname=dbname)

    def describe(self) -> str:
        """E.g. ``existing PostgreSQL 16.2 at host=/tmp/pg user=app (password hidden)``."""
        params = psycopg.conninfo.conninfo_to_dict(self._dsn)
        shown = " ".join(f"{k}={v}" for k, v in params.items() if k != "password")
        version = f" {self.version}" if self.version else ""
        return f"existing PostgreSQL{version} at {shown}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> Self:
        """Check that we can connect and create databases; raise with the fix if not."""
        conn = connect_admin(self._dsn)
        with conn:
            self.version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            probe = scratch_name("probe")
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(probe)))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise ConfigError(
                    f"The role of {self.describe()} may not create databases"
                    f"{_sqlstate(exc)}: {exc}. To fix this, either: `ALTER ROLE ... "
                    "CREATEDB` for it, use a role that has CREATEDB, or unset "
                    "MODELCHECK_DATABASE_URL to use an embedded cluster."
                ) from exc
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(probe)))
        return self

    def close(self) -> None:
        """Nothing to stop: the server is not ours."""


def scratch_name(kind: str = "db") -> str:
    """A unique database name that marks it as ours and says who made it:
    ``modelcheck_<kind>_<pid>_<start time>_<host>_<random>``.

    The owner travels in the name, so a run killed between ``CREATE DATABASE`` and
    any later statement still leaves a database the next run can prove orphaned.
    """
    pid = os.getpid()
    started = _proc_start_time(pid) or "0"
    return f"modelcheck_{kind}_{pid}_{started}_{_host_tag()}_{os.urandom(4).hex()}"


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def owner_from_name(name: str) -> dict[str, object] | None:
    """The owner record a :func:`scratch_name` carries, or None for any other name."""
    match = re.fullmatch(r"modelcheck_[a-z]+_(\d+)_(\d+)_([0-9a-f]{8})_[0-9a-f]{8}", name)
    if match is None or match.group(3) != _host_tag():
        return None  # not ours, or made on another host: never provably dead here
    start = None if match.group(2) == "0" else match.group(2)
    return {"host": socket.gethostname(), "pid": int(match.group(1)), "start_time": start}


def connect_admin(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection for CREATE/DROP DATABASE, with errors that name the fix."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params.setdefault("connect_timeout", 10)
    try:
        return psycopg.connect(psycopg.conninfo.make_conninfo("", **params), autocommit=True)
    except psycopg.OperationalError as exc:
        shown = " ".join(f"{k}={v}" for k, v in params.items() if k != "password")
        text = str(exc)
        if exc.sqlstate in ("28P01", "28000") or "password" in text:
            raise ConfigError(
                f"Cannot log in to {shown}{_sqlstate(exc)}: {text.strip()}. To fix this, "
                "either: correct the user/password in --modelcheck-dsn / "
                "MODELCHECK_DATABASE_URL (or ~/.pgpass), or unset it to use an embedded "
                "cluster."
            ) from exc
        raise ServerError(
            f"Cannot reach PostgreSQL at {shown}{_sqlstate(exc)}: {text.strip()}. To fix "
            "this, either: start that server / correct host and port in --modelcheck-dsn "
            "/ MODELCHECK_DATABASE_URL, or unset it to use an embedded cluster."
        ) from exc


def open_server(config: Config) -> EmbeddedServer | ExternalServer:
    """The server a config asks for, started and checked."""
    if config.dsn is not None:
        return ExternalServer(config.dsn).start()
    install = find_postgres(config.pg_bin) if config.pg_bin is not None else None
    return EmbeddedServer(install).start()


@contextlib.contextmanager
def server_for(config: Config) -> Iterator[EmbeddedServer | ExternalServer]:
    """Context manager form of :func:`open_server`."""
    server = open_server(config)
    try:
        yield server
    finally:
        server.close()


__all__ = [
    "EmbeddedServer",
    "ExternalServer",
    "PgInstall",
    "Server",
    "StartupTimings",
    "connect_admin",
    "find_postgres",
    "open_server",
    "reap_stale_runs",
    "scratch_name",
    "server_for",
]
