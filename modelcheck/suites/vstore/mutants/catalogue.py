"""The mutants: one class per bug, each the reference with one function replaced.

A mutant is written as a :class:`Mutation`: which reference function it copies, and
the one snippet of that function it changes (``old`` must occur exactly once). The
copy is installed as ``CREATE OR REPLACE FUNCTION`` through the reference target's
``extra_sql`` hook, so a mutant is always "the reference plus one diff"::

    class MessageTrimmed(Mutant):
        name = "mutant-message-trimmed"
        mutation = Mutation("50_commits.sql", "commit", "ARRAY[b.head_pk], message)",
                            "ARRAY[b.head_pk], btrim(message))")
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any, ClassVar, Final, Literal

import attrs

from modelcheck.spec import Capabilities
from modelcheck.suites.vstore.reference.target import ReferenceTarget

#: The machines a mutant can name as its killers, by ``machines/test_<name>.py``.
MachineName = Literal[
    "branches", "commits", "migrations", "merges", "combined", "concurrency", "faults"
]
MACHINES: Final[tuple[MachineName, ...]] = (
    "branches",
    "commits",
    "migrations",
    "merges",
    "combined",
    "concurrency",
    "faults",
)
#: Bug classes, in the order the catalogue lists them.
BUG_CLASSES: Final = (
    "locking",
    "trinity ids",
    "semantic versions",
    "schema hashing",
    "names and messages",
    "look-ups",
    "limits",
    "migrations",
    "merges",
    "deletes",
    "error codes",
    "isolation",
)


class MutationError(ValueError):
    """A mutation does not apply to the reference SQL (the reference changed)."""


def reference_function(file: str, function: str) -> str:
    """The text of ``vstore.<function>`` as the reference's ``sql/<file>`` defines it."""
    text = (
        resources.files("modelcheck.suites.vstore.reference")
        .joinpath("sql", file)
        .read_text("utf-8")
    )
    start = re.search(
        rf"^CREATE (?:OR REPLACE )?FUNCTION vstore\.{re.escape(function)}\(", text, re.M
    )
    if start is None:
        raise MutationError(f"sql/{file} defines no function vstore.{function}")
    following = re.search(r"^CREATE ", text[start.end() :], re.M)
    end = start.end() + following.start() if following else len(text)
    lines = text[start.start() : end].rstrip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].startswith("--")):
        lines.pop()  # the next definition's leading comment
    return "\n".join(lines) + "\n"


@attrs.frozen
class Mutation:
    """Copy ``vstore.<function>`` from ``sql/<file>`` with ``old`` replaced by ``new``."""

    file: str
    function: str
    old: str
    new: str

    def sql(self) -> str:
        """The ``CREATE OR REPLACE FUNCTION`` statement that installs the mutant."""
        original = reference_function(self.file, self.function)
        count = original.count(self.old)
        if count != 1:
            raise MutationError(
                f"mutation of vstore.{self.function}: the snippet {self.old!r} occurs "
                f"{count} times in sql/{self.file}, expected exactly once. To fix this, "
                "quote a longer, unique snippet of the current reference."
            )
        mutated = original.replace(self.old, self.new)
        return re.sub(r"^CREATE (OR REPLACE )?FUNCTION", "CREATE OR REPLACE FUNCTION", mutated)


class Mutant(ReferenceTarget):
    """The reference target with one function replaced by its :attr:`mutation`."""

    name = "mutant"
    bug_class: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: The machines expected to kill it, tried in this order.
    killers: ClassVar[tuple[MachineName, ...]] = ()
    mutation: ClassVar[Mutation]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.extra_sql = (cls.mutation.sql(),)


# ------------------------------------------------------------------------ locking


class CommitWithoutLock(Mutant):
    name = "mutant-commit-no-lock"
    bug_class = "locking"
    description = (
        "commit reads the branch row without FOR UPDATE: two concurrent commits on one "
        "branch both take the old head (lost update, forked history)"
    )
    killers = ("concurrency",)
    mutation = Mutation(
        "50_commits.sql",
        "commit",
        "b := vstore.lock_active_branch(branch);",
        "SELECT * INTO b FROM vstore.branches x WHERE x.identifier = branch;\n"
        "    PERFORM vstore.check_active(b, branch);",
    )


