"""The stress history: every call a worker made, with its timing and its outcome.

A :class:`Call` is plain data (JSON-able arguments and result) so a history can be
written to a trace file and checked again later. Results are kept in a small JSON
shape per operation (see :func:`encode_result`); errors as ``(SQLSTATE, kind)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from uuid import UUID

import attrs

from modelcheck.suites.vstore.results import CommitResult, MergeResult, MigrationResult, TrinityId

#: Outcomes that mean "this transaction was rolled back": legal under concurrency, and
#: the call must have had no effect. Class 40 is matched by prefix.
ABORT_SQLSTATES: Final = frozenset({"55P03", "57014", "53300", "57P01"})

#: The trace file format version (docs/stress.md, "Trace files").
TRACE_VERSION: Final = 1

#: Operations that change the store; the others only read.
WRITES: Final = frozenset(
    {"create_branch", "delete_branch", "commit", "apply_migration", "rollback_migration", "merge"}
)


def is_abort(sqlstate: str | None) -> bool:
    """True for SQLSTATEs after which the call must have left nothing behind."""
    return sqlstate is not None and (sqlstate.startswith("40") or sqlstate in ABORT_SQLSTATES)


@attrs.frozen
class Call:
    """One call: who, what, when (monotonic seconds), and what came back.

    ``status`` is ``ok`` (``result`` set), ``error`` (``sqlstate``/``kind`` set) or
    ``indeterminate`` (the connection broke mid-call: it may or may not have happened).
    """

    index: int
    worker: int
    operation: str
    args: tuple[Any, ...]
    invoke: float
    complete: float
    status: str
    result: Any = None
    sqlstate: str | None = None
    kind: str | None = None

    @property
    def aborted(self) -> bool:
        return self.status == "error" and is_abort(self.sqlstate)

    @property
    def latency(self) -> float:
        return self.complete - self.invoke

    def outcome_text(self) -> str:
        if self.status == "ok":
            return f"ok {_short(self.result)}"
        if self.status == "error":
            return f"error {self.sqlstate} {self.kind}"
        return "indeterminate"

    def describe(self) -> str:
        shown = ", ".join(_short(a) for a in self.args)
        return (
            f"#{self.index} [w{self.worker} {self.invoke:.4f}..{self.complete:.4f}] "
            f"{self.operation}({shown}) -> {self.outcome_text()}"
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "worker": self.worker,
            "operation": self.operation,
            "args": list(self.args),
            "invoke": self.invoke,
            "complete": self.complete,
            "status": self.status,
        }
        if self.status == "ok":
            data["result"] = self.result
        elif self.status == "error":
            data["error"] = {"sqlstate": self.sqlstate, "kind": self.kind}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Call:
        error = data.get("error") or {}
        return cls(
            index=int(data["index"]),
            worker=int(data["worker"]),
            operation=str(data["operation"]),
            args=tuple(data["args"]),
            invoke=float(data["invoke"]),
            complete=float(data["complete"]),
            status=str(data["status"]),
            result=data.get("result"),
            sqlstate=error.get("sqlstate"),
            kind=error.get("kind"),
        )


def _trinity(t: TrinityId) -> dict[str, Any]:
    return {"pk": t.pk, "id": str(t.id), "identifier": t.identifier}


def encode_result(operation: str, value: Any) -> Any:
    """A target's result as JSON: Trinity IDs as ``{pk, id, identifier}`` plus extras."""
    if isinstance(value, TrinityId):
        return _trinity(value)
    if isinstance(value, CommitResult):
        return {
            **_trinity(value.commit),
            "version": value.version,
            "schema_hash": value.schema_hash,
        }
    if isinstance(value, MigrationResult):
        return {**_trinity(value.migration), "checksum": value.checksum}
    if isinstance(value, MergeResult):
        commit = _trinity(value.commit) if value.commit is not None else {}
        return {"kind": value.kind, "version": value.version, **commit}
    if isinstance(value, tuple):
        return list(value)
    return value


def trinity_of(call: Call) -> tuple[str, str, int, UUID] | None:
    """``(kind, identifier, pk, id)`` of the entity a successful call created or resolved."""
    if call.status != "ok" or not isinstance(call.result, Mapping) or "pk" not in call.result:
        return None
    kind = {
        "create_branch": "branch",
        "commit": "commit",
        "merge": "commit",
        "apply_migration": "migration",
    }.get(call.operation)
    if call.operation == "resolve":
        kind = str(call.args[0])
    if kind is None:
        return None
    r = call.result
    return kind, str(r["identifier"]), int(r["pk"]), UUID(str(r["id"]))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"
