-- The store's tables (docs/domain.md, "Store tables") plus what the functions need:
-- the recorded tree of each branch and the tree of each commit (jsonb, for verify,
-- version bumps and merges), and each migration's operations and inverse.
--
-- A tree as jsonb (vstore.tree_json):
--   {"tables":  {"<name>": {"columns": [{"name", "type", "nullable", "default"}, ...]}},
--    "indexes": {"<name>": {"table": "<t>", "columns": ["<c>", ...], "unique": bool}}}
-- "type" is format_type(), "default" is pg_get_expr() (or null): what the catalog
-- shows, so two trees are equal exactly when Postgres would print the same.

CREATE SCHEMA vstore;

CREATE TABLE vstore.branches (
    pk          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    identifier  text NOT NULL CONSTRAINT branches_identifier_key UNIQUE,
    parent_pk   bigint NULL REFERENCES vstore.branches (pk),
    head_pk     bigint NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'deleted')),
    version     text NOT NULL CHECK (version ~ '^[0-9]+\.[0-9]+\.[0-9]+$'),
    schema_name text NOT NULL,
    tree_hash   text NOT NULL,
    tree        jsonb NOT NULL
);

CREATE TABLE vstore.commits (
    pk          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    identifier  text NOT NULL UNIQUE,
    branch_pk   bigint NOT NULL REFERENCES vstore.branches (pk),
    message     text NOT NULL,
    schema_hash text NOT NULL,
    version     text NOT NULL,
    tree        jsonb NOT NULL
);

-- Checked per statement; only install (90_init.sql) defers it, main and its root commit
-- pointing at each other.
ALTER TABLE vstore.branches
    ADD CONSTRAINT branches_head_pk_fkey FOREIGN KEY (head_pk) REFERENCES vstore.commits (pk)
    DEFERRABLE INITIALLY IMMEDIATE;

CREATE TABLE vstore.commit_parents (
    commit_pk bigint NOT NULL REFERENCES vstore.commits (pk),
    position  int NOT NULL CHECK (position IN (0, 1)),
    parent_pk bigint NOT NULL REFERENCES vstore.commits (pk),
    PRIMARY KEY (commit_pk, position)
);
CREATE INDEX commit_parents_parent_pk_idx ON vstore.commit_parents (parent_pk);

CREATE TABLE vstore.migrations (
    pk         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    identifier text NOT NULL CONSTRAINT migrations_identifier_key UNIQUE,
    branch_pk  bigint NOT NULL REFERENCES vstore.branches (pk),
    checksum   text NOT NULL,
    status     text NOT NULL CHECK (status IN ('applied', 'rolled_back')),
    operations jsonb NOT NULL,
    inverse    jsonb NOT NULL
);
CREATE INDEX migrations_branch_pk_idx ON vstore.migrations (branch_pk, pk);

-- The install-time state (branch main, its root commit) needs vstore.tree_hash and
-- vstore.commit_identifier from 10_canonical.sql, so it lives in 90_init.sql.

-- Result rows of the operations (SELECT * FROM vstore.<op>(...) returns one of these).
CREATE TYPE vstore.trinity_id AS (pk bigint, id uuid, identifier text);
CREATE TYPE vstore.commit_result AS (
    pk bigint, id uuid, identifier text, version text, schema_hash text);
CREATE TYPE vstore.migration_result AS (pk bigint, id uuid, identifier text, checksum text);
-- kind: up_to_date (no commit), fast_forward (the new head), merge (the merge commit).
CREATE TYPE vstore.merge_result AS (
    kind text, pk bigint, id uuid, identifier text, version text);
CREATE TYPE vstore.drift AS (branch text, objects text[]);
