-- Domain errors and argument checks, in the order docs/domain.md lists them.

-- Raise a domain error: the kind travels in the constraint-name field, the SQLSTATE
-- comes from the kind (modelcheck/_domain/errors.py, ERROR_KINDS).
CREATE FUNCTION vstore.raise_error(kind text, message text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    state text := CASE kind
        WHEN 'nul_in_text' THEN '22021'
        WHEN 'invalid_name' THEN '22023'
        WHEN 'name_too_long' THEN '42622'
        WHEN 'message_too_long' THEN '22001'
        WHEN 'invalid_operation' THEN '22023'
        WHEN 'branch_not_found' THEN '42704'
        WHEN 'branch_deleted' THEN '55000'
        WHEN 'branch_exists' THEN '42710'
        WHEN 'protected_branch' THEN '42501'
        WHEN 'schema_drift' THEN '55000'
        WHEN 'migration_exists' THEN '42710'
        WHEN 'checksum_mismatch' THEN '22000'
        WHEN 'migration_not_found' THEN '42704'
        WHEN 'migration_not_applied' THEN '55000'
        WHEN 'not_latest_migration' THEN '55000'
        WHEN 'column_has_default' THEN '0A000'
        WHEN 'uncommitted_changes' THEN '55000'
        WHEN 'merge_conflict' THEN '23000'
        WHEN 'not_found' THEN '42704'
    END;
BEGIN
    IF state IS NULL THEN
        RAISE EXCEPTION 'vstore.raise_error: unknown error kind %', quote_literal(kind);
    END IF;
    RAISE EXCEPTION USING ERRCODE = state, CONSTRAINT = kind, MESSAGE = message;
END
$$;

-- Empty -> invalid_name; over 63 bytes -> name_too_long; anything else is kept as is.
CREATE FUNCTION vstore.check_name(name text, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF name IS NULL OR name = '' THEN
        PERFORM vstore.raise_error('invalid_name', format('%s must not be empty', what));
    END IF;
    IF octet_length(name) > 63 THEN
        PERFORM vstore.raise_error('name_too_long',
            format('%s %s is %s bytes long, over 63', what, quote_literal(name), octet_length(name)));
    END IF;
END
$$;

CREATE FUNCTION vstore.check_message(message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF message IS NULL THEN
        PERFORM vstore.raise_error('invalid_operation', 'commit message must not be null');
    END IF;
    IF char_length(message) > 4096 THEN
        PERFORM vstore.raise_error('message_too_long',
            format('commit message is %s characters long, over 4096', char_length(message)));
    END IF;
END
$$;

-- Name checks first (so a long identifier is name_too_long), then the pattern.
CREATE FUNCTION vstore.check_migration_identifier(identifier text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM vstore.check_name(identifier, 'migration identifier');
    IF identifier !~ '^[0-9]{4}_[a-z][a-z0-9_]*$' THEN
        PERFORM vstore.raise_error('invalid_name',
            format('migration identifier %s is not NNNN_name (^[0-9]{4}_[a-z][a-z0-9_]*$)',
                   quote_literal(identifier)));
    END IF;
END
$$;

-- True when spelling is exactly a supported type as format_type() prints it. Only
-- spellings accepted here are ever spliced into DDL.
CREATE FUNCTION vstore.is_supported_type(spelling text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m text[];
BEGIN
    IF spelling IN ('integer', 'bigint', 'text', 'boolean', 'integer[]', 'text[]') THEN
        RETURN true;
    END IF;
    m := regexp_match(spelling, '^character varying\(([1-9][0-9]{0,2})\)$');
    IF m IS NOT NULL THEN
        RETURN m[1]::int <= 100;
    END IF;
    m := regexp_match(spelling, '^numeric\(([1-9][0-9]?),(0|[1-9][0-9]?)\)$');
    IF m IS NOT NULL THEN
        RETURN m[1]::int <= 20 AND m[2]::int <= m[1]::int;
    END IF;
    RETURN false;
END
$$;

CREATE FUNCTION vstore.check_type(spelling text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT vstore.is_supported_type(spelling) THEN
        PERFORM vstore.raise_error('invalid_operation',
            format('unsupported type spelling %s (write it as format_type() prints it)',
                   quote_literal(spelling)));
    END IF;
END
$$;

-- The object has exactly the keys of expected (key -> jsonb_typeof, 'string|null' allowed).
CREATE FUNCTION vstore.check_shape(value jsonb, expected jsonb, what text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k text;
    t text;
BEGIN
    IF jsonb_typeof(value) IS DISTINCT FROM 'object' THEN
        PERFORM vstore.raise_error('invalid_operation', format('%s must be an object', what));
    END IF;
    IF (SELECT array_agg(x ORDER BY x) FROM jsonb_object_keys(value) x)
       IS DISTINCT FROM (SELECT array_agg(x ORDER BY x) FROM jsonb_object_keys(expected) x) THEN
        PERFORM vstore.raise_error('invalid_operation',
            format('%s needs exactly the keys %s', what,
                   (SELECT string_agg(x, ', ' ORDER BY x) FROM jsonb_object_keys(expected) x)));
    END IF;
    FOR k, t IN SELECT key, e.value #>> '{}' FROM jsonb_each(expected) e LOOP
        IF NOT (jsonb_typeof(value -> k) = ANY (string_to_array(t, '|'))) THEN
            PERFORM vstore.raise_error('invalid_operation',
                format('%s.%s must be %s, not %s', what, k, t, jsonb_typeof(value -> k)));
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION vstore.check_column_spec(spec jsonb, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM vstore.check_shape(spec,
        '{"name": "string", "type": "string", "nullable": "boolean", "default": "string|null"}',
        what);
    PERFORM vstore.check_name(spec ->> 'name', 'column name');
    PERFORM vstore.check_type(spec ->> 'type');
END
$$;

-- One operation: shape (exactly the listed keys, JSON types), names, type spellings.
CREATE FUNCTION vstore.check_operation(op jsonb, op_position int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    what text := format('operations[%s]', op_position);
    kind text;
    expected jsonb;
    k text;
    elem jsonb;
    i int := 0;
BEGIN
    IF jsonb_typeof(op) IS DISTINCT FROM 'object' OR jsonb_typeof(op -> 'op') IS DISTINCT FROM 'string' THEN
        PERFORM vstore.raise_error('invalid_operation', format('%s must be an object with an "op"', what));
    END IF;
    kind := op ->> 'op';
    expected := CASE kind
        WHEN 'create_table' THEN '{"table": "string", "columns": "array"}'
        WHEN 'drop_table' THEN '{"table": "string"}'
        WHEN 'add_column' THEN '{"table": "string", "column": "object"}'
        WHEN 'drop_column' THEN '{"table": "string", "column": "string"}'
        WHEN 'rename_column' THEN '{"table": "string", "column": "string", "new_name": "string"}'
        WHEN 'alter_column_type' THEN '{"table": "string", "column": "string", "type": "string"}'
        WHEN 'create_index' THEN '{"index": "string", "table": "string", "columns": "array", "unique": "boolean"}'
        WHEN 'drop_index' THEN '{"index": "string"}'
        WHEN 'insert_rows' THEN '{"table": "string", "rows": "array"}'
    END::jsonb;
    IF expected IS NULL THEN
        PERFORM vstore.raise_error('invalid_operation', format('%s: unknown op %s', what, quote_literal(kind)));
    END IF;
    PERFORM vstore.check_shape(op - 'op', expected, what);
    -- Names, in a fixed order: table, index, new_name, then a column given by name.
    FOREACH k IN ARRAY ARRAY['table', 'index', 'new_name'] LOOP
        IF op ? k THEN
            PERFORM vstore.check_name(op ->> k, k || ' name');
        END IF;
    END LOOP;
    IF jsonb_typeof(op -> 'column') = 'string' THEN
        PERFORM vstore.check_name(op ->> 'column', 'column name');
    END IF;
    CASE kind
    WHEN 'create_table' THEN
        IF jsonb_array_length(op -> 'columns') = 0 THEN
            PERFORM vstore.raise_error('invalid_operation', format('%s.columns must not be empty', what));
        END IF;
        FOR elem IN SELECT value FROM jsonb_array_elements(op -> 'columns') LOOP
            PERFORM vstore.check_column_spec(elem, format('%s.columns[%s]', what, i));
            i := i + 1;
        END LOOP;
    WHEN 'add_column' THEN
        PERFORM vstore.check_column_spec(op -> 'column', what || '.column');
    WHEN 'alter_column_type' THEN
        PERFORM vstore.check_type(op ->> 'type');
    WHEN 'create_index' THEN
        IF jsonb_array_length(op -> 'columns') = 0
           OR EXISTS (SELECT FROM jsonb_array_elements(op -> 'columns') e WHERE jsonb_typeof(e) <> 'string') THEN
            PERFORM vstore.raise_error('invalid_operation',
                format('%s.columns must be a non-empty list of names', what));
        END IF;
        FOR elem IN SELECT value FROM jsonb_array_elements(op -> 'columns') LOOP
            PERFORM vstore.check_name(elem #>> '{}', 'column name');
        END LOOP;
    WHEN 'insert_rows' THEN
        IF jsonb_array_length(op -> 'rows') = 0
           OR EXISTS (SELECT FROM jsonb_array_elements(op -> 'rows') r WHERE jsonb_typeof(r) <> 'array') THEN
            PERFORM vstore.raise_error('invalid_operation',
                format('%s.rows must be a non-empty list of lists', what));
        END IF;
        IF EXISTS (SELECT FROM jsonb_array_elements(op -> 'rows') r, jsonb_array_elements(r) v
                   WHERE jsonb_typeof(v) NOT IN ('string', 'null')) THEN
            PERFORM vstore.raise_error('invalid_operation', format('%s.rows values must be text or null', what));
        END IF;
    ELSE
        NULL;
    END CASE;
END
$$;

CREATE FUNCTION vstore.check_operations(ops jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    op jsonb;
    n int;
BEGIN
    IF jsonb_typeof(ops) IS DISTINCT FROM 'array' OR jsonb_array_length(ops) = 0 THEN
        PERFORM vstore.raise_error('invalid_operation', 'operations must be a non-empty list');
    END IF;
    FOR op, n IN SELECT value, ordinality - 1 FROM jsonb_array_elements(ops) WITH ORDINALITY LOOP
        PERFORM vstore.check_operation(op, n::int);
    END LOOP;
END
$$;

-- Raises a domain error on the server. The adapter uses it for nul_in_text (a value
-- Postgres text cannot carry, so it never reaches the server) inside an open
-- transaction: like any failed statement, the failure then aborts that transaction.
CREATE FUNCTION vstore.raise_domain_error(kind text, state text, message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = message, ERRCODE = state, CONSTRAINT = kind;
END
$$;
