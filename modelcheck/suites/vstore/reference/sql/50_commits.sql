-- Commits: semantic version bumps and commit().

-- What a change from old_tree to new_tree bumps (docs/domain.md, "Semantic versions"):
-- anything removed (table, column, index), a column's type changed or an index's
-- definition changed -> major; else anything added -> minor; else patch.
CREATE FUNCTION vstore.version_change(old_tree jsonb, new_tree jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    WITH old_cols AS (
        SELECT t.key AS tbl, c ->> 'name' AS name, c ->> 'type' AS type
        FROM jsonb_each(old_tree -> 'tables') t, jsonb_array_elements(t.value -> 'columns') c
    ), new_cols AS (
        SELECT t.key AS tbl, c ->> 'name' AS name, c ->> 'type' AS type
        FROM jsonb_each(new_tree -> 'tables') t, jsonb_array_elements(t.value -> 'columns') c
    )
    SELECT CASE
        WHEN EXISTS (SELECT FROM jsonb_object_keys(old_tree -> 'tables') k
                     WHERE NOT (new_tree -> 'tables') ? k)
          OR EXISTS (SELECT FROM old_cols o WHERE (new_tree -> 'tables') ? o.tbl
                       AND NOT EXISTS (SELECT FROM new_cols n
                                       WHERE n.tbl = o.tbl AND n.name = o.name AND n.type = o.type))
          OR EXISTS (SELECT FROM jsonb_each(old_tree -> 'indexes') i
                     WHERE (new_tree -> 'indexes' -> i.key) IS DISTINCT FROM i.value)
        THEN 'major'
        WHEN EXISTS (SELECT FROM jsonb_object_keys(new_tree -> 'tables') k
                     WHERE NOT (old_tree -> 'tables') ? k)
          OR EXISTS (SELECT FROM new_cols n WHERE (old_tree -> 'tables') ? n.tbl
                       AND NOT EXISTS (SELECT FROM old_cols o WHERE o.tbl = n.tbl AND o.name = n.name))
          OR EXISTS (SELECT FROM jsonb_object_keys(new_tree -> 'indexes') k
                     WHERE NOT (old_tree -> 'indexes') ? k)
        THEN 'minor'
        ELSE 'patch'
    END;
$$;

CREATE FUNCTION vstore.bump_version(version text, change text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v bigint[] := string_to_array(version, '.')::bigint[];
BEGIN
    RETURN CASE change
        WHEN 'major' THEN format('%s.0.0', v[1] + 1)
        WHEN 'minor' THEN format('%s.%s.0', v[1], v[2] + 1)
        ELSE format('%s.%s.%s', v[1], v[2], v[3] + 1)
    END;
END
$$;

-- Create a commit on a locked branch with the given parents (first = the head) and the
-- branch's live tree; move the branch's head, version and recorded tree.
CREATE FUNCTION vstore.add_commit(b vstore.branches, parents bigint[], message text)
RETURNS vstore.commits
LANGUAGE plpgsql AS $$
DECLARE
    first_parent vstore.commits;
    second_parent vstore.commits;
    tree jsonb := vstore.tree_json(b.schema_name);
    digest text := vstore.tree_hash(b.schema_name);
    version text;
    c vstore.commits;
BEGIN
    SELECT * INTO STRICT first_parent FROM vstore.commits WHERE pk = parents[1];
    IF cardinality(parents) > 1 THEN
        SELECT * INTO STRICT second_parent FROM vstore.commits WHERE pk = parents[2];
    END IF;
    version := vstore.bump_version(b.version, vstore.version_change(first_parent.tree, tree));
    INSERT INTO vstore.commits (identifier, branch_pk, message, schema_hash, version, tree)
    VALUES (vstore.commit_identifier(b.identifier, first_parent.identifier, second_parent.identifier,
                                     digest, message),
            b.pk, message, digest, version, tree)
    RETURNING * INTO c;
    INSERT INTO vstore.commit_parents (commit_pk, position, parent_pk)
    SELECT c.pk, n::int - 1, p FROM unnest(parents) WITH ORDINALITY x (p, n);
    UPDATE vstore.branches
    SET head_pk = c.pk, version = c.version, tree_hash = digest, tree = c.tree
    WHERE pk = b.pk;
    RETURN c;
END
$$;

CREATE FUNCTION vstore.commit(branch text, message text)
RETURNS vstore.commit_result
LANGUAGE plpgsql AS $$
DECLARE
    b vstore.branches;
    c vstore.commits;
BEGIN
    PERFORM vstore.check_message(message);
    b := vstore.lock_active_branch(branch);
    IF vstore.tree_hash(b.schema_name) IS DISTINCT FROM b.tree_hash THEN
        PERFORM vstore.raise_error('schema_drift',
            format('the working tree of branch %s (schema %s) was changed outside the store; see verify()',
                   quote_literal(branch), b.schema_name));
    END IF;
    c := vstore.add_commit(b, ARRAY[b.head_pk], message);
    RETURN (c.pk, c.id, c.identifier, c.version, c.schema_hash)::vstore.commit_result;
END
$$;
