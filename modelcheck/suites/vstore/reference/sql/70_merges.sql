-- Merges: ancestry, the three-way merge of trees, the DDL that moves a working tree to
-- a merged tree, and merge().

-- Every commit reachable from start through parents, start included.
CREATE FUNCTION vstore.ancestors(start bigint) RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE a (pk) AS (
        SELECT start
        UNION
        SELECT p.parent_pk FROM vstore.commit_parents p JOIN a ON p.commit_pk = a.pk
    )
    SELECT pk FROM a;
$$;

CREATE FUNCTION vstore.is_ancestor(ancestor bigint, descendant bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT ancestor IN (SELECT vstore.ancestors(descendant));
$$;

-- The common ancestor with the greatest pk.
CREATE FUNCTION vstore.merge_base(a bigint, b bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT max(x) FROM (SELECT vstore.ancestors(a) INTERSECT SELECT vstore.ancestors(b)) s (x);
$$;

-- Three-way choice; SQL NULL means "absent". A side equal to the base takes the other
-- side, equal sides are taken, anything else is a conflict.
CREATE FUNCTION vstore.pick(base jsonb, ours jsonb, theirs jsonb, what text) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF ours IS NOT DISTINCT FROM theirs THEN
        RETURN ours;
    ELSIF ours IS NOT DISTINCT FROM base THEN
        RETURN theirs;
    ELSIF theirs IS NOT DISTINCT FROM base THEN
        RETURN ours;
    END IF;
    PERFORM vstore.raise_error('merge_conflict', format('both sides changed %s differently', what));
    RETURN NULL;
END
$$;

-- A column's definition (type, nullability, default) in a columns array, or NULL.
CREATE FUNCTION vstore.column_definition(columns jsonb, column_name text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT c - 'name' FROM jsonb_array_elements(columns) c WHERE c ->> 'name' = column_name;
$$;

-- Merge per table, per column and per index (docs/domain.md, merge). ours = target.
CREATE FUNCTION vstore.merge_trees(base jsonb, ours jsonb, theirs jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    name text;
    col text;
    kb jsonb;
    ko jsonb;
    kt jsonb;
    picked jsonb;
    merged_columns jsonb;
    tables jsonb := '{}';
    indexes jsonb := '{}';
    def jsonb;
BEGIN
    FOR name IN SELECT k FROM (SELECT jsonb_object_keys(base -> 'tables') UNION
                               SELECT jsonb_object_keys(ours -> 'tables') UNION
                               SELECT jsonb_object_keys(theirs -> 'tables')) x (k)
                ORDER BY k COLLATE "C" LOOP
        kb := base -> 'tables' -> name -> 'columns';
        ko := ours -> 'tables' -> name -> 'columns';
        kt := theirs -> 'tables' -> name -> 'columns';
        IF ko IS NOT DISTINCT FROM kt OR ko IS NOT DISTINCT FROM kb OR kt IS NOT DISTINCT FROM kb THEN
            picked := vstore.pick(kb, ko, kt, format('table %s', quote_literal(name)));
            IF picked IS NOT NULL THEN
                tables := tables || jsonb_build_object(name, jsonb_build_object('columns', picked));
            END IF;
            CONTINUE;
        END IF;
        IF ko IS NULL OR kt IS NULL THEN
            PERFORM vstore.raise_error('merge_conflict',
                format('table %s was removed on one side and changed on the other', quote_literal(name)));
        END IF;
        -- Changed on both sides: the target's columns in its order, then the source's new ones.
        merged_columns := '[]';
        FOR col IN SELECT c ->> 'name' FROM jsonb_array_elements(ko) WITH ORDINALITY x (c, n) ORDER BY n LOOP
            picked := vstore.pick(vstore.column_definition(kb, col), vstore.column_definition(ko, col),
                                  vstore.column_definition(kt, col),
                                  format('column %s of table %s', quote_literal(col), quote_literal(name)));
            IF picked IS NOT NULL THEN
                merged_columns := merged_columns || jsonb_build_array(jsonb_build_object('name', col) || picked);
            END IF;
        END LOOP;
        FOR col IN SELECT c ->> 'name' FROM jsonb_array_elements(kt) WITH ORDINALITY x (c, n)
                   WHERE vstore.column_definition(ko, c ->> 'name') IS NULL ORDER BY n LOOP
            picked := vstore.pick(vstore.column_definition(kb, col), NULL, vstore.column_definition(kt, col),
                                  format('column %s of table %s', quote_literal(col), quote_literal(name)));
            IF picked IS NOT NULL THEN
                merged_columns := merged_columns || jsonb_build_array(jsonb_build_object('name', col) || picked);
            END IF;
        END LOOP;
        tables := tables || jsonb_build_object(name, jsonb_build_object('columns', merged_columns));
    END LOOP;
    FOR name IN SELECT k FROM (SELECT jsonb_object_keys(base -> 'indexes') UNION
                               SELECT jsonb_object_keys(ours -> 'indexes') UNION
                               SELECT jsonb_object_keys(theirs -> 'indexes')) x (k)
                ORDER BY k COLLATE "C" LOOP
        picked := vstore.pick(base -> 'indexes' -> name, ours -> 'indexes' -> name,
                              theirs -> 'indexes' -> name, format('index %s', quote_literal(name)));
        IF picked IS NOT NULL THEN
            indexes := indexes || jsonb_build_object(name, picked);
        END IF;
    END LOOP;
    FOR name, def IN SELECT key, value FROM jsonb_each(indexes) ORDER BY key COLLATE "C" LOOP
        IF NOT tables ? (def ->> 'table')
           OR EXISTS (SELECT FROM jsonb_array_elements_text(def -> 'columns') c
                      WHERE vstore.column_definition(tables -> (def ->> 'table') -> 'columns', c) IS NULL) THEN
            PERFORM vstore.raise_error('merge_conflict',
                format('merged index %s is on a table or column that no longer exists', quote_literal(name)));
        END IF;
        IF tables ? name THEN
            PERFORM vstore.raise_error('merge_conflict',
                format('the merged tree uses the name %s for a table and an index', quote_literal(name)));
        END IF;
    END LOOP;
    RETURN jsonb_build_object('tables', tables, 'indexes', indexes);
END
$$;

-- Move the live tree of schema_name to merged, in the documented order: drop indexes
-- gone or differing, drop tables gone, rebuild changed or new tables in name order
-- (temporary name, rows copied with old::newtype casts, new columns get their default
-- or NULL, old dropped, new renamed), create missing indexes in name order.
-- Types and defaults come from format_type()/pg_get_expr() of a catalog, so they are
-- spliced as Postgres printed them.
CREATE FUNCTION vstore.apply_tree(schema_name text, merged jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s text := schema_name;
    cur jsonb := vstore.tree_json(schema_name);
    name text;
    def jsonb;
    old_columns jsonb;
    new_columns jsonb;
    tmp text;
    target_list text;
    select_list text;
    n int := 0;
BEGIN
    FOR name, def IN SELECT key, value FROM jsonb_each(cur -> 'indexes') ORDER BY key COLLATE "C" LOOP
        IF (merged -> 'indexes' -> name) IS DISTINCT FROM def THEN
            EXECUTE format('DROP INDEX %I.%I', s, name);
        END IF;
    END LOOP;
    FOR name IN SELECT k FROM jsonb_object_keys(cur -> 'tables') k ORDER BY k COLLATE "C" LOOP
        IF NOT (merged -> 'tables') ? name THEN
            EXECUTE format('DROP TABLE %I.%I', s, name);
        END IF;
    END LOOP;
    FOR name, new_columns IN SELECT key, value -> 'columns' FROM jsonb_each(merged -> 'tables')
                             ORDER BY key COLLATE "C" LOOP
        old_columns := cur -> 'tables' -> name -> 'columns';
        IF old_columns IS NOT DISTINCT FROM new_columns THEN
            CONTINUE;
        END IF;
        LOOP
            n := n + 1;
            tmp := format('vstore merge %s', n);
            EXIT WHEN NOT EXISTS (SELECT FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
                                  WHERE ns.nspname = s AND c.relname = tmp);
        END LOOP;
        EXECUTE format('CREATE TABLE %I.%I (%s)', s, tmp, coalesce((
            SELECT string_agg(format('%I %s', c ->> 'name', c ->> 'type')
                              || CASE WHEN (c -> 'nullable')::boolean THEN '' ELSE ' NOT NULL' END
                              || coalesce(' DEFAULT ' || (c ->> 'default'), ''), ', ' ORDER BY o)
            FROM jsonb_array_elements(new_columns) WITH ORDINALITY x (c, o)), ''));
        IF old_columns IS NOT NULL THEN
            SELECT string_agg(format('%I', c ->> 'name'), ', ' ORDER BY o),
                   string_agg(format('%I::%s', c ->> 'name', c ->> 'type'), ', ' ORDER BY o)
            INTO target_list, select_list
            FROM jsonb_array_elements(new_columns) WITH ORDINALITY x (c, o)
            WHERE vstore.column_definition(old_columns, c ->> 'name') IS NOT NULL;
            IF target_list IS NULL THEN
                -- No column survives: every old row still becomes a row (defaults, NULLs).
                EXECUTE format('INSERT INTO %I.%I SELECT FROM %I.%I', s, tmp, s, name);
            ELSE
                EXECUTE format('INSERT INTO %I.%I (%s) SELECT %s FROM %I.%I',
                               s, tmp, target_list, select_list, s, name);
            END IF;
            EXECUTE format('DROP TABLE %I.%I', s, name);
        END IF;
        EXECUTE format('ALTER TABLE %I.%I RENAME TO %I', s, tmp, name);
    END LOOP;
    cur := vstore.tree_json(schema_name);
    FOR name, def IN SELECT key, value FROM jsonb_each(merged -> 'indexes') ORDER BY key COLLATE "C" LOOP
        IF NOT (cur -> 'indexes') ? name THEN
            EXECUTE format('CREATE %sINDEX %I ON %I.%I (%s)',
                           CASE WHEN (def -> 'unique')::boolean THEN 'UNIQUE ' ELSE '' END,
                           name, s, def ->> 'table',
                           (SELECT string_agg(format('%I', c), ', ' ORDER BY o)
                            FROM jsonb_array_elements_text(def -> 'columns') WITH ORDINALITY x (c, o)));
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION vstore.merge(source text, target text) RETURNS vstore.merge_result
LANGUAGE plpgsql AS $$
DECLARE
    r vstore.branches;
    src vstore.branches;
    tgt vstore.branches;
    s_head vstore.commits;
    t_head vstore.commits;
    base vstore.commits;
    c vstore.commits;
BEGIN
    -- Lock both rows in ascending pk order; use only what the locking statement returned.
    FOR r IN SELECT * FROM vstore.branches b WHERE b.identifier IN (source, target)
             ORDER BY b.pk FOR UPDATE LOOP
        IF r.identifier = source THEN src := r; END IF;
        IF r.identifier = target THEN tgt := r; END IF;
    END LOOP;
    PERFORM vstore.check_active(src, source);
    PERFORM vstore.check_active(tgt, target);
    IF source = target THEN
        PERFORM vstore.raise_error('invalid_name',
            format('cannot merge branch %s into itself', quote_literal(source)));
    END IF;
    SELECT * INTO STRICT t_head FROM vstore.commits x WHERE x.pk = tgt.head_pk;
    SELECT * INTO STRICT s_head FROM vstore.commits x WHERE x.pk = src.head_pk;
    IF tgt.tree_hash IS DISTINCT FROM t_head.schema_hash THEN
        PERFORM vstore.raise_error('uncommitted_changes',
            format('branch %s has changes since its head commit %s; commit them first',
                   quote_literal(target), t_head.identifier));
    END IF;
    IF vstore.is_ancestor(s_head.pk, t_head.pk) THEN
        RETURN ('up_to_date', NULL, NULL, NULL, tgt.version)::vstore.merge_result;
    END IF;
    IF vstore.is_ancestor(t_head.pk, s_head.pk) THEN
        PERFORM vstore.apply_tree(tgt.schema_name, s_head.tree);
        UPDATE vstore.branches x
        SET head_pk = s_head.pk, version = s_head.version,
            tree_hash = vstore.tree_hash(tgt.schema_name), tree = vstore.tree_json(tgt.schema_name)
        WHERE x.pk = tgt.pk;
        RETURN ('fast_forward', s_head.pk, s_head.id, s_head.identifier, s_head.version)::vstore.merge_result;
    END IF;
    SELECT * INTO STRICT base FROM vstore.commits x WHERE x.pk = vstore.merge_base(t_head.pk, s_head.pk);
    PERFORM vstore.apply_tree(tgt.schema_name, vstore.merge_trees(base.tree, t_head.tree, s_head.tree));
    c := vstore.add_commit(tgt, ARRAY[t_head.pk, s_head.pk], format('merge %s into %s', source, target));
    RETURN ('merge', c.pk, c.id, c.identifier, c.version)::vstore.merge_result;
END
$$;
