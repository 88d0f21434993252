-- A tenant table for the tests; its row-level security is added by migration 2 from tenant::RLS_EXAMPLE.
CREATE TABLE notes (
    id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT almoner_current_tenant(),
    body      text NOT NULL
);
CREATE INDEX notes_tenant_idx ON notes (tenant_id);
