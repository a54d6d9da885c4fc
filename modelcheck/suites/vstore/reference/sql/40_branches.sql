-- Branches: locking, create_branch, delete_branch.
--
-- Locking (docs/domain.md, "Locking"): an operation first locks the rows of the
-- branches it reads the tree of or changes, SELECT ... FOR UPDATE in ascending pk
-- order, then takes the advisory lock of a name it is about to take, then reads. Every
-- operation takes its locks in that one global order (branch rows by pk, then names),
-- so no two operations can wait for each other in a cycle.

-- Lock a branch row and apply the branch checks (branch_not_found, branch_deleted).
CREATE FUNCTION vstore.lock_active_branch(name text) RETURNS vstore.branches
LANGUAGE plpgsql AS $$
DECLARE
    b vstore.branches;
BEGIN
    SELECT * INTO b FROM vstore.branches WHERE identifier = name FOR UPDATE;
    PERFORM vstore.check_active(b, name);
    RETURN b;
END
$$;

CREATE FUNCTION vstore.check_active(b vstore.branches, name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF b.pk IS NULL THEN
        PERFORM vstore.raise_error('branch_not_found', format('no branch named %s', quote_literal(name)));
    END IF;
    IF b.status = 'deleted' THEN
        PERFORM vstore.raise_error('branch_deleted', format('branch %s was deleted', quote_literal(name)));
    END IF;
END
$$;

-- Copy every table (columns, defaults, NOT NULL, rows) and index (same names) of one
-- working tree into another, empty one.
CREATE FUNCTION vstore.copy_tree(from_schema text, to_schema text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t text;
    i record;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = from_schema AND c.relkind IN ('r', 'p')
             ORDER BY c.relname COLLATE "C" LOOP
        EXECUTE format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING DEFAULTS)', to_schema, t, from_schema, t);
        EXECUTE format('INSERT INTO %I.%I SELECT * FROM %I.%I', to_schema, t, from_schema, t);
    END LOOP;
    FOR i IN SELECT key AS name, value AS def FROM jsonb_each(vstore.tree_json(from_schema) -> 'indexes')
             ORDER BY key COLLATE "C" LOOP
        EXECUTE format('CREATE %sINDEX %I ON %I.%I (%s)',
                       CASE WHEN (i.def -> 'unique')::boolean THEN 'UNIQUE ' ELSE '' END,
                       i.name, to_schema, i.def ->> 'table',
                       (SELECT string_agg(format('%I', c #>> '{}'), ', ' ORDER BY n)
                        FROM jsonb_array_elements(i.def -> 'columns') WITH ORDINALITY x (c, n)));
    END LOOP;
END
$$;

CREATE FUNCTION vstore.create_branch(name text, from_branch text)
RETURNS vstore.trinity_id
LANGUAGE plpgsql AS $$
DECLARE
    src vstore.branches;
    b vstore.branches;
    state text;
    cname text;
BEGIN
    PERFORM vstore.check_name(name, 'branch name');
    src := vstore.lock_active_branch(from_branch);
    PERFORM pg_advisory_xact_lock(hashtextextended('branch:' || name, 0));
    IF EXISTS (SELECT FROM vstore.branches WHERE identifier = name) THEN
        PERFORM vstore.raise_error('branch_exists',
            format('branch name %s was already taken (names are never reused)', quote_literal(name)));
    END IF;
    BEGIN
        INSERT INTO vstore.branches (identifier, parent_pk, head_pk, status, version, schema_name,
                                     tree_hash, tree)
        VALUES (name, src.pk, src.head_pk, 'active', src.version, '', '', '{}')
        RETURNING * INTO b;
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, cname = CONSTRAINT_NAME;
        IF cname = 'branches_identifier_key' THEN
            PERFORM vstore.raise_error('branch_exists',
                format('branch name %s was already taken (names are never reused)', quote_literal(name)));
        END IF;
        RAISE;
    END;
    b.schema_name := 'wt_' || b.pk;
    EXECUTE format('CREATE SCHEMA %I', b.schema_name);
    PERFORM vstore.copy_tree(src.schema_name, b.schema_name);
    UPDATE vstore.branches AS x
    SET schema_name = b.schema_name,
        tree_hash = vstore.tree_hash(b.schema_name),
        tree = vstore.tree_json(b.schema_name)
    WHERE x.pk = b.pk;
    RETURN (b.pk, b.id, b.identifier)::vstore.trinity_id;
END
$$;

CREATE FUNCTION vstore.delete_branch(name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    b vstore.branches;
BEGIN
    b := vstore.lock_active_branch(name);
    IF b.identifier = 'main' THEN
        PERFORM vstore.raise_error('protected_branch', 'branch ''main'' is protected and cannot be deleted');
    END IF;
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', b.schema_name);
    -- The recorded tree of a deleted branch is its (now empty) live tree.
    UPDATE vstore.branches
    SET status = 'deleted', tree_hash = vstore.tree_hash(b.schema_name), tree = vstore.tree_json(b.schema_name)
    WHERE pk = b.pk;
END
$$;
