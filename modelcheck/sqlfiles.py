"""Install a system from its own SQL files: executed in order, or through ``psql``.

Real systems ship SQL files, often written for ``psql`` (``\\i``, ``\\set``). Both
helpers report a failure as :class:`SqlFileError` with the file, the line, the
SQLSTATE and Postgres's message, chained to the original error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from modelcheck.errors import InvalidTarget


class SqlFileError(InvalidTarget):
    """A target's SQL file failed to install."""


def _line_of(text: str, position: str | None) -> int | None:
    if not position or not position.isdigit():
        return None
    return text[: int(position) - 1].count("\n") + 1


def execute_files(
    conn: psycopg.Connection[Any], files: Sequence[str | Path | tuple[str, str]]
) -> None:
    """Run each file's text as one script, in order, inside one transaction.

    A file is a path, or ``(name, text)`` for text made on the fly. Nothing of a
    failed install stays: the transaction rolls back.
    """
    scripts = [
        f if isinstance(f, tuple) else (str(f), Path(f).read_text(encoding="utf-8")) for f in files
    ]
    with conn.transaction():
        for name, text in scripts:
            try:
                conn.execute(text.encode())
            except psycopg.Error as exc:
                line = _line_of(text, exc.diag.statement_position)
                where = f"{name}:{line}" if line else name
                raise SqlFileError(
                    f"{where}: SQLSTATE {exc.sqlstate}: {exc.diag.message_primary or exc}. "
                    "To fix this, correct that statement (the install was rolled back)."
                ) from exc


def psql_files(
    conn: psycopg.Connection[Any],
    files: Sequence[str | Path],
    *,
    psql: str | None = None,
    variables: dict[str, str] | None = None,
) -> str:
    """Run files through ``psql -v ON_ERROR_STOP=1`` against ``conn``'s database.

    Each file runs from its own directory, so relative ``\\i`` works. Returns psql's
    output; a failure raises :class:`SqlFileError` with psql's ``file:line`` message.
    """
    program = psql or shutil.which("psql")
    if program is None:
        raise SqlFileError(
            "psql was not found. To fix this, either: install the PostgreSQL client "
            "(Debian: postgresql-client), or pass psql='/path/to/psql'."
        )
    info = conn.info
    dsn = make_conninfo(host=info.host, port=info.port, dbname=info.dbname, user=info.user)
    env = {**os.environ, "PGPASSWORD": info.password or ""}
    output = []
    for file in files:
        path = Path(file).resolve()
        argv = [program, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", path.name]
        for key, value in (variables or {}).items():
            argv += ["-v", f"{key}={value}"]
        done = subprocess.run(
            argv, cwd=path.parent, env=env, capture_output=True, text=True, check=False
        )
        output.append(done.stdout)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if "ERROR" in line]
            raise SqlFileError(
                f"{path}: psql exited {done.returncode}: "
                f"{lines[0] if lines else done.stderr.strip()[-500:]}. To fix this, correct "
                "that statement or repair the file in your copy."
            )
    return "".join(output)


__all__ = ["SqlFileError", "execute_files", "psql_files"]
