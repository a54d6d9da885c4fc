-- Working trees: reading one from the live catalog, running a migration operation as
-- real DDL (recording its inverse), copying a tree, moving a tree to a merged one.
-- Identifiers are spliced with %I, values with %L; a type is spliced with %s only
-- after vstore.check_type accepted its spelling, or when it is format_type()'s own
-- output read back from the catalog.

-- The live tree of a schema as jsonb (shape: see 00_schema.sql).
CREATE FUNCTION vstore.tree_json(schema_name text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'tables', coalesce((
            SELECT jsonb_object_agg(c.relname, jsonb_build_object('columns', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'name', a.attname::text,
                           'type', format_type(a.atttypid, a.atttypmod),
                           'nullable', NOT a.attnotnull,
                           -- relid 0: a default holds no column reference, and with
                           -- the table's oid pg_get_expr looks the table up in the latest
                           -- catalog, not this snapshot (a table dropped since: NULL).
                           'default', pg_get_expr(d.adbin, 0)) ORDER BY a.attnum)
                FROM pg_attribute a
                LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]')))
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = schema_name AND c.relkind IN ('r', 'p')), '{}'),
        'indexes', coalesce((
            SELECT jsonb_object_agg(ic.relname, jsonb_build_object(
                       'table', tc.relname::text,
                       'columns', coalesce((
                           SELECT jsonb_agg(a.attname::text ORDER BY k.ord)
                           FROM unnest(i.indkey::int2[]) WITH ORDINALITY k (attnum, ord)
                           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum), '[]'),
                       'unique', i.indisunique))
            FROM pg_index i
            JOIN pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_class tc ON tc.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = tc.relnamespace
            WHERE n.nspname = schema_name AND tc.relkind IN ('r', 'p')), '{}'));
$$;

-- "c type [NOT NULL] [DEFAULT 'v']" for a validated column spec of a migration.
CREATE FUNCTION vstore.column_sql(spec jsonb) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM vstore.check_type(spec ->> 'type');
    RETURN format('%I %s', spec ->> 'name', spec ->> 'type')
        || CASE WHEN (spec -> 'nullable')::boolean THEN '' ELSE ' NOT NULL' END
        || CASE WHEN spec ->> 'default' IS NULL THEN '' ELSE format(' DEFAULT %L', spec ->> 'default') END;
END
$$;