class DeleteWithoutWait(Mutant):
    name = "mutant-delete-no-wait"
    bug_class = "locking"
    description = (
        "delete_branch checks the branch without locking its row, so it does not wait "
        "for a concurrent delete or commit and acts on a stale status"
    )
    killers = ("concurrency",)
    mutation = Mutation(
        "40_branches.sql",
        "delete_branch",
        "b := vstore.lock_active_branch(name);",
        "SELECT * INTO b FROM vstore.branches x WHERE x.identifier = name;\n"
        "    PERFORM vstore.check_active(b, name);",
    )


# -------------------------------------------------------------------- trinity ids


class BranchPkMaxPlusOne(Mutant):
    name = "mutant-branch-pk-max-plus-one"
    bug_class = "trinity ids"
    description = (
        "a new branch's pk is max(pk)+1 instead of the identity: concurrent creators "
        "take the same pk (a unique violation, or a pk reused after a rollback)"
    )
    killers = ("concurrency",)
    mutation = Mutation(
        "40_branches.sql",
        "create_branch",
        "INSERT INTO vstore.branches (identifier, parent_pk, head_pk, status, version, "
        "schema_name,\n                                     tree_hash, tree)\n"
        "        VALUES (name, src.pk,",
        "INSERT INTO vstore.branches (pk, identifier, parent_pk, head_pk, status, version, "
        "schema_name,\n                                     tree_hash, tree)\n"
        "        OVERRIDING SYSTEM VALUE\n"
        "        VALUES ((SELECT coalesce(max(x.pk), 0) + 1 FROM vstore.branches x), name, src.pk,",
    )


class BranchIdChangesOnCommit(Mutant):
    name = "mutant-branch-id-changes"
    bug_class = "trinity ids"
    description = (
        "a commit rewrites the branch row with a fresh id (upsert-style), so a branch's "
        "public id changes on every commit"
    )
    killers = ("commits", "combined")
    mutation = Mutation(
        "50_commits.sql",
        "add_commit",
        "SET head_pk = c.pk, version = c.version, tree_hash = digest, tree = c.tree",
        "SET head_pk = c.pk, version = c.version, tree_hash = digest, tree = c.tree,\n"
        "        id = gen_random_uuid()",
    )


class MigrationIdentifierReused(Mutant):
    name = "mutant-migration-identifier-reused"
    bug_class = "trinity ids"
    description = (
        "a rolled-back migration's record is discarded, so its identifier can be "
        "applied again (with a new pk) instead of migration_exists/checksum_mismatch"
    )
    killers = ("migrations", "combined")
    mutation = Mutation(
        "60_migrations.sql",
        "apply_migration",
        "    digest := vstore.operations_checksum(operations);\n",
        "    digest := vstore.operations_checksum(operations);\n"
        "    DELETE FROM vstore.migrations x\n"
        "    WHERE x.identifier = apply_migration.identifier AND x.status = 'rolled_back';\n",
    )


class CommitPkMaxPlusOne(Mutant):
    name = "mutant-commit-pk-max-plus-one"
    bug_class = "trinity ids"
    description = (
        "a new commit's pk is max(pk)+1 instead of the identity: a pk a rolled-back "
        "transaction returned is handed out again, concurrent committers collide"
    )
    killers = ("concurrency",)
    mutation = Mutation(
        "50_commits.sql",
        "add_commit",
        "INSERT INTO vstore.commits (identifier, branch_pk, message, schema_hash, version, tree)"
        "\n    VALUES (vstore.commit_identifier(",
        "INSERT INTO vstore.commits (pk, identifier, branch_pk, message, schema_hash, version,"
        " tree)\n"
        "    OVERRIDING SYSTEM VALUE\n"
        "    VALUES ((SELECT coalesce(max(x.pk), 0) + 1 FROM vstore.commits x),\n"
        "            vstore.commit_identifier(",
    )


# -------------------------------------------------------------- semantic versions


class TypeChangeNotMajor(Mutant):
    name = "mutant-semver-type-change-not-major"
    bug_class = "semantic versions"
    description = "a column whose type changed counts as unchanged: a patch bump, not major"
    killers = ("migrations", "combined")
    mutation = Mutation(
        "50_commits.sql",
        "version_change",
        "WHERE n.tbl = o.tbl AND n.name = o.name AND n.type = o.type))",
        "WHERE n.tbl = o.tbl AND n.name = o.name))",
    )


