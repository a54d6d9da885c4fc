"""modelcheck: Hypothesis stateful model checking for PostgreSQL-backed versioning systems."""

from __future__ import annotations

from modelcheck._config import Config
from modelcheck._isolation import CleanDatabase, DatabasePool, Installer, connect
from modelcheck._server import EmbeddedServer, ExternalServer, PgInstall, Server, open_server
from modelcheck.errors import ConfigError, ModelcheckError, ServerError

__all__ = [
    "CleanDatabase",
    "Config",
    "ConfigError",
    "DatabasePool",
    "EmbeddedServer",
    "ExternalServer",
    "Installer",
    "ModelcheckError",
    "PgInstall",
    "Server",
    "ServerError",
    "connect",
    "open_server",
]
