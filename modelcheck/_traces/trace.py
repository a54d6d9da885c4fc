"""Failure traces: what a failing machine did, as JSON that replays exactly.

A trace is written by :meth:`DifferentialMachine.fail` on every failure; Hypothesis
re-runs the minimal example last, and the file name is fixed per machine, target and
seed, so the file left on disk is the shrunk example. Its layout (``"format": 1``)::

    {"format": 1, "seed": 1234, "profile": "dev",
     "target": {"name": "reference", "spec": "reference"},
     "postgres": "16.4",
     "machine": {"module": "test_commits", "qualname": "CommitMachine",
                 "file": "machines/test_commits.py", "interleaved": false},
     "connections": 1,
     "steps": [{"number": 1, "connection": 0, "operation": "commit",
                "transaction": false, "args": ["main", {"$tuple": [...]}],
                "sql": "SELECT * FROM vstore.commit('main', 'x ')",
                "outcome": "error 23505 duplicate", "sqlstate": "23505", "kind": "duplicate",
                "pending": false, "blocked": false, "aborted": false}],
     "events": [{"event": "begin", "connection": 1, "level": "serializable", "after": 0},
                {"event": "step", "number": 1}],
     "timeline": [[0, 1, "BEGIN SERIALIZABLE"], ...],
     "failure": {"heading": "state differs", "where": "after step 1: commit",
                 "step": 1, "detail": "...", "message": "..."}}

Arguments that JSON cannot hold exactly are tagged: ``{"$uuid": "..."}``,
``{"$tuple": [...]}``, ``{"$dict": [[key, value], ...]}`` (every mapping, so keys of
any type and their order survive), ``{"$bytes": "hex"}``, ``{"$set": [...]}``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib
import inspect
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import attrs

from modelcheck._targets import BUILTIN, _mutant_path, builtin_name
from modelcheck.errors import TraceError
from modelcheck.spec import LEGAL_ABORTS

if TYPE_CHECKING:
    from modelcheck.machine import DifferentialMachine, Step

FORMAT: Final = 1
DEFAULT_DIR: Final = Path(".modelcheck") / "traces"
ENV_TRACES: Final = "MODELCHECK_TRACES"

#: Set by the pytest option ``--modelcheck-traces`` (see :mod:`modelcheck._traces.plugin`).
_configured_dir: Path | None = None
_configured_spec: str | None = None
#: While a trace is replayed, failures are reported here instead of written as traces.
_replaying: contextvars.ContextVar[list[Failure] | None] = contextvars.ContextVar(
    "modelcheck_replaying", default=None
)

_TRANSACTION_OPS: Final = frozenset({"commit", "rollback"})
_BEGIN: Final = re.compile(r"^BEGIN (READ COMMITTED|REPEATABLE READ|SERIALIZABLE)$")


@attrs.frozen
class Failure:
    """One failure as :meth:`DifferentialMachine.fail` saw it."""

    heading: str
    where: str
    step: int | None
    detail: str
    #: The detail with no value cut (``None``: the same as ``detail``); ``show`` draws it.
    full_detail: str | None = None


def configure(directory: str | os.PathLike[str] | None, spec: str | None = None) -> None:
    """Where traces go for this process, and the target spec the run was given."""
    global _configured_dir, _configured_spec  # noqa: PLW0603 - one run, one setting
    _configured_dir = Path(directory) if directory is not None else None
    _configured_spec = spec


def trace_dir() -> Path:
    """``--modelcheck-traces``, else ``$MODELCHECK_TRACES``, else ``.modelcheck/traces``."""
    if _configured_dir is not None:
        return _configured_dir
    env = os.environ.get(ENV_TRACES)
    return Path(env) if env else DEFAULT_DIR


@contextlib.contextmanager
def replaying() -> Iterator[list[Failure]]:
    """Within this block failures are collected, not written as traces."""
    seen: list[Failure] = []
    token = _replaying.set(seen)
    try:
        yield seen
    finally:
        _replaying.reset(token)


# ------------------------------------------------------------------------ values


def encode(value: Any) -> Any:
    """A JSON value that :func:`decode` turns back into exactly ``value``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return {"$float": repr(value)}
        return value
    if isinstance(value, UUID):
        return {"$uuid": str(value)}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {"$dict": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, (set, frozenset)):
        items = sorted((encode(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
        return {"$set": items, "frozen": isinstance(value, frozenset)}
    raise TraceError(
        f"Cannot record the argument {value!r} ({type(value).__qualname__}) in a trace. "
        "To fix this, pass arguments built from str, int, float, bool, None, UUID, bytes, "
        "tuples, lists, sets and mappings."
    )


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$uuid" in value:
        return UUID(value["$uuid"])
    if "$tuple" in value:
        return tuple(decode(v) for v in value["$tuple"])
    if "$dict" in value:
        return {decode(k): decode(v) for k, v in value["$dict"]}
    if "$bytes" in value:
        return bytes.fromhex(value["$bytes"])
    if "$float" in value:
        return float(value["$float"])
    if "$set" in value:
        items = [decode(v) for v in value["$set"]]
        return frozenset(items) if value.get("frozen") else set(items)
    raise TraceError(f"Unknown tagged value in trace: {sorted(value)}")


# ------------------------------------------------------------------------- building


def target_spec(target: object) -> str:
    """The spec the run gave for this target, else one :func:`resolve_target` accepts."""
    if _configured_spec:
        return _configured_spec
    cls = type(target)
    path = f"{cls.__module__}:{cls.__qualname__}"
    for name, builtin in BUILTIN.items():
        if builtin == path:
            return name
    env = os.environ.get("MODELCHECK_TARGET")
    if env and (env == path or _mutant_path(env) == path):
        return env
    return builtin_name(path) or path


def sql_of(target: object, step: Step) -> str | None:
    """The statement a step sent, where it is known.

    A target says itself through ``sql_for(operation, args) -> str | None``; the
    reference target (and so every mutant) shows ``SELECT * FROM vstore.<op>(...)``.
    """
    if step.sql is not None:
        return step.sql
    if step.operation in _TRANSACTION_OPS and not step.args:
        return step.operation.upper()
    sql_for = getattr(target, "sql_for", None)
    if callable(sql_for):
        text = sql_for(step.operation, step.args)
        return None if text is None else str(text)
    return None


def _outcome_fields(outcome: str) -> dict[str, Any]:
    match = re.search(r"error (\w{5}) (\w+)", outcome)
    sqlstate = match.group(1) if match else None
    return {
        "outcome": outcome,
        "sqlstate": sqlstate,
        "kind": match.group(2) if match else None,
        "pending": outcome in {"sent", "blocked"},
        "blocked": outcome.startswith("blocked"),
        "aborted": outcome == "rolled back" or sqlstate in LEGAL_ABORTS,
    }


def _machine_file(cls: type) -> str | None:
    try:
        path = Path(inspect.getfile(cls)).resolve()
    except (TypeError, OSError):
        return None
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _machine_path(cls: type) -> str | None:
    with contextlib.suppress(TypeError, OSError):
        return str(Path(inspect.getfile(cls)).resolve())
    return None


def build(machine: DifferentialMachine, failure: Failure, message: str = "") -> dict[str, Any]:
    """The trace of a failing machine (format 1, see the module docstring)."""
    env = machine.environment
    target = machine.target
    cls = type(machine)
    sessions = getattr(machine, "sessions", None)
    timeline: list[tuple[int, int, str]] = list(getattr(machine, "timeline", []))
    interleaved = sessions is not None
    postgres = None
    with contextlib.suppress(Exception):
        postgres = machine.conn.info.parameter_status("server_version")
    steps = []
    for step in machine.steps:
        steps.append(
            {
                "number": step.number,
                "connection": step.connection,
                "operation": step.operation,
                "transaction": interleaved and step.operation in _TRANSACTION_OPS and not step.args,
                "args": [encode(a) for a in step.args],
                "reads_only": _reads_only(machine, step.operation, interleaved, step.args),
                "sql": sql_of(target, step),
                **_outcome_fields(step.outcome),
                **_full_outcome(step),
            }
        )
    events: list[dict[str, Any]] = []
    begins = [(after, session, text) for after, session, text in timeline if _BEGIN.match(text)]
    index = 0
    for step in machine.steps:
        while index < len(begins) and begins[index][0] < step.number:
            events.append(_begin_event(*begins[index]))
            index += 1
        events.append({"event": "step", "number": step.number})
    events += [_begin_event(*b) for b in begins[index:]]
    return {
        "format": FORMAT,
        "seed": env.seed,
        "profile": env.profile,
        "target": {"name": target.name, "spec": target_spec(target)},
        "postgres": postgres,
        "machine": {
            "module": cls.__module__,
            "qualname": cls.__qualname__,
            "file": _machine_file(cls),
            "path": _machine_path(cls),
            "interleaved": interleaved,
        },
        "connections": len(sessions) if sessions else 1,
        "steps": steps,
        "events": events,
        "timeline": [list(entry) for entry in timeline],
        "failure": {**attrs.asdict(failure), "message": message},
    }


def _full_outcome(step: Step) -> dict[str, str]:
    """``full_outcome`` when the outcome was cut for the message (the page shows it)."""
    full = step.full_outcome
    if full is None or full == step.outcome:
        return {}
    return {"full_outcome": full}


def _reads_only(
    machine: DifferentialMachine, operation: str, interleaved: bool, args: tuple[Any, ...]
) -> bool:
    """Whether a step only read (the page folds runs of those); COMMIT/ROLLBACK do not."""
    if interleaved and operation in _TRANSACTION_OPS and not args:
        return False
    row = machine.spec.operations.get(operation)
    return bool(row is not None and row.reads_only)


def _begin_event(after: int, session: int, text: str) -> dict[str, Any]:
    match = _BEGIN.match(text)
    assert match is not None
    return {
        "event": "begin",
        "connection": session,
        "level": match.group(1).lower(),
        "after": after,
    }


def path_for(machine: DifferentialMachine) -> Path:
    """One file per machine, target and seed: later writes (the shrunk example) win."""
    target = re.sub(r"[^A-Za-z0-9_.-]+", "_", machine.target.name)
    return trace_dir() / f"{type(machine).__name__}-{target}-{machine.environment.seed}.json"


def _ignore_default_dir() -> None:
    """Keep git from offering the default trace directory for commit (like .pytest_cache)."""
    ignore = DEFAULT_DIR.parent / ".gitignore"
    if trace_dir() == DEFAULT_DIR and not ignore.exists():
        ignore.write_text("# written by modelcheck\n*\n", encoding="utf-8")


def record_failure(
    machine: DifferentialMachine,
    step: Step | None,
    heading: str,
    where: str,
    detail: str,
    full_detail: str | None = None,
) -> Path | None:
    """Called by ``fail()``: write the trace (or, while replaying, collect the failure).

    Returns the trace's path, or None when nothing was written.
    """
    whole = None if full_detail == detail else full_detail
    failure = Failure(heading, where, step.number if step else None, detail, whole)
    seen = _replaying.get()
    if seen is not None:
        seen.append(failure)
        return None
    path = path_for(machine)
    try:
        trace = build(machine, failure)
        path.parent.mkdir(parents=True, exist_ok=True)
        _ignore_default_dir()
        text = json.dumps(trace, indent=1, ensure_ascii=True)
        path.write_text(text + "\n", encoding="utf-8")
    except (OSError, TraceError) as exc:
        print(f"modelcheck: could not write the trace {path}: {exc}", file=sys.stderr)
        return None
    return path


def replay_command(path: Path | str) -> str:
    """The command that replays ``path`` where the failure was printed: under nox the
    project lives in the session's virtualenv, so ``python -m modelcheck`` would not
    import; ``nox -s reproduce`` installs it and replays."""
    if os.environ.get("NOX_CURRENT_SESSION"):
        return f"nox -s reproduce -- {path}"
    return f"python -m modelcheck replay {path}"


def replay_lines(path: Path | None) -> str:
    """The lines a failure message ends with: where the trace is, how to replay it."""
    if path is None:
        return ""
    return (
        f"trace: {path} (this file is the reproduction; it replaces @reproduce_failure)\n"
        f"replay: {replay_command(path)}"
    )


def store_message(path: Path | None, message: str) -> None:
    """Keep the full failure message in the trace too."""
    if path is None:
        return
    with contextlib.suppress(OSError, ValueError, KeyError):
        trace = json.loads(path.read_text(encoding="utf-8"))
        trace["failure"]["message"] = message
        path.write_text(json.dumps(trace, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")


# -------------------------------------------------------------------------- loading


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a trace, refusing what this version cannot replay."""
    try:
        trace = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TraceError(f"Cannot read the trace {str(path)!r}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise TraceError(
            f"{str(path)!r} is not a trace (invalid JSON: {exc}). To fix this, pass a file "
            "written by a failing machine (.modelcheck/traces/*.json)."
        ) from exc
    if isinstance(trace, dict) and "anomaly" in trace and "workers" in trace:
        raise TraceError(
            f"{str(path)!r} is a stress anomaly trace (the calls of one anomaly of a "
            "parallel run), not a machine trace: it has no single-connection replay. To "
            "see it, open the run's `stress --html` page (its timeline outlines these "
            "calls); to re-check it, rerun `stress` with the seed it records."
        )
    if not isinstance(trace, dict) or "format" not in trace:
        raise TraceError(f'{str(path)!r} is not a modelcheck trace (no "format" field).')
    if trace["format"] != FORMAT:
        raise TraceError(
            f"The trace {str(path)!r} has format {trace['format']!r}; this modelcheck reads "
            f"format {FORMAT}. To fix this, either: replay it with the modelcheck version "
            "that wrote it, or re-run the machine with its seed "
            f"(--hypothesis-seed={trace.get('seed')}) to write a new trace."
        )
    return trace


def load_machine(trace: Mapping[str, Any]) -> type[DifferentialMachine]:
    """Import the machine class a trace names (by module, else by its file)."""
    from modelcheck.machine import DifferentialMachine

    info = trace["machine"]
    module_name, qualname, file = info["module"], info["qualname"], info.get("file")
    module = None
    try:
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
    except ImportError:
        for candidate in (file, info.get("path")):
            if module is None and candidate and Path(candidate).is_file():
                folder = str(Path(candidate).resolve().parent)
                if folder not in sys.path:
                    sys.path.insert(0, folder)
                with contextlib.suppress(ImportError):
                    module = importlib.import_module(module_name)
    if module is None:
        raise TraceError(
            f"Cannot import the machine module {module_name!r} (file {file!r}). To fix this, "
            "run from the directory the trace was written in, or add the machine's folder "
            "to PYTHONPATH."
        )
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if not (isinstance(obj, type) and issubclass(obj, DifferentialMachine)):
        raise TraceError(
            f"{module_name}:{qualname} is not a DifferentialMachine any more. To fix this, "
            "restore the machine class or re-run the machine to write a new trace."
        )
    return obj


def trace_name(trace: Mapping[str, Any]) -> str:
    """A short, stable name for a trace (used for regression test files)."""
    digest = hashlib.sha256(
        json.dumps([trace["steps"], trace["failure"]["detail"]], sort_keys=True).encode()
    ).hexdigest()[:8]
    machine = re.sub(r"(?<!^)(?=[A-Z])", "_", trace["machine"]["qualname"]).lower()
    target = re.sub(r"[^a-z0-9_]+", "_", trace["target"]["name"].lower())[:40]
    return f"{machine}_{target}_{digest}"
