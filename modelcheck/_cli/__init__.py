"""The ``python -m modelcheck`` command line: one argparse parser, pluggable subcommands.

Adding a subcommand: create ``modelcheck/_cli/<name>.py`` that defines

    SUBCOMMAND = Subcommand(name="run", help="...", configure=_configure, run=_run)

``configure(parser)`` adds its arguments, ``run(args, config) -> int`` does the work.
Every module of this package is discovered on start, so nothing else needs editing.
The global options (``--dsn``, ``--pg-bin``, ``--profile``, ``--target``) are accepted
before or after the subcommand and read once into a :class:`Config`, exactly like the
pytest options.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
from collections.abc import Callable, Sequence

import attrs

from modelcheck._config import CLI_FLAGS, ENV_PROFILE, PROFILES, Config
from modelcheck._postgres.server import EmbeddedServer, ExternalServer, connect_admin, find_postgres
from modelcheck.errors import ModelcheckError


@attrs.frozen
class Subcommand:
    """One ``python -m modelcheck <name>`` subcommand."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Config], int]


def _discover() -> dict[str, Subcommand]:
    """The built-in subcommands plus every ``modelcheck._cli.<name>`` module's SUBCOMMAND."""
    found = {DOCTOR.name: DOCTOR}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        command = getattr(module, "SUBCOMMAND", None)
        if isinstance(command, Subcommand):
            found[command.name] = command
    return dict(sorted(found.items()))


#: The options every subcommand shares, with their help text.
GLOBAL_OPTIONS: dict[str, str] = {
    "--dsn": "existing server, postgresql://... (env MODELCHECK_DATABASE_URL; default: embedded)",
    "--pg-bin": "PostgreSQL bin dir for the embedded server (env MODELCHECK_PG_BIN)",
    "--profile": "Hypothesis profile (env MODELCHECK_PROFILE; default dev)",
    "--target": "target to check: reference, sqlalchemy, a mutant, or module:attr "
    "(env MODELCHECK_TARGET)",
}


def _global_options(default: object) -> argparse.ArgumentParser:
    """The shared options as a parent parser. The top level's default is None; each
    sub-parser's is *suppressed*, so a value given before the subcommand is not
    overwritten when it is absent after it. (Two parents: argparse shares action
    objects between a parent and its children.)"""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options (before or after the subcommand)")
    for flag, text in GLOBAL_OPTIONS.items():
        choices = sorted(PROFILES) if flag == "--profile" else None
        group.add_argument(flag, choices=choices, default=default, help=text)
    return parent


def chosen_profile(args: argparse.Namespace, default: str) -> str:
    """The profile ``--profile`` or ``MODELCHECK_PROFILE`` chose, else the subcommand's
    own default (``weekly`` for weekly, ``ci`` for mutants and soak)."""
    return getattr(args, "profile", None) or os.environ.get(ENV_PROFILE) or default


def build_parser(subcommands: dict[str, Subcommand] | None = None) -> argparse.ArgumentParser:
    """The full parser: global options, accepted on either side of the subcommand, and
    one sub-parser per subcommand."""
    subcommands = _discover() if subcommands is None else subcommands
    parser = argparse.ArgumentParser(
        prog="python -m modelcheck",
        description="Model-check PostgreSQL-backed versioning systems with Hypothesis.",
        parents=[_global_options(None)],
    )
    shared = _global_options(argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in subcommands.values():
        command.configure(sub.add_parser(command.name, help=command.help, parents=[shared]))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, build the config and run the chosen subcommand."""
    subcommands = _discover()
    args = build_parser(subcommands).parse_args(argv)
    try:
        config = Config.resolve(
            dsn=args.dsn,
            pg_bin=args.pg_bin,
            profile=args.profile,
            target=args.target,
            flags=CLI_FLAGS,
        )
        return subcommands[args.command].run(args, config)
    except ModelcheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


# ------------------------------------------------------------------------------ doctor


def _doctor(args: argparse.Namespace, config: Config) -> int:
    """Say which Postgres would be used, and prove it starts (or accepts us)."""
    print(f"profile: {config.profile}")
    if config.dsn is not None:
        server = ExternalServer(config.dsn)
        print(f"server: {server.describe()}")
        t0 = time.perf_counter()
        with server:
            took = time.perf_counter() - t0
            print(f"version: {server.version}")
        print(f"connect + create/drop probe database: ok ({took * 1000:.0f} ms)")
        return 0
    install = find_postgres(config.pg_bin)
    print(f"server: embedded, binaries from {install.bin_dir} (found via {install.source})")
    print(f"version: {install.version}")
    t0 = time.perf_counter()
    with EmbeddedServer(install) as embedded:
        took = time.perf_counter() - t0
        with connect_admin(embedded.dsn) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        assert embedded.timings is not None
        how = "cached data dir copy" if embedded.timings.cached else "initdb"
        print(f"run dir: {embedded.run_dir}")
        print(
            f"start: ok ({took * 1000:.0f} ms, {how}); connected, server_version={row and row[0]}"
        )
    print("stop and cleanup: ok")
    return 0


def _configure_doctor(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print which PostgreSQL modelcheck would use and check that it can start it "
        "(embedded) or connect and create databases (--dsn)."
    )


DOCTOR = Subcommand(
    name="doctor",
    help="check which PostgreSQL would be used and that it works",
    configure=_configure_doctor,
    run=_doctor,
)
