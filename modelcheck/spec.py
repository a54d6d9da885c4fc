"""The seam between the engine and a suite: what a kind of system must tell the machines.

A :class:`Spec` gives the initial model, one :class:`Operation` row per operation (how
its results compare, which returned values the model cannot predict), the expected
state of a model, and how errors are classified. The engine owns everything else:
connections, isolation, interleaving, the serial-order oracle, faults, traces. It is
quickcheck-state-machine's *lockstep* idea: model and target answer every operation,
values the model cannot predict are learned once as :class:`Opaque` values and then
held to their :class:`Law`\\ s, and the rest is compared with ``==``.

A minimal spec (a counter whose target returns an opaque row id)::

    class CounterSpec(Spec[CounterModel, CounterState]):
        name = "counter"
        operations = operation_table(
            Operation("bump", opaque=lambda result, args: [Opaque("row.id", args[0], result,
                                                                  ENTITY_KEY)]),
            Operation("read", reads_only=True),
        )
        def initial_model(self) -> CounterModel: return CounterModel()
        def expected(self, model, *, full): return CounterState(dict(model.counts))
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

import attrs
import psycopg
from hypothesis.strategies import SearchStrategy

from modelcheck.errors import InvalidTarget

if TYPE_CHECKING:
    from modelcheck.target import Target

M = TypeVar("M")
S = TypeVar("S")

#: SQLSTATEs that are legal outcomes of concurrency and faults, not errors of a spec:
#: the transaction that saw one must have left nothing behind.
LEGAL_ABORTS: Final[Mapping[str, str]] = {
    "40001": "serialization_failure",
    "40P01": "deadlock_detected",
    "55P03": "lock_not_available",
    "57014": "query_canceled",
    "57P01": "admin_shutdown",
    "08006": "connection_failure",
    "08003": "connection_does_not_exist",
}

#: The kind of an error the driver raised on the client side (never plausible).
CLIENT_ERROR: Final = "client_error"

#: The kind of an error Postgres itself raised (DDL, casts, constraints): compared by
#: SQLSTATE alone.
POSTGRES_ERROR: Final = "ddl"


class OperationError(Exception):
    """An operation failed: a stable ``kind`` and a SQLSTATE, compared as a pair.

    Both the model and the target raise it (a suite may subclass it); messages are
    carried for people and never compared.
    """

    def __init__(self, kind: str, sqlstate: str, message: str = "") -> None:
        self.kind = kind
        self.sqlstate = sqlstate
        self.message = message
        super().__init__(f"[{sqlstate} {kind}] {message}".rstrip())

    @property
    def outcome(self) -> tuple[str, str]:
        """What the oracle compares: the SQLSTATE and the stable kind."""
        return (self.sqlstate, self.kind)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OperationError) and self.outcome == other.outcome

    def __hash__(self) -> int:
        return hash(self.outcome)


class Law(enum.Enum):
    """What an opaque value must obey once the model has learned it."""

    #: A new key's value was never seen for that kind, not even in a transaction that
    #: rolled back (ids, pks, uuids are never reused).
    FRESH = "fresh"
    #: Once bound, a key keeps its value for good.
    IMMUTABLE = "immutable"
    #: A new key's value is above every earlier one of its kind (sequential machines
    #: only: under concurrency commit order is not creation order).
    MONOTONIC = "monotonic"
    #: The key is the content: the same content always gives the same value.
    FUNCTION_OF_CONTENT = "function of content"
    #: Different keys never share a value (a collision is a bug).
    INJECTIVE = "injective"


#: The laws of an identity value: a pk from a sequence, a public uuid.
ENTITY_KEY: Final = frozenset({Law.FRESH, Law.IMMUTABLE, Law.MONOTONIC})
#: A random identifier (a uuid): fresh and immutable, in no order.
RANDOM_KEY: Final = frozenset({Law.FRESH, Law.IMMUTABLE})
#: A content hash: the same content gives the same value, different content another.
CONTENT_HASH: Final = frozenset({Law.FUNCTION_OF_CONTENT, Law.INJECTIVE})
#: A later look-up of a value bound before (e.g. ``resolve``): it must agree.
LOOKUP: Final = frozenset({Law.IMMUTABLE})


@attrs.frozen
class Opaque:
    """A value the model cannot predict: learned on first sight, then held to ``laws``.

    ``kind`` names the family ("branch.pk", "commit.hash"); ``key`` says which entity
    (or which content, for a function of content) it belongs to.
    """

    kind: str
    key: Hashable
    value: Any
    laws: frozenset[Law]


@attrs.define
class Bindings:
    """Every opaque value learned so far, kept by the model so clones carry them."""

    values: dict[tuple[str, Hashable], Any] = attrs.field(factory=dict)
    owners: dict[tuple[str, Any], Hashable] = attrs.field(factory=dict)
    latest: dict[str, Any] = attrs.field(factory=dict)
    #: Values seen in results that did not survive (a rolled-back transaction).
    spent: set[tuple[str, Any]] = attrs.field(factory=set)

    def get(self, kind: str, key: Hashable) -> Any:
        """The bound value, or None while the model has not seen it."""
        return self.values.get((kind, key))

    def key_of(self, kind: str, value: Any) -> Hashable | None:
        """Which key holds ``value`` (None: no key of that kind does)."""
        return self.owners.get((kind, value))

    def clone(self) -> Bindings:
        return Bindings(dict(self.values), dict(self.owners), dict(self.latest), set(self.spent))

    def absorb(self, other: Bindings) -> None:
        """Add another model's bindings (of entities this one does not know)."""
        for slot, value in other.values.items():
            self.values.setdefault(slot, value)
        for owned, key in other.owners.items():
            self.owners.setdefault(owned, key)
        for kind, value in other.latest.items():
            if kind not in self.latest or value > self.latest[kind]:
                self.latest[kind] = value
        self.spent |= other.spent

    def spend(self, kind: str, value: Any) -> None:
        """Remember a value a rolled-back transaction returned: FRESH values never recur."""
        if value is not None and (kind, value) not in self.owners:
            self.spent.add((kind, value))

    def learn(self, opaque: Opaque, *, sequential: bool, required: bool = False) -> str | None:
        """Bind ``opaque`` or say which law it breaks (None: it obeys them all).

        ``required``: the value comes from a result, which must carry it (a state may
        simply not show it yet). Nothing changes unless every law holds.
        """
        kind, key, value, laws = opaque.kind, opaque.key, opaque.value, opaque.laws
        if value is None:
            return f"the result carries no {kind} for {key!r}" if required else None
        slot = (kind, key)
        old = self.values.get(slot)
        if slot in self.values:
            if old == value:
                return None
            if laws & {Law.IMMUTABLE, Law.FUNCTION_OF_CONTENT}:
                what = "content" if Law.FUNCTION_OF_CONTENT in laws else "key"
                return f"{kind} of {key!r} changed from {old!r} to {value!r} (same {what})"
        owner = self.owners.get((kind, value))
        if owner is not None and owner != key and laws & {Law.FRESH, Law.INJECTIVE}:
            return f"{kind} {value!r} of {key!r} already belongs to {owner!r}"
        if Law.FRESH in laws and (kind, value) in self.spent:
            return f"{kind} {value!r} of {key!r} was returned before by a rolled-back transaction"
        if (
            Law.MONOTONIC in laws
            and sequential
            and kind in self.latest
            and not (value > self.latest[kind])
        ):
            return f"{kind} {value!r} of {key!r} is not above the latest {self.latest[kind]!r}"
        if slot in self.values and self.owners.get((kind, old)) == key:
            del self.owners[(kind, old)]
        self.values[slot] = value
        self.owners[(kind, value)] = key
        if Law.MONOTONIC in laws and (kind not in self.latest or value > self.latest[kind]):
            self.latest[kind] = value
        return None

    def retire(self, kind: str, key: Hashable) -> None:
        """The entity is gone: forget its value, and never accept it again as FRESH."""
        value = self.values.pop((kind, key), None)
        if value is not None and self.owners.get((kind, value)) == key:
            del self.owners[(kind, value)]
            self.spent.add((kind, value))