class MinorKeepsPatch(Mutant):
    name = "mutant-semver-no-patch-reset"
    bug_class = "semantic versions"
    description = "a minor bump keeps the patch number (0.0.3 -> 0.1.3, not 0.1.0)"
    killers = ("migrations", "combined")
    mutation = Mutation(
        "50_commits.sql",
        "bump_version",
        "WHEN 'minor' THEN format('%s.%s.0', v[1], v[2] + 1)",
        "WHEN 'minor' THEN format('%s.%s.%s', v[1], v[2] + 1, v[3])",
    )


# ----------------------------------------------------------------- schema hashing


class HashIgnoresColumnOrder(Mutant):
    name = "mutant-hash-ignores-column-order"
    bug_class = "schema hashing"
    description = "the schema hash lists columns by name, not attnum: reordering is invisible"
    killers = ("migrations", "combined")
    mutation = Mutation(
        "10_canonical.sql", "tree_canonical_text", "'' ORDER BY a.attnum)", "'' ORDER BY a.attname)"
    )


class HashIgnoresTypmod(Mutant):
    name = "mutant-hash-ignores-typmod"
    bug_class = "schema hashing"
    description = "the schema hash prints types without their modifier: varchar(5) = varchar(50)"
    killers = ("migrations", "combined")
    mutation = Mutation(
        "10_canonical.sql",
        "tree_canonical_text",
        "format_type(a.atttypid, a.atttypmod)",
        "format_type(a.atttypid, NULL)",
    )


class HashIgnoresDefaults(Mutant):
    name = "mutant-hash-ignores-defaults"
    bug_class = "schema hashing"
    description = "the schema hash leaves out column defaults"
    killers = ("migrations", "combined")
    mutation = Mutation(
        "10_canonical.sql",
        "tree_canonical_text",
        "vstore.f(coalesce(pg_get_expr(d.adbin, 0), ''))",
        "vstore.f('')",
    )


class HashCaseFolds(Mutant):
    name = "mutant-hash-case-folds"
    bug_class = "schema hashing"
    description = "the schema hash lower-cases column names: Id and id hash alike"
    killers = ("migrations", "combined")
    mutation = Mutation(
        "10_canonical.sql",
        "tree_canonical_text",
        "'C ' || vstore.f(a.attname::text)",
        "'C ' || vstore.f(lower(a.attname::text))",
    )


class HashIgnoresPlainIndexes(Mutant):
    name = "mutant-hash-ignores-indexes"
    bug_class = "schema hashing"
    description = "the schema hash includes only unique indexes (it hashes 'constraints')"
    killers = ("migrations", "combined")
    mutation = Mutation(
        "10_canonical.sql",
        "tree_canonical_text",
        "WHERE i.indrelid = c.oid), '')",
        "WHERE i.indrelid = c.oid AND i.indisunique), '')",
    )


class HashSortsIndexColumns(Mutant):
    name = "mutant-hash-sorts-index-columns"
    bug_class = "schema hashing"
    description = "the schema hash lists an index's columns by name, not key order: (d, c) = (c, d)"
    killers = ("migrations", "combined")
    mutation = Mutation(
        "10_canonical.sql",
        "tree_canonical_text",
        "string_agg(vstore.f(ka.attname::text), ',' ORDER BY k.n)",
        "string_agg(vstore.f(ka.attname::text), ',' ORDER BY ka.attname)",
    )


# ------------------------------------------------------------- names and messages


class MessageTrimmed(Mutant):
    name = "mutant-message-trimmed"
    bug_class = "names and messages"
    description = "commit messages are stored trimmed of surrounding whitespace"
    killers = ("commits", "combined")
    mutation = Mutation(
        "50_commits.sql",
        "commit",
        "ARRAY[b.head_pk], message)",
        "ARRAY[b.head_pk], btrim(message))",
    )


class MessageTruncated(Mutant):
    name = "mutant-message-truncated"
    bug_class = "names and messages"
    description = "commit messages are silently truncated to 255 characters"
    killers = ("commits", "combined")
    mutation = Mutation(
        "50_commits.sql",
        "commit",
        "ARRAY[b.head_pk], message)",
        "ARRAY[b.head_pk], left(message, 255))",
    )


class BranchNameLowercased(Mutant):
    name = "mutant-branch-name-lowercased"
    bug_class = "names and messages"
    description = "branch names are lower-cased on create: Feat becomes feat"
    killers = ("branches", "commits", "combined")
    mutation = Mutation(
        "40_branches.sql",
        "create_branch",
        "PERFORM vstore.check_name(name, 'branch name');\n",
        "PERFORM vstore.check_name(name, 'branch name');\n    name := lower(name);\n",
    )


