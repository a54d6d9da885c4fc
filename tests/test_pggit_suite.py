"""The pgGit suite: capabilities, classification and the missing-source message need no
pgGit; the rest skips unless MODELCHECK_PGGIT_SRC names a (repaired) pgGit checkout."""

from __future__ import annotations

import os
from pathlib import Path

import hypothesis
import psycopg
import pytest

from modelcheck import DatabasePool, MachineEnvironment, Server, run_machine
from modelcheck.errors import InvalidTarget
from modelcheck.machine import SESSION_SETTINGS, installer_for
from modelcheck.suites.pggit.rules import PgGitMachine
from modelcheck.suites.pggit.spec import PGGIT
from modelcheck.suites.pggit.target import PgGitTarget
from modelcheck.target import check_target

needs_pggit = pytest.mark.skipif(
    not os.environ.get("MODELCHECK_PGGIT_SRC"), reason="set MODELCHECK_PGGIT_SRC=/path/to/pgGit"
)


def test_broken_operations_are_declared_unsupported_not_emulated() -> None:
    target = PgGitTarget()
    assert target.capabilities.unsupported == {
        "delete_branch",
        "merge",
        "verify_consistency",
        "begin_migration",
    }
    check_target(PGGIT, target)
    assert not any(hasattr(target, name) for name in target.capabilities.unsupported)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Branch name cannot be empty", "empty_name"),
        ("Branch name too long (max 255 characters, got 256)", "name_too_long"),
        ("Parent branch nope not found", "parent_not_found"),
        ("Branch nope not found", "branch_not_found"),
        ("Failed to delete branch: Cannot delete protected branch main", "protected_branch"),
        ("Commit message cannot be NULL or empty", "empty_message"),
        ("Failed to create commit on branch : Branch name cannot be null or empty", "empty_name"),
        (
            "Failed to create commit on branch x: Commit message too long (max 1)",
            "message_too_long",
        ),
        ("Failed to create commit on branch a b: new row violates check", "commit_failed"),
        ("Invalid increment type: x. Must be major, minor, or patch", "invalid_increment_type"),
    ],
)
def test_pggit_p0001_texts_get_stable_kinds(empty_dsn: str, message: str, kind: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute(
            b"CREATE FUNCTION pg_temp.boom(m text) RETURNS void LANGUAGE plpgsql "
            b"AS $$ BEGIN RAISE EXCEPTION '%', m; END $$"
        )
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(b"SELECT pg_temp.boom(%s)", (message,))
    assert PgGitTarget().classify(raised.value).outcome == ("P0001", kind)


def test_other_errors_go_to_the_default_classifier(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute(b"CREATE TABLE b (name text CONSTRAINT branches_name_key UNIQUE)")
        conn.execute(b"INSERT INTO b VALUES ('x')")
        for statement, outcome in [
            (b"INSERT INTO b VALUES ('x')", ("23505", "branches_name_key")),
            (b"SELECT 1/0", ("22012", "ddl")),
            (b"DO $$ BEGIN RAISE EXCEPTION 'something else'; END $$", ("P0001", "ddl")),
        ]:
            with pytest.raises(psycopg.Error) as raised:
                conn.execute(statement)
            assert PgGitTarget().classify(raised.value).outcome == outcome


def test_a_missing_source_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODELCHECK_PGGIT_SRC", raising=False)
    with pytest.raises(InvalidTarget, match=r"MODELCHECK_PGGIT_SRC is not set.*--pggit-src"):
        PgGitTarget().install(None)  # type: ignore[arg-type]
    monkeypatch.setenv("MODELCHECK_PGGIT_SRC", str(tmp_path))
    with pytest.raises(InvalidTarget, match="is not a pgGit checkout"):
        PgGitTarget().install(None)  # type: ignore[arg-type]


@needs_pggit
@pytest.mark.postgres
def test_pggit_finds_the_branch_id_sequence_bug(modelcheck_server: Server) -> None:
    target = PgGitTarget()
    settings = hypothesis.settings(max_examples=30, stateful_step_count=10, deadline=None)
    with DatabasePool(
        modelcheck_server, installer_for(target), ahead=0, settings=SESSION_SETTINGS
    ) as pool:
        environment = MachineEnvironment(target, pool, "dev", seed=1)
        with pytest.raises(BaseException, match="branches_pkey"):
            run_machine(PgGitMachine, environment, settings)
