-- Historical imports: the file as sent, the options it is read with, and what each row does. An import starts as a
-- dry run (nothing but these rows written); committing it writes the donors and gifts in chunks, recording its
-- progress with each chunk so a restarted service resumes where it stopped.
CREATE TABLE imports (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT almoner_current_tenant(),
    status      text NOT NULL DEFAULT 'dry_run' CHECK (status IN ('dry_run', 'committing', 'committed', 'failed')),
    options     jsonb NOT NULL,
    content     bytea NOT NULL,
    rows_total  integer NOT NULL CHECK (rows_total >= 0),
    rows_done   integer NOT NULL DEFAULT 0 CHECK (rows_done BETWEEN 0 AND rows_total),
    -- Counts by outcome kind, from the dry run (and the commit once done).
    summary     jsonb NOT NULL,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX imports_tenant_idx ON imports (tenant_id, id DESC);
ALTER TABLE imports ENABLE ROW LEVEL SECURITY;
ALTER TABLE imports FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON imports
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- What each row of an import does (the dry run's, replaced by the commit's as it goes): `create donor; create
-- gift`, `match donor <id> by <rule>; create gift`, `duplicate gift <id>`, `refund gift <id>` or
-- `error: <field>: <reason>`.
CREATE TABLE import_outcomes (
    tenant_id  uuid NOT NULL DEFAULT almoner_current_tenant(),
    import_id  uuid NOT NULL,
    line       integer NOT NULL CHECK (line >= 2),
    kind       text NOT NULL CHECK (kind IN ('create_donor', 'match_donor', 'duplicate_gift', 'refund', 'error')),
    outcome    text NOT NULL,
    PRIMARY KEY (tenant_id, import_id, line),
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE import_outcomes ENABLE ROW LEVEL SECURITY;
ALTER TABLE import_outcomes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON import_outcomes
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());

-- Imports being committed, readable without a tenant so the importer (in any replica) can find them; a lease
-- keeps two replicas from working on one import, and lets another take over when a replica dies.
CREATE TABLE pending_imports (
    import_id     uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    leased_until  timestamptz NOT NULL DEFAULT '-infinity',
    attempts      integer NOT NULL DEFAULT 0
);