# ------------------------------------------------------------------------ look-ups
# docs/domain.md: names and identifiers are compared byte for byte. Each mutant below
# compares them some friendlier way, which the look-up rules' variants expose.


class LookupCaseInsensitive(Mutant):
    name = "mutant-lookup-case-insensitive"
    bug_class = "look-ups"
    description = (
        "branches are looked up case-insensitively (lower(identifier) = lower(name)): "
        "committing to, deleting or branching from 'FEAT' acts on 'feat'"
    )
    killers = ("branches", "commits", "combined")
    mutation = Mutation(
        "40_branches.sql",
        "lock_active_branch",
        "WHERE identifier = name FOR UPDATE;",
        "WHERE lower(identifier) = lower(name)\n    ORDER BY pk LIMIT 1 FOR UPDATE;",
    )


class LogNormalisesNfc(Mutant):
    name = "mutant-log-normalises-nfc"
    bug_class = "look-ups"
    description = (
        "log looks the branch up after Unicode NFC normalisation: the decomposed "
        "spelling of 'ünï' finds the precomposed branch instead of branch_not_found"
    )
    killers = ("commits", "branches", "combined")
    mutation = Mutation(
        "80_reads.sql",
        "log",
        "WHERE x.identifier = branch;",
        "WHERE normalize(x.identifier, NFC) = normalize(branch, NFC)\n    ORDER BY x.pk LIMIT 1;",
    )


class ResolveTrimsKey(Mutant):
    name = "mutant-resolve-trims-key"
    bug_class = "look-ups"
    description = "resolve trims the key before an identifier look-up: ' main' finds main"
    killers = ("branches", "commits", "combined")
    mutation = Mutation(
        "80_reads.sql", "resolve", "INTO result USING key;", "INTO result USING btrim(key);"
    )


class BranchExistsNfkc(Mutant):
    name = "mutant-branch-exists-nfkc"
    bug_class = "look-ups"
    description = (
        "create_branch finds an existing name after NFKC normalisation: fullwidth "
        "'\uff46\uff45\uff41\uff54' or a decomposed 'ü' is refused with branch_exists, "
        "though it is another name"
    )
    killers = ("branches", "commits", "combined")
    mutation = Mutation(
        "40_branches.sql",
        "create_branch",
        "IF EXISTS (SELECT FROM vstore.branches WHERE identifier = name) THEN",
        "IF EXISTS (SELECT FROM vstore.branches\n"
        "               WHERE normalize(identifier, NFKC) = normalize(name, NFKC)) THEN",
    )


class RollbackLowercasesIdentifier(Mutant):
    name = "mutant-rollback-lowercases-identifier"
    bug_class = "look-ups"
    description = (
        "rollback_migration lower-cases the identifier it looks up (identifiers are "
        "lower-case anyway): '0001_ADD' rolls back 0001_add instead of migration_not_found"
    )
    killers = ("migrations", "combined")
    mutation = Mutation(
        "60_migrations.sql",
        "rollback_migration",
        "WHERE x.identifier = rollback_migration.identifier;",
        "WHERE x.identifier = lower(rollback_migration.identifier);",
    )


# -------------------------------------------------------------------------- limits
# Names: at most 63 bytes; messages: at most 4096 characters; only '' is empty.


class NameLimitInCharacters(Mutant):
    name = "mutant-name-limit-in-characters"
    bug_class = "limits"
    description = "names are limited to 63 characters, not 63 bytes: 'x' * 62 + 'é' passes"
    killers = ("branches", "commits", "combined")
    mutation = Mutation(
        "20_validation.sql",
        "check_name",
        "IF octet_length(name) > 63 THEN",
        "IF char_length(name) > 63 THEN",
    )


class BlankNameRejected(Mutant):
    name = "mutant-blank-name-rejected"
    bug_class = "limits"
    description = (
        "a name of spaces counts as empty (btrim(name) = ''): invalid_name, though only '' is"
    )
    killers = ("branches", "commits", "combined")
    mutation = Mutation(
        "20_validation.sql",
        "check_name",
        "IF name IS NULL OR name = '' THEN",
        "IF name IS NULL OR btrim(name) = '' THEN",
    )


