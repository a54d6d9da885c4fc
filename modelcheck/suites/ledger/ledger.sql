-- A small ledger: accounts with balances and transfers between them. Errors are
-- P0001 with a message prefix (like many real stores), classified by the adapter.
CREATE SCHEMA ledger;
CREATE TABLE ledger.accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner text NOT NULL UNIQUE,
    balance bigint NOT NULL DEFAULT 0 CHECK (balance >= 0)
);
CREATE TABLE ledger.transfers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_id bigint NOT NULL REFERENCES ledger.accounts,
    to_id bigint NOT NULL REFERENCES ledger.accounts,
    amount bigint NOT NULL,
    digest text NOT NULL
);

CREATE FUNCTION ledger.open(p_owner text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE new_id bigint;
BEGIN
    IF p_owner !~ '^[a-z][a-z0-9]{0,15}$' THEN
        RAISE EXCEPTION 'bad owner: %', p_owner;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(p_owner));
    IF EXISTS (SELECT FROM ledger.accounts WHERE owner = p_owner) THEN
        RAISE EXCEPTION 'owner exists: %', p_owner;
    END IF;
    INSERT INTO ledger.accounts (owner) VALUES (p_owner) RETURNING id INTO new_id;
    RETURN new_id;
END $$;

CREATE FUNCTION ledger.account(p_owner text, lock boolean) RETURNS ledger.accounts
LANGUAGE plpgsql AS $$
DECLARE found ledger.accounts;
BEGIN
    IF lock THEN
        SELECT * INTO found FROM ledger.accounts WHERE owner = p_owner FOR UPDATE;
    ELSE
        SELECT * INTO found FROM ledger.accounts WHERE owner = p_owner;
    END IF;
    IF found.id IS NULL THEN
        RAISE EXCEPTION 'no account: %', p_owner;
    END IF;
    RETURN found;
END $$;

CREATE FUNCTION ledger.deposit(p_owner text, p_amount bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE acct ledger.accounts;
BEGIN
    IF p_amount <= 0 THEN
        RAISE EXCEPTION 'bad amount: %', p_amount;
    END IF;
    acct := ledger.account(p_owner, true);
    UPDATE ledger.accounts SET balance = balance + p_amount WHERE id = acct.id
    RETURNING balance INTO acct.balance;
    RETURN acct.balance;
END $$;

CREATE FUNCTION ledger.transfer(p_from text, p_to text, p_amount bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE src ledger.accounts; dst ledger.accounts; sig text;
BEGIN
    IF p_amount <= 0 OR p_from = p_to THEN
        RAISE EXCEPTION 'bad amount: %', p_amount;
    END IF;
    -- Lock both rows in owner order, so two opposite transfers cannot deadlock.
    IF p_from < p_to THEN
        src := ledger.account(p_from, true); dst := ledger.account(p_to, true);
    ELSE
        dst := ledger.account(p_to, true); src := ledger.account(p_from, true);
    END IF;
    IF src.balance < p_amount THEN
        RAISE EXCEPTION 'insufficient funds: %', p_from;
    END IF;
    UPDATE ledger.accounts SET balance = balance - p_amount WHERE id = src.id;
    UPDATE ledger.accounts SET balance = balance + p_amount WHERE id = dst.id;
    sig := md5(format('%s>%s:%s', p_from, p_to, p_amount));
    INSERT INTO ledger.transfers (from_id, to_id, amount, digest)
    VALUES (src.id, dst.id, p_amount, sig);
    RETURN sig;
END $$;

CREATE FUNCTION ledger.balance(p_owner text) RETURNS bigint LANGUAGE sql AS $$
    SELECT (ledger.account(p_owner, false)).balance
$$;
