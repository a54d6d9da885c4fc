"""The embedded cluster (lifecycle, root handling, cleanup) and the DSN server."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from modelcheck import (
    Config,
    ConfigError,
    DatabasePool,
    EmbeddedServer,
    ExternalServer,
    PgInstall,
    ServerError,
)
from modelcheck._postgres import server as _server
from modelcheck._postgres.server import _base_dir, _pid_alive, find_postgres, reap_stale_runs

pytestmark = pytest.mark.postgres


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _pid_alive(pid)


# ---------------------------------------------------------------------- configuration


def test_config_rejects_unknown_profile() -> None:
    with pytest.raises(ConfigError, match="To fix this"):
        Config.resolve(profile="nightly", env={})


def test_config_rejects_malformed_dsn() -> None:
    with pytest.raises(ConfigError, match="not a valid libpq") as info:
        Config.resolve(dsn="this is not a dsn", env={})
    assert isinstance(info.value.__cause__, psycopg.ProgrammingError)


def test_config_options_win_over_environment() -> None:
    env = {"MODELCHECK_PROFILE": "weekly", "MODELCHECK_TARGET": "a:b"}
    assert Config.resolve(env=env).profile == "weekly"
    assert Config.resolve(profile="ci", target="c:d", env=env).target == "c:d"


def test_bin_dir_without_postgres_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="postgres"):
        find_postgres(tmp_path)
    with pytest.raises(ConfigError, match="--modelcheck-pg-bin"):
        Config.resolve(pg_bin=tmp_path, env={})


def test_discovery_falls_back_to_pgserver(monkeypatch: pytest.MonkeyPatch) -> None:
    if _server._from_pgserver() is None:
        pytest.skip("pgserver is not installed")
    monkeypatch.setattr(_server, "_from_path", lambda: None)
    monkeypatch.setattr(_server, "_from_debian_layout", lambda: None)
    install = find_postgres()
    assert install.source == "pgserver"
    assert install.bin_dir.parts[-3:] == ("pgserver", "pginstall", "bin")


def test_no_binaries_names_both_ways_out(monkeypatch: pytest.MonkeyPatch) -> None:
    for finder in ("_from_path", "_from_debian_layout", "_from_pgserver"):
        monkeypatch.setattr(_server, finder, lambda: None)
    with pytest.raises(ServerError, match="pip install pgserver") as info:
        find_postgres()
    assert "MODELCHECK_DATABASE_URL" in str(info.value)


@pytest.mark.slow
def test_root_copies_binaries_its_user_cannot_reach(tmp_path: Path) -> None:
    """pgserver's wheel under a 0700 dir: copied (with its .libs) where postgres can run it."""
    bin_dir = _server._from_pgserver()
    if os.geteuid() != 0 or bin_dir is None:
        pytest.skip("needs root and pgserver")
    site = tmp_path / "private" / "site-packages"
    site.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    for name in ("pgserver", "pgserver.libs"):
        if (bin_dir.parents[2] / name).is_dir():
            shutil.copytree(bin_dir.parents[2] / name, site / name, symlinks=True)
    hidden = PgInstall(site / "pgserver" / "pginstall" / "bin", "16", "test")
    server = EmbeddedServer(hidden)
    try:
        server.start()
        assert server.install.bin_dir != hidden.bin_dir
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.close()
        if server.install.bin_dir != hidden.bin_dir:
            shutil.rmtree(server.install.bin_dir.parents[2], ignore_errors=True)


def test_discovery_finds_a_version() -> None:
    install = find_postgres()
    assert install.major >= 13
    assert (install.bin_dir / "initdb").is_file()


# ---------------------------------------------------------------------- embedded


def test_embedded_start_stop_leaves_nothing() -> None:
    server = EmbeddedServer().start()
    run_dir, pid = server.run_dir, server.pid
    try:
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        assert (server.socket_dir / ".s.PGSQL.5432").exists()
        if os.geteuid() == 0:
            # Postgres refuses root: the postmaster must run unprivileged.
            assert _uid_of(pid) != 0
            assert pwd.getpwuid(_uid_of(pid)).pw_name in ("postgres", "nobody")
    finally:
        server.close()
    assert not run_dir.exists()
    assert _wait_dead(pid)
    server.close()  # idempotent


def test_second_start_copies_the_cached_data_dir() -> None:
    with EmbeddedServer():
        pass
    with EmbeddedServer() as server:
        assert server.timings is not None
        assert server.timings.cached


def test_start_without_cache_runs_initdb() -> None:
    with EmbeddedServer(use_cache=False) as server:
        assert server.timings is not None
        assert not server.timings.cached