class MessageLimitInBytes(Mutant):
    name = "mutant-message-limit-in-bytes"
    bug_class = "limits"
    description = (
        "commit messages are limited to 4096 bytes, not characters: 4096 'é' are message_too_long"
    )
    killers = ("commits", "combined")
    mutation = Mutation(
        "20_validation.sql",
        "check_message",
        "IF char_length(message) > 4096 THEN",
        "IF octet_length(message) > 4096 THEN",
    )


class MessageLimitAfterTrim(Mutant):
    name = "mutant-message-limit-after-trim"
    bug_class = "limits"
    description = (
        "the message limit is checked on the trimmed message (the stored one is not "
        "trimmed): 4096 characters plus a trailing space pass"
    )
    killers = ("commits", "combined")
    mutation = Mutation(
        "20_validation.sql",
        "check_message",
        "IF char_length(message) > 4096 THEN",
        "IF char_length(btrim(message)) > 4096 THEN",
    )


# ----------------------------------------------------------------------- migrations


class MigrationNotAtomic(Mutant):
    name = "mutant-migration-not-atomic"
    bug_class = "migrations"
    description = (
        "each operation runs in its own subtransaction that swallows its error: a "
        "failing migration is applied partially and recorded"
    )
    killers = ("migrations", "combined")
    mutation = Mutation(
        "30_trees.sql",
        "run_operations",
        "        PERFORM vstore.run_operation(schema_name, op);\n",
        "        BEGIN\n"
        "            PERFORM vstore.run_operation(schema_name, op);\n"
        "        EXCEPTION WHEN OTHERS THEN\n"
        "            NULL;\n"
        "        END;\n",
    )


class RollbackForgetsDefault(Mutant):
    name = "mutant-rollback-forgets-default"
    bug_class = "migrations"
    description = "rolling back drop_column re-adds the column without its default"
    killers = ("migrations", "combined")
    mutation = Mutation(
        "30_trees.sql",
        "operation_inverse",
        "jsonb_build_object('op', 'add_column', 'table', t, 'column', result))",
        "jsonb_build_object('op', 'add_column', 'table', t,\n"
        "                                                    'column', result || "
        "'{\"default\": null}'))",
    )


class ChecksumIgnoresRows(Mutant):
    name = "mutant-checksum-ignores-rows"
    bug_class = "migrations"
    description = "the checksum leaves out insert_rows' rows (it hashes only the schema part)"
    killers = ("migrations", "combined")
    mutation = Mutation(
        "10_canonical.sql",
        "operations_checksum",
        "convert_to(ops::text, 'UTF8')",
        "convert_to((SELECT jsonb_agg(o - 'rows' ORDER BY n)\n"
        "                                FROM jsonb_array_elements(ops) WITH ORDINALITY x (o, n)"
        ")::text, 'UTF8')",
    )


class RollbackKeepsTreeHash(Mutant):
    name = "mutant-rollback-keeps-tree-hash"
    bug_class = "migrations"
    description = (
        "rollback_migration undoes the DDL but leaves the branch's recorded tree and "
        "tree_hash as they were: the branch looks drifted and cannot commit"
    )
    killers = ("migrations", "combined")
    mutation = Mutation(
        "60_migrations.sql",
        "rollback_migration",
        "    UPDATE vstore.branches x\n"
        "    SET tree_hash = vstore.tree_hash(b.schema_name),"
        " tree = vstore.tree_json(b.schema_name)\n"
        "    WHERE x.pk = b.pk;\n",
        "",
    )


class RollbackDropTableForgetsIndexes(Mutant):
    name = "mutant-rollback-drop-table-forgets-indexes"
    bug_class = "migrations"
    description = (
        "the inverse of drop_table re-creates the table with its columns but not its indexes"
    )
    killers = ("migrations", "combined")
    mutation = Mutation(
        "30_trees.sql",
        "operation_inverse",
        "'columns', coalesce(result, '[]')))\n"
        "            || coalesce((SELECT jsonb_agg(vstore.index_op(key, value)"
        ' ORDER BY key COLLATE "C")\n'
        "                         FROM jsonb_each(tree -> 'indexes')"
        " WHERE value ->> 'table' = t), '[]');",
        "'columns', coalesce(result, '[]')));",
    )


class RollbackRacesStatus(Mutant):
    name = "mutant-rollback-checks-before-lock"
    bug_class = "locking"
    description = (
        "rollback_migration checks the migration's status before it waits for the "
        "branch lock and never re-reads it: two concurrent rollbacks both run the inverse"
    )
    killers = ("concurrency",)
    mutation = Mutation(
        "60_migrations.sql",
        "rollback_migration",
        "    SELECT * INTO STRICT m FROM vstore.migrations x WHERE x.pk = m.pk;\n",
        "",
    )


