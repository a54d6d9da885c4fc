"""The frozen run configuration, read once from pytest options, env or CLI args.

Reading it in one place means every part of a run (plugin, CLI, fixtures) sees the
same server choice and profile, and a bad value fails before any test starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import attrs
import hypothesis
import psycopg
from hypothesis import HealthCheck, Phase

from modelcheck.errors import ConfigError

ENV_DSN: Final = "MODELCHECK_DATABASE_URL"
ENV_PG_BIN: Final = "MODELCHECK_PG_BIN"
ENV_PROFILE: Final = "MODELCHECK_PROFILE"
ENV_TARGET: Final = "MODELCHECK_TARGET"

#: Hypothesis settings per profile. Deadlines are off: Postgres latency is noisy and
#: a blocked statement is detected by the machines, never by a timer.
PROFILES: Final[Mapping[str, Mapping[str, int]]] = {
    "dev": {"max_examples": 25, "stateful_step_count": 20},
    "ci": {"max_examples": 120, "stateful_step_count": 40},
    "weekly": {"max_examples": 5_000, "stateful_step_count": 80},
}
DEFAULT_PROFILE: Final = "dev"


def register_profiles() -> None:
    """Register the ``dev``, ``ci`` and ``weekly`` Hypothesis profiles (idempotent)."""
    for name, values in PROFILES.items():
        hypothesis.settings.register_profile(
            name,
            deadline=None,
            # Hypothesis's own CI profile (loaded when CI is set) derandomizes; ours keep
            # the printed seed meaningful, so a CI failure replays with that seed.
            derandomize=False,
            max_examples=values["max_examples"],
            stateful_step_count=values["stateful_step_count"],
            # Slow data generation is not a bug here: a step includes a round trip.
            suppress_health_check=[HealthCheck.too_slow],
            # The explain phase would point at modelcheck's own lines; the trace and the
            # step-by-step diff are the explanation (docs/failures.md).
            phases=[phase for phase in Phase if phase is not Phase.explain],
        )


def mask_dsn(dsn: str | None) -> str | None:
    """The connection string with its password replaced by ``***`` (safe to print)."""
    if dsn is None:
        return None
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    if "password" in params:
        params["password"] = "***"  # noqa: S105 - the mask, not a secret
    return psycopg.conninfo.make_conninfo("", **params)


#: How each setting is spelled where the user gave it: pytest options, or the CLI's.
PYTEST_FLAGS: Final[Mapping[str, str]] = {
    "dsn": "--modelcheck-dsn",
    "pg_bin": "--modelcheck-pg-bin",
    "profile": "--modelcheck-profile",
}
CLI_FLAGS: Final[Mapping[str, str]] = {"dsn": "--dsn", "pg_bin": "--pg-bin", "profile": "--profile"}


@attrs.frozen
class Config:
    """Where modelcheck gets its Postgres from and how hard it searches.

    ``dsn`` set means "use this existing server"; otherwise an embedded cluster is
    started from ``pg_bin`` (or discovered binaries).
    """

    dsn: str | None = attrs.field(default=None, repr=lambda dsn: repr(mask_dsn(dsn)))
    pg_bin: Path | None = None
    profile: str = DEFAULT_PROFILE
    target: str | None = None
    #: The flag names error messages use (the CLI passes its own spelling).
    flags: Mapping[str, str] = attrs.field(default=PYTEST_FLAGS, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(
                f"Unknown modelcheck profile {self.profile!r}. To fix this, either: pass "
                f"{self.flags['profile']} with one of {sorted(PROFILES)}, or set "
                f"{ENV_PROFILE} to one of them."
            )
        if self.dsn is not None:
            try:
                psycopg.conninfo.conninfo_to_dict(self.dsn)
            except psycopg.ProgrammingError as exc:
                raise ConfigError(
                    f"The database URL is not a valid libpq connection string: {exc}. "
                    f"To fix this, either: correct {self.flags['dsn']} / "
                    f"{ENV_DSN} (e.g. postgresql://user@host:5432/postgres), or unset it "
                    "to use an embedded cluster."
                ) from exc
        if self.pg_bin is not None and not (self.pg_bin / "postgres").is_file():
            raise ConfigError(
                f"No 'postgres' executable in {str(self.pg_bin)!r}. To fix this, either: "
                f"point {self.flags['pg_bin']} / {ENV_PG_BIN} at a directory holding "
                "'postgres' and 'initdb' (e.g. /usr/lib/postgresql/15/bin, or the output "
                "of `pg_config --bindir`), or unset it to let modelcheck find one."
            )

    @classmethod
    def resolve(
        cls,
        *,
        dsn: str | None = None,
        pg_bin: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        target: str | None = None,
        env: Mapping[str, str] | None = None,
        flags: Mapping[str, str] = PYTEST_FLAGS,
    ) -> Config:
        """Build the config: explicit arguments win over the environment.

        >>> Config.resolve(profile="ci", env={}).profile
        'ci'
        """
        env = os.environ if env is None else env
        bin_dir = pg_bin if pg_bin is not None else env.get(ENV_PG_BIN) or None
        return cls(
            dsn=dsn or env.get(ENV_DSN) or None,
            pg_bin=Path(bin_dir).expanduser() if bin_dir is not None else None,
            profile=profile or env.get(ENV_PROFILE) or DEFAULT_PROFILE,
            target=target or env.get(ENV_TARGET) or None,
            flags=flags,
        )