def equal_results(expected: Any, actual: Any, args: tuple[Any, ...]) -> Iterator[str]:
    """The default comparison: the model's result and the target's are equal."""
    if expected != actual:
        yield f"result: model={expected!r} db={actual!r}"


def no_opaque(result: Any, args: tuple[Any, ...]) -> Iterable[Opaque]:
    return ()


def no_locks(args: tuple[Any, ...]) -> Iterable[str]:
    return ()


def same_result(actual: Any) -> Any:
    return actual


@attrs.frozen
class Operation:
    """Every per-operation fact, in one row.

    ``compare(expected, actual, args)`` yields one line per difference; ``opaque(result,
    args)`` the values of a result the model cannot predict; ``locks(args)`` the keys a
    successful call keeps locked until its transaction ends (contention rules aim at
    them); ``from_db(result)`` what a rule gets back when only the database answered
    (interleaved machines learn the model's side later).
    """

    name: str
    reads_only: bool = False
    compare: Callable[[Any, Any, tuple[Any, ...]], Iterable[str]] = equal_results
    opaque: Callable[[Any, tuple[Any, ...]], Iterable[Opaque]] = no_opaque
    locks: Callable[[tuple[Any, ...]], Iterable[str]] = no_locks
    from_db: Callable[[Any], Any] = same_result