class ReapplyComparesAsSets(Mutant):
    name = "mutant-reapply-compares-as-sets"
    bug_class = "migrations"
    description = (
        "re-applying an identifier compares the operations by jsonb containment both "
        "ways, not by checksum: reordered or repeated operations are migration_exists, "
        "not checksum_mismatch"
    )
    killers = ("migrations", "combined")
    mutation = Mutation(
        "60_migrations.sql",
        "apply_migration",
        "        IF existing.checksum IS DISTINCT FROM digest THEN\n"
        "            PERFORM vstore.raise_error('checksum_mismatch',\n"
        "                format('migration %s was applied before",
        "        IF NOT (existing.operations @> operations\n"
        "                AND operations @> existing.operations) THEN\n"
        "            PERFORM vstore.raise_error('checksum_mismatch',\n"
        "                format('migration %s was applied before",
    )


# --------------------------------------------------------------------------- merges


class MergeMissesTypeConflict(Mutant):
    name = "mutant-merge-misses-type-conflict"
    bug_class = "merges"
    description = (
        "a column whose type both sides changed differently merges silently (the "
        "target's type wins) instead of merge_conflict"
    )
    killers = ("merges", "combined")
    mutation = Mutation(
        "70_merges.sql",
        "pick",
        "IF ours IS NOT DISTINCT FROM theirs THEN",
        "IF ours IS NOT DISTINCT FROM theirs\n"
        "       OR ours - 'type' IS NOT DISTINCT FROM theirs - 'type' THEN",
    )


class FastForwardNotAncestor(Mutant):
    name = "mutant-merge-ff-not-ancestor"
    bug_class = "merges"
    description = (
        "fast-forwards when the target's schema is unchanged since the merge base, though "
        "its head is not an ancestor of the source (the target's own commits are lost)"
    )
    killers = ("merges", "combined")
    mutation = Mutation(
        "70_merges.sql",
        "merge",
        "IF vstore.is_ancestor(t_head.pk, s_head.pk) THEN",
        "IF vstore.is_ancestor(t_head.pk, s_head.pk)\n"
        "       OR t_head.schema_hash = (SELECT x.schema_hash FROM vstore.commits x\n"
        "                                WHERE x.pk = vstore.merge_base(t_head.pk, s_head.pk))"
        " THEN",
    )


class MergeParentsSwapped(Mutant):
    name = "mutant-merge-parents-swapped"
    bug_class = "merges"
    description = "a merge commit records [source, target] as parents instead of [target, source]"
    killers = ("merges", "combined")
    mutation = Mutation(
        "70_merges.sql",
        "merge",
        "ARRAY[t_head.pk, s_head.pk]",
        "ARRAY[s_head.pk, t_head.pk]",
    )


class MergeKeepsDroppedIndex(Mutant):
    name = "mutant-merge-keeps-dropped-index"
    bug_class = "merges"
    description = (
        "moving a tree to the merged one drops only indexes whose definition changed, "
        "not those the merge removed: an index dropped on the source survives the merge"
    )
    killers = ("merges", "combined")
    mutation = Mutation(
        "70_merges.sql",
        "apply_tree",
        "IF (merged -> 'indexes' -> name) IS DISTINCT FROM def THEN",
        "IF merged -> 'indexes' ? name AND (merged -> 'indexes' -> name) IS DISTINCT FROM def THEN",
    )


# -------------------------------------------------------------------------- deletes


class DeletedNameReusable(Mutant):
    name = "mutant-deleted-name-reusable"
    bug_class = "deletes"
    description = (
        "a deleted branch's name is freed (the old row renamed), so create_branch "
        "resurrects the name instead of branch_exists"
    )
    killers = ("branches", "combined")
    mutation = Mutation(
        "40_branches.sql",
        "create_branch",
        "    IF EXISTS (SELECT FROM vstore.branches WHERE identifier = name) THEN\n",
        "    UPDATE vstore.branches x"
        " SET identifier = x.identifier || ' (deleted ' || x.pk || ')'\n"
        "    WHERE x.identifier = name AND x.status = 'deleted';\n"
        "    IF EXISTS (SELECT FROM vstore.branches WHERE identifier = name) THEN\n",
    )


