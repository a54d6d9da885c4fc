-- Reads: log, resolve, verify. They take no locks.

-- Commit identifiers from the head along first parents to the root.
CREATE FUNCTION vstore.log(branch text) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    b vstore.branches;
BEGIN
    SELECT * INTO b FROM vstore.branches x WHERE x.identifier = branch;
    PERFORM vstore.check_active(b, branch);
    RETURN (
        WITH RECURSIVE chain (pk, depth) AS (
            SELECT b.head_pk, 0
            UNION ALL
            SELECT p.parent_pk, chain.depth + 1
            FROM chain JOIN vstore.commit_parents p ON p.commit_pk = chain.pk AND p.position = 0
        )
        SELECT array_agg(c.identifier ORDER BY chain.depth)
        FROM chain JOIN vstore.commits c ON c.pk = chain.pk);
END
$$;

-- The Trinity ID of a branch, commit or migration by any of its keys, given as text.
-- key_kind says which key it is ('pk', 'id' or 'identifier'; the Python target passes
-- it from the key's type). Without it the text decides, in this precedence:
--   1. an integer string (^[0-9]+$, fits bigint) is a pk;
--   2. else a UUID string (8-4-4-4-12 hex digits, any case) is an id;
--   3. else, and when 1. or 2. found nothing, the key is an identifier.
-- A branch named '42' is therefore found by name only while no branch has pk 42.
CREATE FUNCTION vstore.resolve(kind text, key text, key_kind text DEFAULT NULL)
RETURNS vstore.trinity_id
LANGUAGE plpgsql STABLE AS $$
DECLARE
    tbl text := CASE kind WHEN 'branch' THEN 'branches' WHEN 'commit' THEN 'commits'
                          WHEN 'migration' THEN 'migrations' END;
    result vstore.trinity_id;
BEGIN
    IF tbl IS NULL THEN
        PERFORM vstore.raise_error('invalid_operation',
            format('resolve: kind must be branch, commit or migration, not %s', quote_literal(kind)));
    END IF;
    IF key_kind IS NOT NULL AND key_kind NOT IN ('pk', 'id', 'identifier') THEN
        PERFORM vstore.raise_error('invalid_operation',
            format('resolve: key_kind must be pk, id or identifier, not %s', quote_literal(key_kind)));
    END IF;
    IF (key_kind = 'pk' OR key_kind IS NULL) AND key ~ '^[0-9]{1,19}$'
       AND key::numeric <= 9223372036854775807 THEN
        EXECUTE format('SELECT pk, id, identifier FROM vstore.%I WHERE pk = $1', tbl)
            INTO result USING key::bigint;
    ELSIF (key_kind = 'id' OR key_kind IS NULL)
          AND key ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        EXECUTE format('SELECT pk, id, identifier FROM vstore.%I WHERE id = $1', tbl)
            INTO result USING key::uuid;
    END IF;
    IF result.pk IS NULL AND (key_kind = 'identifier' OR key_kind IS NULL) THEN
        EXECUTE format('SELECT pk, id, identifier FROM vstore.%I WHERE identifier = $1', tbl)
            INTO result USING key;
    END IF;
    IF result.pk IS NULL THEN
        PERFORM vstore.raise_error('not_found', format('no %s with key %s', kind, quote_literal(key)));
    END IF;
    RETURN result;
END
$$;

-- Per active branch whose live tree hash differs from its recorded tree_hash: the
-- names of tables and indexes whose definition differs ("C" order); branches by name.
CREATE FUNCTION vstore.verify() RETURNS SETOF vstore.drift
LANGUAGE sql STABLE AS $$
    SELECT b.identifier, (
        SELECT coalesce(array_agg(name ORDER BY name COLLATE "C"), '{}')
        FROM (
            SELECT t.name
            FROM (SELECT jsonb_object_keys(b.tree -> 'tables') UNION
                  SELECT jsonb_object_keys(live.tree -> 'tables')) t (name)
            WHERE (b.tree -> 'tables' -> t.name) IS DISTINCT FROM (live.tree -> 'tables' -> t.name)
            UNION
            SELECT i.name
            FROM (SELECT jsonb_object_keys(b.tree -> 'indexes') UNION
                  SELECT jsonb_object_keys(live.tree -> 'indexes')) i (name)
            WHERE (b.tree -> 'indexes' -> i.name) IS DISTINCT FROM (live.tree -> 'indexes' -> i.name)
        ) d (name))
    FROM vstore.branches b
    CROSS JOIN LATERAL (SELECT vstore.tree_json(b.schema_name)) live (tree)
    WHERE b.status = 'active' AND vstore.tree_hash(b.schema_name) IS DISTINCT FROM b.tree_hash
    ORDER BY b.identifier COLLATE "C";
$$;