def operation_table(*operations: Operation) -> Mapping[str, Operation]:
    """Operations by name; a name given twice is a definition error."""
    table: dict[str, Operation] = {}
    for op in operations:
        if op.name in table:
            raise InvalidDefinition(f"operation {op.name!r} is declared twice")
        table[op.name] = op
    return table


@attrs.frozen
class Capabilities:
    """What a target declares about itself, so nothing it lacks is faked or failed.

    ``unsupported``: operations it does not have (their rules skip, the coverage report
    lists them). ``not_compared``: paths of state fields it does not keep, projected
    out of *both* states (``"branches.*.version"``: ``*`` is every mapping value).
    ``inputs``: narrower strategies for named inputs (``"branch_name"``) where the
    system rejects by design what the spec's default draws.
    ``transaction_safe``: its operations behave the same inside the caller's open
    transaction as on their own (no COMMIT or ROLLBACK of the caller's transaction, no
    statement that refuses a transaction block, no deferred constraint, no behaviour
    that depends on ``now()`` or the transaction id, no work through another connection
    such as ``dblink``, which commits on its own): sequential machines then run each
    example in one transaction rolled back at its end, on a warm backend
    (docs/performance.md#warm-examples).
    """

    unsupported: frozenset[str] = frozenset()
    not_compared: tuple[str, ...] = ()
    inputs: Mapping[str, SearchStrategy[Any]] = attrs.field(factory=dict)
    transaction_safe: bool = False


class InvalidDefinition(InvalidTarget):
    """A spec, machine or target is defined wrongly; raised before any example runs."""