class MainDeletable(Mutant):
    name = "mutant-main-deletable"
    bug_class = "deletes"
    description = "delete_branch protects 'master', not 'main': main can be deleted"
    killers = ("branches", "combined")
    mutation = Mutation(
        "40_branches.sql",
        "delete_branch",
        "IF b.identifier = 'main' THEN",
        "IF b.identifier = 'master' THEN",
    )


class CommitBeforeDriftCheck(Mutant):
    name = "mutant-commit-before-drift-check"
    bug_class = "migrations"
    description = (
        "commit records the commit first and only then checks for drift, in a block that "
        "turns the failed check into a warning: the commit of a drifted tree stays"
    )
    killers = ("faults",)
    mutation = Mutation(
        "50_commits.sql",
        "commit",
        "    IF vstore.tree_hash(b.schema_name) IS DISTINCT FROM b.tree_hash THEN\n",
        "    c := vstore.add_commit(b, ARRAY[b.head_pk], message);\n"
        "    BEGIN\n"
        "        IF vstore.tree_hash(b.schema_name) IS DISTINCT FROM b.tree_hash THEN\n"
        "            RAISE EXCEPTION USING ERRCODE = '55000';\n"
        "        END IF;\n"
        "    EXCEPTION WHEN object_not_in_prerequisite_state THEN\n"
        "        RAISE WARNING 'branch % drifted', branch;\n"
        "    END;\n"
        "    RETURN (c.pk, c.id, c.identifier, c.version, c.schema_hash)::vstore.commit_result;\n"
        "    IF false THEN\n",
    )


class DeleteDropsSchemaSeparately(Mutant):
    name = "mutant-delete-drops-schema-separately"
    bug_class = "deletes"
    description = (
        "delete_branch drops the schema first, in its own transaction (a dblink "
        "connection), then checks that the branch may be deleted: deleting main fails "
        "but its working tree is gone"
    )
    killers = ("branches", "combined")
    #: Its dblink connection commits on its own: that would outlive a warm example's
    #: rollback (and wait on that example's locks), so it runs on the cold path.
    capabilities = Capabilities()
    mutation = Mutation(
        "40_branches.sql",
        "delete_branch",
        "    IF b.identifier = 'main' THEN\n        PERFORM vstore.raise_error('protected_branch'",
        "    PERFORM vstore.dblink_exec(\n"
        "        format('dbname=%L host=%L port=%L user=%L', current_database(),\n"
        "               split_part(current_setting('unix_socket_directories'), ',', 1),\n"
        "               current_setting('port'), current_user),\n"
        "        format('DROP SCHEMA IF EXISTS %I CASCADE', b.schema_name));\n"
        "    IF b.identifier = 'main' THEN\n"
        "        PERFORM vstore.raise_error('protected_branch'",
    )


class DeleteLeavesTables(Mutant):
    name = "mutant-delete-leaves-tables"
    bug_class = "deletes"
    description = (
        "delete_branch drops the working tree without CASCADE and ignores the failure: "
        "a deleted branch that had tables keeps its schema"
    )
    killers = ("combined", "concurrency")
    mutation = Mutation(
        "40_branches.sql",
        "delete_branch",
        "    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', b.schema_name);\n",
        "    BEGIN\n"
        "        EXECUTE format('DROP SCHEMA IF EXISTS %I', b.schema_name);\n"
        "    EXCEPTION WHEN dependent_objects_still_exist THEN\n"
        "        NULL;  -- keep a non-empty tree rather than fail the delete\n"
        "    END;\n",
    )


DeleteDropsSchemaSeparately.extra_sql = (
    "CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA vstore",
    *DeleteDropsSchemaSeparately.extra_sql,
)


# ---------------------------------------------------------------------- error codes


class SerializationRewrapped(Mutant):
    name = "mutant-serialization-rewrapped"
    bug_class = "error codes"
    description = (
        "merge catches class-40 errors while locking (40001, 40P01) and re-raises them "
        "as a generic P0001, so clients cannot tell they may retry"
    )
    killers = ("concurrency",)
    mutation = Mutation(
        "70_merges.sql",
        "merge",
        "    FOR r IN SELECT * FROM vstore.branches b WHERE b.identifier IN (source, target)\n"
        "             ORDER BY b.pk FOR UPDATE LOOP\n"
        "        IF r.identifier = source THEN src := r; END IF;\n"
        "        IF r.identifier = target THEN tgt := r; END IF;\n"
        "    END LOOP;\n",
        "    BEGIN\n"
        "        FOR r IN SELECT * FROM vstore.branches b WHERE b.identifier IN (source, target)\n"
        "                 ORDER BY b.pk FOR UPDATE LOOP\n"
        "            IF r.identifier = source THEN src := r; END IF;\n"
        "            IF r.identifier = target THEN tgt := r; END IF;\n"
        "        END LOOP;\n"
        "    EXCEPTION WHEN transaction_rollback THEN\n"
        "        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'merge failed: ' || SQLERRM;\n"
        "    END;\n",
    )


