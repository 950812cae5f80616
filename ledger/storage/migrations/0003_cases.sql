-- cunzheng schema, version 3: deposits by case (ledger/cases.py). The case key is 16 bytes of
-- SHA-256 over the contract number in a deposit's private meta; rows are written in the same
-- transaction as the block that holds the deposits, and never change.

CREATE TABLE cases (
    case_key bytea NOT NULL,
    idx bigint NOT NULL,
    PRIMARY KEY (case_key, idx)
);

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON cases
    FOR EACH ROW EXECUTE FUNCTION cunzheng_refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON cases
    FOR EACH STATEMENT EXECUTE FUNCTION cunzheng_refuse_change();
