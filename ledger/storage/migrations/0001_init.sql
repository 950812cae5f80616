-- cunzheng ledger schema, version 1 (ledger/storage/postgres.py describes every table).
-- Append-only is enforced here too, not only in the application: entries, indexes, metas,
-- checkpoints, tokens and originals refuse UPDATE, DELETE and TRUNCATE; a tile record may only
-- grow while it is a partial (right-edge) tile, and never changes once complete; the head only
-- moves forward.

CREATE FUNCTION cunzheng_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cunzheng: % on % refused: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TABLE log_config (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    config bytea NOT NULL
);

CREATE TABLE head (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    size bigint NOT NULL CHECK (size >= 0)
);

CREATE TABLE entries (
    idx bigint PRIMARY KEY,
    leaf bytea NOT NULL
);

CREATE TABLE metas (
    idx bigint PRIMARY KEY,
    meta bytea NOT NULL
);

-- by deposit code: the first 10 bytes of the leaf hash
CREATE TABLE codes (
    code bytea NOT NULL,
    idx bigint NOT NULL,
    PRIMARY KEY (code, idx)
);

-- statement key = digest key (algorithm byte || digest) || 16 bytes of the statement hash;
-- a range scan on the primary key finds every deposit of one digest
CREATE TABLE statements (
    statement_key bytea PRIMARY KEY,
    idx bigint NOT NULL
);

-- tile records (strata 0, 3 and 6 of one C2SP tile, ledger/tiles.py)
CREATE TABLE tiles (
    level smallint NOT NULL,
    idx bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE checkpoints (
    size bigint PRIMARY KEY,
    note bytea NOT NULL
);

CREATE TABLE timestamps (
    size bigint PRIMARY KEY REFERENCES checkpoints (size),
    token bytea NOT NULL
);

CREATE TABLE originals (
    digest_key bytea PRIMARY KEY,
    chunks integer NOT NULL CHECK (chunks >= 0)
);

CREATE TABLE original_chunks (
    digest_key bytea NOT NULL,
    n integer NOT NULL,
    chunk bytea NOT NULL,
    PRIMARY KEY (digest_key, n)
);

-- small mutable records outside the log (depositors, API keys, access log), compare-and-swap
CREATE TABLE records (
    kind text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (kind, key)
);

-- serial numbers of the built-in TSA's tokens, shared by every node (RFC 3161 §2.4.2: unique)
CREATE SEQUENCE tsa_serials START 1;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['log_config', 'entries', 'metas', 'codes', 'statements',
                             'checkpoints', 'timestamps', 'originals', 'original_chunks'] LOOP
        EXECUTE format('CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION cunzheng_refuse_change()', t);
        EXECUTE format('CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION cunzheng_refuse_change()', t);
    END LOOP;
END
$$;

-- The width (stratum-0 hashes) of a tile record of n bytes: n = 32·(w + w/8 + w/64).
CREATE FUNCTION cunzheng_tile_width(n integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT w FROM generate_series(0, 256) AS w WHERE 32 * (w + w / 8 + w / 64) = n
$$;

CREATE FUNCTION cunzheng_tile_grows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_width integer := cunzheng_tile_width(length(OLD.record));
    new_width integer := cunzheng_tile_width(length(NEW.record));
BEGIN
    IF NEW.level <> OLD.level OR NEW.idx <> OLD.idx THEN
        RAISE EXCEPTION 'cunzheng: tile %/% may not move', OLD.level, OLD.idx
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF old_width = 256 THEN
        RAISE EXCEPTION 'cunzheng: complete tile %/% never changes', OLD.level, OLD.idx
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF new_width IS NULL OR new_width < old_width
       OR substring(NEW.record FROM 1 FOR 32 * old_width)
          <> substring(OLD.record FROM 1 FOR 32 * old_width) THEN
        RAISE EXCEPTION 'cunzheng: edge tile %/% may only grow', OLD.level, OLD.idx
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tile_grows BEFORE UPDATE ON tiles
    FOR EACH ROW EXECUTE FUNCTION cunzheng_tile_grows();
CREATE TRIGGER append_only BEFORE DELETE ON tiles
    FOR EACH ROW EXECUTE FUNCTION cunzheng_refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON tiles
    FOR EACH STATEMENT EXECUTE FUNCTION cunzheng_refuse_change();

CREATE FUNCTION cunzheng_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.size < OLD.size THEN
        RAISE EXCEPTION 'cunzheng: the head may not move back from % to %', OLD.size, NEW.size
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER head_forward BEFORE UPDATE ON head
    FOR EACH ROW EXECUTE FUNCTION cunzheng_head_forward();
CREATE TRIGGER append_only BEFORE DELETE ON head
    FOR EACH ROW EXECUTE FUNCTION cunzheng_refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON head
    FOR EACH STATEMENT EXECUTE FUNCTION cunzheng_refuse_change();
