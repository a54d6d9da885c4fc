-- Migrations: apply_migration and rollback_migration.

CREATE FUNCTION vstore.apply_migration(branch text, identifier text, operations jsonb)
RETURNS vstore.migration_result
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    b vstore.branches;
    digest text;
    existing vstore.migrations;
    undo jsonb;
    m vstore.migrations;
    cname text;
BEGIN
    PERFORM vstore.check_migration_identifier(identifier);
    PERFORM vstore.check_operations(operations);
    b := vstore.lock_active_branch(branch);
    PERFORM pg_advisory_xact_lock(hashtextextended('migration:' || identifier, 0));
    digest := vstore.operations_checksum(operations);
    SELECT * INTO existing FROM vstore.migrations x WHERE x.identifier = apply_migration.identifier;
    IF existing.pk IS NOT NULL THEN
        IF existing.checksum IS DISTINCT FROM digest THEN
            PERFORM vstore.raise_error('checksum_mismatch',
                format('migration %s was applied before with checksum %s; these operations have checksum %s',
                       quote_literal(identifier), existing.checksum, digest));
        END IF;
        PERFORM vstore.raise_error('migration_exists',
            format('migration %s was applied before (identifiers are never reused)', quote_literal(identifier)));
    END IF;
    undo := vstore.run_operations(b.schema_name, operations);
    BEGIN
        INSERT INTO vstore.migrations (identifier, branch_pk, checksum, status, operations, inverse)
        VALUES (identifier, b.pk, digest, 'applied', operations, undo)
        RETURNING * INTO m;
    EXCEPTION WHEN unique_violation THEN
        -- The advisory lock makes this rare: another transaction took the identifier
        -- after our snapshot (REPEATABLE READ, SERIALIZABLE) or without the lock.
        GET STACKED DIAGNOSTICS cname = CONSTRAINT_NAME;
        IF cname = 'migrations_identifier_key' THEN
            SELECT * INTO existing FROM vstore.migrations x WHERE x.identifier = apply_migration.identifier;
            IF existing.pk IS NULL THEN
                -- Committed after our snapshot: its checksum is invisible, so neither
                -- checksum_mismatch nor migration_exists can be told apart. Abort the
                -- way Postgres aborts a snapshot conflict: retryable, leaving nothing.
                RAISE EXCEPTION USING ERRCODE = '40001',
                    MESSAGE = format('could not serialize access: migration %s was applied by a '
                                     'concurrent transaction', quote_literal(identifier));
            ELSIF existing.checksum IS DISTINCT FROM digest THEN
                PERFORM vstore.raise_error('checksum_mismatch',
                    format('migration %s was applied concurrently with checksum %s',
                           quote_literal(identifier), existing.checksum));
            END IF;
            PERFORM vstore.raise_error('migration_exists',
                format('migration %s was applied concurrently', quote_literal(identifier)));
        END IF;
        RAISE;
    END;
    UPDATE vstore.branches x
    SET tree_hash = vstore.tree_hash(b.schema_name), tree = vstore.tree_json(b.schema_name)
    WHERE x.pk = b.pk;
    RETURN (m.pk, m.id, m.identifier, m.checksum)::vstore.migration_result;
END
$$;

CREATE FUNCTION vstore.rollback_migration(identifier text) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    m vstore.migrations;
    b vstore.branches;
    latest bigint;
BEGIN
    -- A migration's branch never changes, so it can be read before the lock.
    SELECT * INTO m FROM vstore.migrations x WHERE x.identifier = rollback_migration.identifier;
    IF m.pk IS NULL THEN
        PERFORM vstore.raise_error('migration_not_found',
            format('no migration with identifier %s', quote_literal(identifier)));
    END IF;
    SELECT * INTO b FROM vstore.branches x WHERE x.pk = m.branch_pk FOR UPDATE;
    PERFORM vstore.check_active(b, b.identifier);
    -- Re-read after the lock: the status may have changed while we waited.
    SELECT * INTO STRICT m FROM vstore.migrations x WHERE x.pk = m.pk;
    IF m.status <> 'applied' THEN
        PERFORM vstore.raise_error('migration_not_applied',
            format('migration %s was already rolled back', quote_literal(identifier)));
    END IF;
    SELECT max(x.pk) INTO latest FROM vstore.migrations x
    WHERE x.branch_pk = m.branch_pk AND x.status = 'applied';
    IF latest <> m.pk THEN
        PERFORM vstore.raise_error('not_latest_migration',
            format('migration %s is not the latest applied migration of branch %s (%s is)',
                   quote_literal(identifier), quote_literal(b.identifier),
                   quote_literal((SELECT x.identifier FROM vstore.migrations x WHERE x.pk = latest))));
    END IF;
    PERFORM vstore.run_operations(b.schema_name, m.inverse);
    UPDATE vstore.migrations x SET status = 'rolled_back' WHERE x.pk = m.pk;
    UPDATE vstore.branches x
    SET tree_hash = vstore.tree_hash(b.schema_name), tree = vstore.tree_json(b.schema_name)
    WHERE x.pk = b.pk;
END
$$;