-- A column of the live catalog as a migration column spec: its default as the value
-- text (the default expression is a constant pg_get_expr printed; evaluate it).
CREATE FUNCTION vstore.live_column_spec(schema_name text, table_name text, column_name text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    col jsonb;
    value text;
BEGIN
    SELECT c INTO col
    FROM jsonb_array_elements(vstore.tree_json(schema_name) -> 'tables' -> table_name -> 'columns') c
    WHERE c ->> 'name' = column_name;
    IF col IS NULL THEN
        RETURN NULL;
    END IF;
    IF col ->> 'default' IS NOT NULL THEN
        EXECUTE format('SELECT (%s)::text', col ->> 'default') INTO value;
    END IF;
    RETURN jsonb_build_object('name', col -> 'name', 'type', col -> 'type',
                              'nullable', col -> 'nullable', 'default', to_jsonb(value));
END
$$;

CREATE FUNCTION vstore.index_op(index_name text, def jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('op', 'create_index', 'index', index_name, 'table', def -> 'table',
                              'columns', def -> 'columns', 'unique', def -> 'unique');
$$;

-- The inverse of op computed from the live tree just before it runs (docs/domain.md).
-- When the objects it names are missing, the DDL itself fails, so the inverse is moot.
CREATE FUNCTION vstore.operation_inverse(schema_name text, op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    tree jsonb;
    t text := op ->> 'table';
    result jsonb;
BEGIN
    CASE op ->> 'op'
    WHEN 'create_table' THEN
        RETURN jsonb_build_array(jsonb_build_object('op', 'drop_table', 'table', t));
    WHEN 'drop_table' THEN
        tree := vstore.tree_json(schema_name);
        IF NOT tree -> 'tables' ? t THEN
            RETURN '[]';
        END IF;
        SELECT jsonb_agg(vstore.live_column_spec(schema_name, t, c ->> 'name') ORDER BY n)
        INTO result
        FROM jsonb_array_elements(tree -> 'tables' -> t -> 'columns') WITH ORDINALITY x (c, n);
        RETURN jsonb_build_array(jsonb_build_object('op', 'create_table', 'table', t,
                                                    'columns', coalesce(result, '[]')))
            || coalesce((SELECT jsonb_agg(vstore.index_op(key, value) ORDER BY key COLLATE "C")
                         FROM jsonb_each(tree -> 'indexes') WHERE value ->> 'table' = t), '[]');
    WHEN 'add_column' THEN
        RETURN jsonb_build_array(jsonb_build_object('op', 'drop_column', 'table', t,
                                                    'column', op -> 'column' -> 'name'));
    WHEN 'drop_column' THEN
        result := vstore.live_column_spec(schema_name, t, op ->> 'column');
        IF result IS NULL THEN
            RETURN '[]';
        END IF;
        tree := vstore.tree_json(schema_name);
        RETURN jsonb_build_array(jsonb_build_object('op', 'add_column', 'table', t, 'column', result))
            || coalesce((SELECT jsonb_agg(vstore.index_op(key, value) ORDER BY key COLLATE "C")
                         FROM jsonb_each(tree -> 'indexes')
                         WHERE value ->> 'table' = t AND value -> 'columns' ? (op ->> 'column')), '[]');
    WHEN 'rename_column' THEN
        RETURN jsonb_build_array(jsonb_build_object('op', 'rename_column', 'table', t,
            'column', op -> 'new_name', 'new_name', op -> 'column'));
    WHEN 'alter_column_type' THEN
        result := vstore.live_column_spec(schema_name, t, op ->> 'column');
        IF result IS NULL THEN
            RETURN '[]';
        END IF;
        RETURN jsonb_build_array(jsonb_build_object('op', 'alter_column_type', 'table', t,
            'column', op -> 'column', 'type', result -> 'type'));
    WHEN 'create_index' THEN
        RETURN jsonb_build_array(jsonb_build_object('op', 'drop_index', 'index', op -> 'index'));
    WHEN 'drop_index' THEN
        tree := vstore.tree_json(schema_name);
        IF NOT tree -> 'indexes' ? (op ->> 'index') THEN
            RETURN '[]';
        END IF;
        RETURN jsonb_build_array(vstore.index_op(op ->> 'index', tree -> 'indexes' -> (op ->> 'index')));
    ELSE
        RETURN '[]';
    END CASE;
END
$$;

-- Run one validated operation as real DDL in schema_name. Postgres errors propagate
-- unchanged (kind ddl); column_has_default is checked when the operation is reached.
CREATE FUNCTION vstore.run_operation(schema_name text, op jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s text := schema_name;
    t text := op ->> 'table';
    cols text;
    row_values jsonb;
BEGIN
    CASE op ->> 'op'
    WHEN 'create_table' THEN
        SELECT string_agg(vstore.column_sql(c), ', ' ORDER BY n) INTO cols
        FROM jsonb_array_elements(op -> 'columns') WITH ORDINALITY x (c, n);
        EXECUTE format('CREATE TABLE %I.%I (%s)', s, t, cols);
    WHEN 'drop_table' THEN
        EXECUTE format('DROP TABLE %I.%I', s, t);
    WHEN 'add_column' THEN
        EXECUTE format('ALTER TABLE %I.%I ADD COLUMN %s', s, t, vstore.column_sql(op -> 'column'));
    WHEN 'drop_column' THEN
        EXECUTE format('ALTER TABLE %I.%I DROP COLUMN %I', s, t, op ->> 'column');
    WHEN 'rename_column' THEN
        -- Postgres would rename an index's own column name, which no tree shows: like
        -- every other table operation, rename_column takes tables only (docs/domain.md).
        IF EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = s AND c.relname = t AND c.relkind IN ('i', 'I')) THEN
            RAISE EXCEPTION '% is not a table', quote_ident(t) USING ERRCODE = 'wrong_object_type';
        END IF;
        EXECUTE format('ALTER TABLE %I.%I RENAME COLUMN %I TO %I', s, t, op ->> 'column', op ->> 'new_name');
    WHEN 'alter_column_type' THEN
        PERFORM vstore.check_type(op ->> 'type');
        IF EXISTS (SELECT FROM jsonb_array_elements(vstore.tree_json(s) -> 'tables' -> t -> 'columns') c
                   WHERE c ->> 'name' = op ->> 'column' AND c ->> 'default' IS NOT NULL) THEN
            PERFORM vstore.raise_error('column_has_default',
                format('column %s of table %s has a default; alter_column_type does not cast defaults',
                       quote_literal(op ->> 'column'), quote_literal(t)));
        END IF;
        EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I TYPE %s USING %I::%s',
                       s, t, op ->> 'column', op ->> 'type', op ->> 'column', op ->> 'type');
    WHEN 'create_index' THEN
        SELECT string_agg(format('%I', c #>> '{}'), ', ' ORDER BY n) INTO cols
        FROM jsonb_array_elements(op -> 'columns') WITH ORDINALITY x (c, n);
        EXECUTE format('CREATE %sINDEX %I ON %I.%I (%s)',
                       CASE WHEN (op -> 'unique')::boolean THEN 'UNIQUE ' ELSE '' END,
                       op ->> 'index', s, t, cols);
    WHEN 'drop_index' THEN
        EXECUTE format('DROP INDEX %I.%I', s, op ->> 'index');
    WHEN 'insert_rows' THEN
        -- One INSERT per row, in order. A row of the wrong length (or a table without
        -- columns) is Postgres's own 42601; a missing table its 42P01.
        EXECUTE format('SELECT FROM %I.%I LIMIT 0', s, t);
        SELECT string_agg(format('%I', c ->> 'name'), ', ' ORDER BY n) INTO cols
        FROM jsonb_array_elements(vstore.tree_json(s) -> 'tables' -> t -> 'columns') WITH ORDINALITY x (c, n);
        FOR row_values IN SELECT value FROM jsonb_array_elements(op -> 'rows') LOOP
            EXECUTE format('INSERT INTO %I.%I (%s) VALUES (%s)', s, t, coalesce(cols, ''),
                           coalesce((SELECT string_agg(quote_nullable(v #>> '{}'), ', ' ORDER BY n)
                                     FROM jsonb_array_elements(row_values) WITH ORDINALITY x (v, n)), ''));
        END LOOP;
    END CASE;
END
$$;

-- Run operations in order; return the inverse (reversed list of per-operation inverses).
CREATE FUNCTION vstore.run_operations(schema_name text, ops jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    op jsonb;
    undo jsonb := '[]';
BEGIN
    FOR op IN SELECT value FROM jsonb_array_elements(ops) WITH ORDINALITY x (value, n) ORDER BY n LOOP
        undo := vstore.operation_inverse(schema_name, op) || undo;
        PERFORM vstore.run_operation(schema_name, op);
    END LOOP;
    RETURN undo;
END
$$;