class Spec(Generic[M, S]):
    """A kind of system: its model, its operations, its state, its errors.

    Subclass it and set ``name`` and ``operations``; override :meth:`initial_model`
    and :meth:`expected`. Everything else has a default.
    """

    name: ClassVar[str] = ""
    operations: ClassVar[Mapping[str, Operation]] = {}
    #: Error kind -> its SQLSTATE, for the default classifier and plausibility.
    error_kinds: ClassVar[Mapping[str, str]] = {}
    legal_aborts: ClassVar[Mapping[str, str]] = LEGAL_ABORTS
    #: SQLSTATE classes of the errors Postgres itself may raise for this spec.
    postgres_error_classes: ClassVar[frozenset[str]] = frozenset({"22", "23", "42", "0A"})

    def initial_model(self) -> M:
        raise NotImplementedError(f"{type(self).__qualname__} must define initial_model()")

    def clone(self, model: M) -> M:
        """An independent copy (the oracle searches over clones)."""
        return copy.deepcopy(model)

    def bindings(self, model: M) -> Bindings:
        """The opaque values the model keeps; by default its ``bindings`` attribute."""
        found = getattr(model, "bindings", None)
        if not isinstance(found, Bindings):
            raise InvalidDefinition(
                f"{type(model).__qualname__} has no 'bindings' attribute of type Bindings. "
                f"To fix this, either: add one, or override {type(self).__qualname__}.bindings()."
            )
        return found

    def apply(self, model: M, operation: str, args: tuple[Any, ...]) -> Any:
        """Run one operation on the model: its result, or raise :class:`OperationError`."""
        return getattr(model, operation)(*args)

    def expected(self, model: M, *, full: bool) -> S:
        """The state the database must hold when the model is right.

        ``full=False`` is asked while transactions are open: only what can be read
        without waiting on their locks (the observer is asked the same).
        """
        raise NotImplementedError(f"{type(self).__qualname__} must define expected()")

    def state_opaque(self, model: M, state: S) -> Iterable[Opaque]:
        """Opaque values visible in an observed state for entities the model knows."""
        return ()

    def install_observer(self, conn: psycopg.Connection[Any]) -> None:
        """Install what the default observer needs (once per template database)."""

    async def observe(self, conn: psycopg.AsyncConnection[Any], target: Target, *, full: bool) -> S:
        """The default observer; a target with an ``observe`` coroutine replaces it."""
        raise InvalidDefinition(
            f"Spec {self.name!r} has no default observer and target {target.name!r} has no "
            "observe(conn, *, full) coroutine. To fix this, give the target one."
        )

    def classify(self, error: psycopg.Error) -> OperationError:
        """A Postgres error as (SQLSTATE, kind): a declared kind carried in the
        constraint-name field, a legal abort, or an error Postgres raised itself."""
        message = error.diag.message_primary or str(error)
        if error.sqlstate is None:
            # No SQLSTATE: the connection broke (a legal abort), or the driver refused
            # the call on the client side, which no state of any spec explains.
            if isinstance(error, psycopg.OperationalError):
                return OperationError(
                    self.legal_aborts.get("08006", "connection_failure"), "08006", message
                )
            return OperationError(CLIENT_ERROR, "XX000", f"{type(error).__name__}: {message}")
        sqlstate = error.sqlstate
        kind = error.diag.constraint_name
        if kind is not None and self.error_kinds.get(kind) == sqlstate:
            return OperationError(kind, sqlstate, message)
        if sqlstate in self.legal_aborts:
            return OperationError(self.legal_aborts[sqlstate], sqlstate, message)
        return OperationError(POSTGRES_ERROR, sqlstate, message)

    def plausible(self, error: OperationError) -> bool:
        """Whether some state could produce this error at all (checked even inside
        transactions that abort): a declared kind with its SQLSTATE, a legal abort, or
        a Postgres error of the declared classes. P0001 or XX000 never is."""
        if error.sqlstate in self.legal_aborts:
            return True
        if error.kind in self.error_kinds:
            return self.error_kinds[error.kind] == error.sqlstate
        return error.kind == POSTGRES_ERROR and error.sqlstate[:2] in self.postgres_error_classes

    def operation(self, name: str) -> Operation:
        """The row of ``name``; an unknown name is a definition error naming the fix."""
        try:
            return self.operations[name]
        except KeyError:
            known = ", ".join(sorted(self.operations))
            raise InvalidDefinition(
                f"Spec {self.name!r} has no operation {name!r} (it has: {known}). To fix "
                "this, either: add an Operation row for it, or call one of those."
            ) from None


__all__ = [
    "CONTENT_HASH",
    "ENTITY_KEY",
    "LEGAL_ABORTS",
    "LOOKUP",
    "POSTGRES_ERROR",
    "RANDOM_KEY",
    "Bindings",
    "Capabilities",
    "InvalidDefinition",
    "Law",
    "Opaque",
    "Operation",
    "OperationError",
    "Spec",
    "equal_results",
    "operation_table",
]
