-- cunzheng schema, version 2: the durable intake queue of a multi-node deployment
-- (ledger/cluster.py). A node that is not the sequencer admits a deposit (depositor, key,
-- signature), writes it here and waits until its statement is in the log; the sequencer drains
-- the queue into blocks. One row per statement key, so a retried deposit is queued once.

CREATE TABLE intake (
    id bigserial PRIMARY KEY,
    statement_key bytea NOT NULL UNIQUE,
    deposit bytea NOT NULL,          -- the deposit request (JSON), as Deposit.to_object gives it
    received_at bigint NOT NULL,     -- Unix ms, the receiving node's clock: the entry's received_at
    node text NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now()
);