def test_failed_start_raises_with_log_and_leaves_nothing() -> None:
    # A private parent, so parallel workers' run dirs do not disturb the count.
    base = Path(tempfile.mkdtemp(prefix="failtest-", dir=_base_dir()))
    base.chmod(0o711)
    try:
        server = EmbeddedServer(settings={"shared_buffers": "not-a-size"}, base_dir=base)
        with pytest.raises(ServerError, match="shared_buffers") as info:
            server.start()
        assert "log ends with" in str(info.value)
        assert list(base.iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _python_for(user: pwd.struct_passwd) -> tuple[str, dict[str, str]] | None:
    """A python that ``user`` can run and that imports this package, with its env."""
    import site

    import modelcheck

    package_root = str(Path(modelcheck.__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "HOME": "/nonexistent",
        "PYTHONPATH": os.pathsep.join([package_root, *site.getsitepackages()]),
    }
    same_version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in (sys.executable, f"/usr/bin/{same_version}", f"/usr/local/bin/{same_version}"):
        try:
            probe = subprocess.run(
                [python, "-c", "import modelcheck, psycopg"],
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
                capture_output=True,
                check=False,
                cwd="/",
                env=env,
            )
        except OSError:
            continue
        if probe.returncode == 0:
            return python, env
    return None


@pytest.mark.slow
def test_as_an_ordinary_user() -> None:
    """Run the package as ``nobody``: postgres is started directly, without user=."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an ordinary user")
    nobody = pwd.getpwnam("nobody")
    found = _python_for(nobody)
    if found is None:
        pytest.skip("no python that nobody can run imports this package")
    python, env = found
    script = textwrap.dedent(
        """
        import json, os, psycopg
        from modelcheck import EmbeddedServer
        with EmbeddedServer() as s:
            with psycopg.connect(s.dsn) as c:
                user = c.execute("SELECT current_user").fetchone()[0]
            print(json.dumps({"uid": os.getuid(), "pid": s.pid, "run_dir": str(s.run_dir),
                              "user": user}))
        """
    )
    result = subprocess.run(
        [python, "-c", script],
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.splitlines()[-1])
    assert info["uid"] == nobody.pw_uid
    assert info["user"] == "postgres"
    assert not Path(info["run_dir"]).exists()
    assert _wait_dead(info["pid"])


# ---------------------------------------------------------------------- cleanup


_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from modelcheck import EmbeddedServer
    server = EmbeddedServer().start()
    print(json.dumps({"pid": server.pid, "run_dir": str(server.run_dir)}), flush=True)
    try:
        time.sleep(120)
    finally:
        server.close()
    """
)


@pytest.fixture
def child() -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else ""
    info = json.loads(line)
    try:
        yield proc, int(info["pid"]), Path(info["run_dir"])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_owner_cleans_up(
    child: tuple[subprocess.Popen[str], int, Path], signum: signal.Signals
) -> None:
    proc, pid, run_dir = child
    assert run_dir.exists()
    assert _pid_alive(pid)
    proc.send_signal(signum)
    proc.wait(timeout=30)
    assert _wait_dead(pid)
    assert not run_dir.exists()


@pytest.mark.slow
def test_killed_owner_is_reaped_by_the_next_run(
    child: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, pid, run_dir = child
    proc.kill()  # SIGKILL: no finally, no atexit
    proc.wait(timeout=30)
    assert run_dir.exists()  # nobody cleaned up yet
    with EmbeddedServer():  # the next run reaps dead owners on start
        pass
    assert _wait_dead(pid)
    assert not run_dir.exists()


@pytest.mark.slow
def test_reaper_spares_live_owners(child: tuple[subprocess.Popen[str], int, Path]) -> None:
    _proc, pid, run_dir = child
    removed = reap_stale_runs()
    assert run_dir not in removed
    assert run_dir.exists()
    assert _pid_alive(pid)


# ---------------------------------------------------------------------- existing server


def _admin(server: EmbeddedServer) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server.dsn, autocommit=True)


def _databases(server: EmbeddedServer) -> set[str]:
    with _admin(server) as conn:
        return {str(row[0]) for row in conn.execute("SELECT datname FROM pg_database")}


def test_dsn_mode_creates_and_drops_only_its_own(embedded: EmbeddedServer) -> None:
    foreign = ["keep_me", "modelcheck_not_ours"]
    with _admin(embedded) as conn:
        for name in foreign:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        before = _databases(embedded)
        seen: set[str] = set()
        with (
            ExternalServer(embedded.dsn) as server,
            DatabasePool(server, ahead=2) as pool,
        ):
            for _ in range(3):
                with pool.database() as db:
                    seen.add(db.name)
                    with pool.connect(db) as conn:
                        conn.execute("CREATE TABLE t (x int)")
            during = _databases(embedded)
            assert pool.template in during
        assert all(name.startswith("modelcheck_") for name in seen | (during - before))
        assert not (_databases(embedded) - before)
        assert set(foreign) <= _databases(embedded)
    finally:
        with _admin(embedded) as conn:
            for name in foreign:
                conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


def test_unreachable_dsn_is_a_server_error(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="Cannot reach") as info:
        ExternalServer(f"host={tmp_path} dbname=postgres user=postgres").start()
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert "To fix this" in str(info.value)


def test_bad_password_is_a_config_error(embedded: EmbeddedServer) -> None:
    hba = embedded.data_dir / "pg_hba.conf"
    original = hba.read_text()
    with _admin(embedded) as conn:
        conn.execute("CREATE ROLE mc_bob LOGIN PASSWORD 'right'")
    hba.write_text("local all mc_bob scram-sha-256\nlocal all all trust\n")
    hba.chmod(0o644)
    try:
        with _admin(embedded) as conn:
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.2)  # the postmaster re-reads pg_hba.conf asynchronously
        dsn = psycopg.conninfo.make_conninfo(embedded.dsn, user="mc_bob", password="wrong")
        with pytest.raises(ConfigError, match="Cannot log in") as info:
            ExternalServer(dsn).start()
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
        assert "wrong" not in str(info.value)  # the password is never echoed
    finally:
        hba.write_text(original)
        with _admin(embedded) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute("DROP ROLE mc_bob")


def test_role_without_createdb_is_a_config_error(embedded: EmbeddedServer) -> None:
    with _admin(embedded) as conn:
        conn.execute("CREATE ROLE mc_carol LOGIN")
    try:
        dsn = psycopg.conninfo.make_conninfo(embedded.dsn, user="mc_carol")
        with pytest.raises(ConfigError, match="42501") as info:
            ExternalServer(dsn).start()
        assert isinstance(info.value.__cause__, psycopg.errors.InsufficientPrivilege)
        assert "CREATEDB" in str(info.value)
    finally:
        with _admin(embedded) as conn:
            conn.execute("DROP ROLE mc_carol")
