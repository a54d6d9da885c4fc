-- The install-time state: branch main (pk 1, working tree wt_1, version 0.0.0) and its
-- root commit (message 'root', no parents, the empty tree), head of main. It runs
-- after every function file because it uses vstore.tree_hash and
-- vstore.commit_identifier (10_canonical.sql).
DO $$
DECLARE
    main_pk bigint;
    root_pk bigint;
    digest text;
BEGIN
    SET CONSTRAINTS vstore.branches_head_pk_fkey DEFERRED;
    CREATE SCHEMA wt_1;
    digest := vstore.tree_hash('wt_1');
    INSERT INTO vstore.branches (identifier, parent_pk, head_pk, status, version, schema_name,
                                 tree_hash, tree)
    VALUES ('main', NULL, 0, 'active', '0.0.0', 'wt_1', digest, vstore.tree_json('wt_1'))
    RETURNING pk INTO main_pk;
    IF main_pk <> 1 THEN
        RAISE EXCEPTION 'vstore install: branch main got pk %, expected 1', main_pk;
    END IF;
    INSERT INTO vstore.commits (identifier, branch_pk, message, schema_hash, version, tree)
    VALUES (vstore.commit_identifier('main', '', NULL, digest, 'root'), main_pk, 'root', digest,
            '0.0.0', vstore.tree_json('wt_1'))
    RETURNING pk INTO root_pk;
    UPDATE vstore.branches SET head_pk = root_pk WHERE pk = main_pk;
END
$$;
