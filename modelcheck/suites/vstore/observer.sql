-- The framework's observer: the whole observable state as one JSON document, in one
-- round trip. It reads the store's plain tables and the live catalog; it never calls
-- the store's functions, so a wrong target cannot hide its mistakes from it.
CREATE SCHEMA IF NOT EXISTS modelcheck_observe;

CREATE OR REPLACE FUNCTION modelcheck_observe.trees(excluded text[], with_rows boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
-- Two statements whatever the number of schemas and tables: one dynamic query reads
-- every table's rows (a table per scalar subquery, keyed by oid), then one catalog
-- query nests them with columns and indexes. Per-table EXECUTEs (parse, plan, SPI
-- set-up each) and per-table catalog look-ups were most of the observer's time.
DECLARE
    reads text;
    rows jsonb := '{}';
BEGIN
    SELECT string_agg(format(
               '(%s, (SELECT coalesce(jsonb_agg(jsonb_build_array(%s)), ''[]'') FROM %I.%I))',
               c.oid::text,
               (SELECT coalesce(string_agg(format('%I::text', a.attname), ', ' ORDER BY a.attnum), '')
                  FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
               n.nspname, c.relname), ', ')
      INTO reads
      FROM pg_namespace n
      JOIN pg_class c ON c.relnamespace = n.oid
     WHERE n.nspname <> ALL (excluded)
       AND n.nspname <> 'modelcheck_observe'
       AND n.nspname <> 'information_schema'
       AND n.nspname NOT LIKE 'pg\_%'
       AND c.relkind IN ('r', 'p', 'v', 'm', 'f');
    -- Without rows, no table is read: another session's open DDL may hold a table's
    -- lock; the catalog can still be read (MVCC), its rows cannot without waiting.
    IF with_rows AND reads IS NOT NULL THEN
        EXECUTE 'SELECT jsonb_object_agg(k, v) FROM (VALUES ' || reads || ') AS r(k, v)'
           INTO rows;
    END IF;
    RETURN coalesce((
        SELECT jsonb_object_agg(n.nspname, jsonb_build_object(
                   'tables', coalesce((
                       SELECT jsonb_object_agg(c.relname, jsonb_build_object(
                                  'columns', coalesce((
                                      SELECT jsonb_agg(jsonb_build_array(
                                                 a.attname::text,
                                                 format_type(a.atttypid, a.atttypmod),
                                                 NOT a.attnotnull,
                                                 pg_get_expr(d.adbin, d.adrelid))
                                             ORDER BY a.attnum)
                                        FROM pg_attribute a
                                        LEFT JOIN pg_attrdef d
                                          ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                                       WHERE a.attrelid = c.oid AND a.attnum > 0
                                         AND NOT a.attisdropped), '[]'),
                                  'rows', coalesce(rows -> c.oid::text, '[]')))
                         FROM pg_class c
                        WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')),
                       '{}'),
                   'indexes', coalesce((
                       SELECT jsonb_object_agg(ic.relname, jsonb_build_object(
                                  'table', tc.relname::text,
                                  'unique', i.indisunique,
                                  'columns', (SELECT coalesce(jsonb_agg(
                                                  coalesce(a.attname::text,
                                                           pg_get_indexdef(i.indexrelid, k.n::int, true))
                                                  ORDER BY k.n), '[]')
                                                FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                                                LEFT JOIN pg_attribute a
                                                  ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                                                 AND k.attnum > 0)))
                         FROM pg_index i
                         JOIN pg_class ic ON ic.oid = i.indexrelid
                         JOIN pg_class tc ON tc.oid = i.indrelid
                        WHERE ic.relnamespace = n.oid), '{}')))
          FROM pg_namespace n
         WHERE n.nspname <> ALL (excluded)
           AND n.nspname <> 'modelcheck_observe'
           AND n.nspname <> 'information_schema'
           AND n.nspname NOT LIKE 'pg\_%'), '{}');
END;
$$;

CREATE OR REPLACE FUNCTION modelcheck_observe.snapshot(excluded text[], with_rows boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
-- PL/pgSQL rather than SQL: a SQL function's statement is parsed and planned again on
-- every call, PL/pgSQL keeps the plan for the session (about a third of the call).
BEGIN
RETURN jsonb_build_object(
    'branches', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'pk', b.pk, 'id', b.id, 'identifier', b.identifier,
                   'parent', p.identifier, 'head', h.identifier, 'status', b.status,
                   'version', b.version, 'schema_name', b.schema_name,
                   'tree_hash', b.tree_hash))
          FROM vstore.branches b
          LEFT JOIN vstore.branches p ON p.pk = b.parent_pk
          LEFT JOIN vstore.commits h ON h.pk = b.head_pk), '[]'),
    'commits', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'pk', c.pk, 'id', c.id, 'identifier', c.identifier,
                   'branch', b.identifier, 'message', c.message,
                   'schema_hash', c.schema_hash, 'version', c.version,
                   'parents', coalesce((
                       SELECT jsonb_agg(pc.identifier ORDER BY cp.position)
                         FROM vstore.commit_parents cp
                         JOIN vstore.commits pc ON pc.pk = cp.parent_pk
                        WHERE cp.commit_pk = c.pk), '[]')))
          FROM vstore.commits c
          LEFT JOIN vstore.branches b ON b.pk = c.branch_pk), '[]'),
    'migrations', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'pk', m.pk, 'id', m.id, 'identifier', m.identifier,
                   'branch', b.identifier, 'checksum', m.checksum, 'status', m.status))
          FROM vstore.migrations m
          LEFT JOIN vstore.branches b ON b.pk = m.branch_pk), '[]'),
    -- Without trees, nothing but the store's own tables is read. While another session
    -- has DDL open, even the catalog look-ups (pg_get_expr opens the relation) would
    -- wait for its lock, so the working trees are compared at quiet points only.
    'trees', CASE WHEN with_rows THEN modelcheck_observe.trees(excluded, true)
                  ELSE '{}'::jsonb END);
END;
$$;
