-- Canonical forms computed by the server (docs/domain.md "Schema hash", "Commit
-- identifiers", checksum). modelcheck/_domain/hashing.py computes the same values;
-- tests/test_hashing.py checks that they agree byte for byte.
--
-- All functions pin search_path to pg_catalog: they never resolve user objects by
-- name, so a working tree's tables cannot shadow the operators and functions used.

CREATE SCHEMA IF NOT EXISTS vstore;  -- harmless after 00_schema.sql; lets this file stand alone

-- Length-prefixed text: f(s) = octet_length(s) || ':' || s.
CREATE OR REPLACE FUNCTION vstore.f(s text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
RETURN octet_length(s)::text || ':' || s;

-- The canonical text of the live tree in schema_name (rows are not part of it):
--   T f(table)\n
--   C f(column) f(type) N|Y f(default or '')\n   per column, attnum order; Y = nullable
--   I f(index) U|- f(col1),f(col2),...\n          per index of the table, name order
-- Tables and indexes in COLLATE "C" (UTF-8 byte) order. STABLE: reads the catalog.
CREATE OR REPLACE FUNCTION vstore.tree_canonical_text(schema_name text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT coalesce(string_agg(
        'T ' || vstore.f(c.relname::text) || E'\n'
        || coalesce((
            SELECT string_agg(
                       'C ' || vstore.f(a.attname::text)
                       || ' ' || vstore.f(format_type(a.atttypid, a.atttypmod))
                       || ' ' || CASE WHEN a.attnotnull THEN 'N' ELSE 'Y' END
                       || ' ' || vstore.f(coalesce(pg_get_expr(d.adbin, 0), ''))  -- 0: see tree_json
                       || E'\n',
                       '' ORDER BY a.attnum)
            FROM pg_attribute a
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
        || coalesce((
            SELECT string_agg(
                       'I ' || vstore.f(ic.relname::text)
                       || ' ' || CASE WHEN i.indisunique THEN 'U' ELSE '-' END
                       || ' ' || (
                           SELECT string_agg(vstore.f(ka.attname::text), ',' ORDER BY k.n)
                           FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k (attnum, n)
                           JOIN pg_attribute ka
                             ON ka.attrelid = i.indrelid AND ka.attnum = k.attnum)
                       || E'\n',
                       '' ORDER BY ic.relname::text COLLATE "C")
            FROM pg_index i
            JOIN pg_class ic ON ic.oid = i.indexrelid
            WHERE i.indrelid = c.oid), ''),
        '' ORDER BY c.relname::text COLLATE "C"), '')
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = schema_name AND c.relkind = 'r'
$$;

-- sha256 hex of the canonical text; the empty (or missing) schema hashes ''.
CREATE OR REPLACE FUNCTION vstore.tree_hash(schema_name text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
RETURN encode(sha256(convert_to(vstore.tree_canonical_text(schema_name), 'UTF8')), 'hex');

-- 'c' || 16 hex digits of sha256(f(branch) f(parent1) f(parent2) f(hash) f(message)),
-- the f() pieces concatenated without separators; a NULL parent counts as ''.
CREATE OR REPLACE FUNCTION vstore.commit_identifier(
    branch text, parent1 text, parent2 text, schema_hash text, message text
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
RETURN 'c' || left(encode(sha256(convert_to(
    vstore.f(branch) || vstore.f(coalesce(parent1, '')) || vstore.f(coalesce(parent2, ''))
    || vstore.f(schema_hash) || vstore.f(message), 'UTF8')), 'hex'), 16);

-- A migration's checksum: sha256 hex of the operations' jsonb text.
CREATE OR REPLACE FUNCTION vstore.operations_checksum(ops jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog
RETURN encode(sha256(convert_to(ops::text, 'UTF8')), 'hex');