# ---------------------------------------------------------------------- isolation


class LogOutsideTransaction(Mutant):
    name = "mutant-log-outside-transaction"
    bug_class = "isolation"
    description = (
        "log reads the branch head over a dblink connection, so that a log never waits "
        "behind a commit: inside a transaction it misses that transaction's own commits"
    )
    killers = ("concurrency",)
    #: Its dblink connection sees committed data only: a warm example commits nothing,
    #: so it runs on the cold path, where only a read inside a transaction tells.
    capabilities = Capabilities()
    mutation = Mutation(
        "80_reads.sql",
        "log",
        "    PERFORM vstore.check_active(b, branch);\n    RETURN (",
        "    PERFORM vstore.check_active(b, branch);\n"
        "    b.head_pk := coalesce((SELECT t.h FROM vstore.dblink(\n"
        "        format('dbname=%L host=%L port=%L user=%L', current_database(),\n"
        "               split_part(current_setting('unix_socket_directories'), ',', 1),\n"
        "               current_setting('port'), current_user),\n"
        "        format('SELECT head_pk FROM vstore.branches WHERE identifier = %L', branch))\n"
        "        AS t (h bigint)), b.head_pk);\n"
        "    RETURN (",
    )


LogOutsideTransaction.extra_sql = (
    "CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA vstore",
    *LogOutsideTransaction.extra_sql,
)


# ------------------------------------------------------------------------ catalogue


@attrs.frozen
class MutantInfo:
    """What the catalogue says about one mutant (docs/mutants.md is built from this)."""

    name: str
    bug_class: str
    description: str
    killers: tuple[MachineName, ...]
    path: str
    function: str


MUTANTS: Final[tuple[type[Mutant], ...]] = (
    CommitWithoutLock,
    DeleteWithoutWait,
    RollbackRacesStatus,
    BranchPkMaxPlusOne,
    CommitPkMaxPlusOne,
    BranchIdChangesOnCommit,
    MigrationIdentifierReused,
    TypeChangeNotMajor,
    MinorKeepsPatch,
    HashIgnoresColumnOrder,
    HashIgnoresTypmod,
    HashIgnoresDefaults,
    HashCaseFolds,
    HashIgnoresPlainIndexes,
    HashSortsIndexColumns,
    MessageTrimmed,
    MessageTruncated,
    BranchNameLowercased,
    LookupCaseInsensitive,
    LogNormalisesNfc,
    ResolveTrimsKey,
    BranchExistsNfkc,
    RollbackLowercasesIdentifier,
    NameLimitInCharacters,
    BlankNameRejected,
    MessageLimitInBytes,
    MessageLimitAfterTrim,
    MigrationNotAtomic,
    CommitBeforeDriftCheck,
    RollbackForgetsDefault,
    RollbackKeepsTreeHash,
    RollbackDropTableForgetsIndexes,
    ChecksumIgnoresRows,
    ReapplyComparesAsSets,
    MergeMissesTypeConflict,
    FastForwardNotAncestor,
    MergeParentsSwapped,
    MergeKeepsDroppedIndex,
    DeletedNameReusable,
    MainDeletable,
    DeleteDropsSchemaSeparately,
    DeleteLeavesTables,
    SerializationRewrapped,
    LogOutsideTransaction,
)

CATALOGUE: Final[tuple[MutantInfo, ...]] = tuple(
    MutantInfo(
        name=cls.name,
        bug_class=cls.bug_class,
        description=cls.description,
        killers=cls.killers,
        path=f"{__name__}:{cls.__name__}",
        function=f"vstore.{cls.mutation.function}",
    )
    for cls in MUTANTS
)


def find(name: str) -> MutantInfo:
    """The catalogue entry called ``name`` (``KeyError`` lists the known names)."""
    for info in CATALOGUE:
        if info.name == name:
            return info
    raise KeyError(f"no mutant {name!r}; known: {', '.join(i.name for i in CATALOGUE)}")
