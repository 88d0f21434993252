-- Member conversations from the chat widget: members (as identity's member tokens name them), their
-- conversations and messages, and the per-tenant stream every live client (widget or staff inbox) reads from.

-- A member as the widget's tokens name them: `member:<identifier>` (verified by the host site's HMAC) or
-- `visitor:<uuid>` (only where a tenant lets unverified visitors talk). Created the first time a token is used.
CREATE TABLE members (
    tenant_id    uuid NOT NULL DEFAULT almoner_current_tenant(),
    id           uuid NOT NULL,
    subject      text NOT NULL,
    identifier   text NOT NULL,
    verified     boolean NOT NULL,
    -- What the member told the widget; the email is where "a reply is waiting" is mailed.
    name         text,
    email        text,
    -- The fundraising donor with this email, when exactly one live donor has it.
    donor_id     uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, subject)
);
CREATE INDEX members_donor_idx ON members (tenant_id, donor_id) WHERE donor_id IS NOT NULL;
ALTER TABLE members ENABLE ROW LEVEL SECURITY;
ALTER TABLE members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON members
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

CREATE TABLE conversations (
    tenant_id         uuid NOT NULL DEFAULT almoner_current_tenant(),
    id                uuid NOT NULL,
    member_id         uuid NOT NULL,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'resolved')),
    -- The staff member it is assigned to (`staff:<id>`), or none.
    assignee          text,
    revision          bigint NOT NULL DEFAULT 1,
    -- Messages are numbered 1, 2, ... within their conversation; `last_seq` is the newest.
    last_seq          bigint NOT NULL DEFAULT 0,
    last_message_at   timestamptz,
    last_author       text CHECK (last_author IN ('member', 'staff')),
    last_preview      text,
    -- Read receipts: the newest message each side has read (by seq).
    member_read_seq   bigint NOT NULL DEFAULT 0,
    staff_read_seq    bigint NOT NULL DEFAULT 0,
    -- Unread counts for each side: the other side's messages after its read receipt.
    member_unread     integer NOT NULL DEFAULT 0,
    staff_unread      integer NOT NULL DEFAULT 0,
    -- The newest staff message the member was mailed about (at most one mail until they read).
    notified_seq      bigint NOT NULL DEFAULT 0,
    -- Set for conversations brought in by an import: the source's own id, unique per tenant.
    import_ref        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id),
    UNIQUE (tenant_id, import_ref)
);
CREATE INDEX conversations_member_idx ON conversations (tenant_id, member_id, id DESC);
CREATE INDEX conversations_inbox_idx ON conversations (tenant_id, status, id DESC);
CREATE INDEX conversations_assignee_idx ON conversations (tenant_id, assignee, id DESC) WHERE assignee IS NOT NULL;
ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversations
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

CREATE TABLE conversation_messages (
    tenant_id          uuid NOT NULL DEFAULT almoner_current_tenant(),
    id                 uuid NOT NULL,
    conversation_id    uuid NOT NULL,
    seq                bigint NOT NULL,
    author             text NOT NULL CHECK (author IN ('member', 'staff')),
    -- The token subject that wrote it (`member:...`, `staff:<id>`, `api_key:<id>`), or the import's author name.
    author_subject     text NOT NULL,
    body               text NOT NULL,
    -- [{object_id, file_name, content_type, size_bytes}] (files kept by the storage service).
    attachments        jsonb NOT NULL DEFAULT '[]',
    -- The writer's own id for the message, so that a retried send makes one message.
    client_message_id  text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id),
    UNIQUE (tenant_id, conversation_id, seq)
);
CREATE UNIQUE INDEX conversation_messages_client_idx
    ON conversation_messages (tenant_id, conversation_id, author_subject, client_message_id)
    WHERE client_message_id IS NOT NULL;
ALTER TABLE conversation_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_messages
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- The live stream: everything a client shows, numbered 1, 2, ... per tenant in commit order. The number is taken
-- from `conversation_stream_heads` under its row lock, held to the commit, so a number is never visible before a
-- smaller one: a client that saw N and asks for what came after N misses nothing.
CREATE TABLE conversation_stream_heads (
    tenant_id  uuid NOT NULL DEFAULT almoner_current_tenant() PRIMARY KEY,
    last_id    bigint NOT NULL
);
ALTER TABLE conversation_stream_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_stream_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_stream_heads
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

CREATE TABLE conversation_stream (
    tenant_id        uuid NOT NULL DEFAULT almoner_current_tenant(),
    id               bigint NOT NULL,
    member_id        uuid NOT NULL,
    conversation_id  uuid NOT NULL,
    -- `message` (a new message), `conversation` (status, assignment, read receipts changed).
    kind             text NOT NULL,
    -- What the member's widget is sent (the staff inbox gets `staff_data`: the same with staff-only fields).
    member_data      jsonb NOT NULL,
    staff_data       jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX conversation_stream_member_idx ON conversation_stream (tenant_id, member_id, id);
CREATE INDEX conversation_stream_created_idx ON conversation_stream (created_at);
ALTER TABLE conversation_stream ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_stream FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_stream
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Open member connections, whichever replica holds them: refreshed while connected, so one past `expires_at` is
-- a connection that died without saying so. A staff reply to a member with none is mailed about.
CREATE TABLE member_connections (
    tenant_id      uuid NOT NULL DEFAULT almoner_current_tenant(),
    connection_id  uuid NOT NULL,
    member_id      uuid NOT NULL,
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, connection_id)
);
CREATE INDEX member_connections_member_idx ON member_connections (tenant_id, member_id, expires_at);
ALTER TABLE member_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE member_connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON member_connections
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Clean-ups across tenants, where the service's own role sees one tenant at a time: SECURITY DEFINER, and they
-- take nothing but a time. Stream entries older than the retention are forgotten (a client further behind is told
-- to reload its state); connections past their expiry belonged to replicas that died holding them.
CREATE FUNCTION prune_conversation_stream(older_than timestamptz) RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
    AS $$
DECLARE
    pruned bigint;
BEGIN
    DELETE FROM conversation_stream WHERE created_at < older_than;
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN pruned;
END
$$;

CREATE FUNCTION prune_member_connections() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
    AS $$
DECLARE
    pruned bigint;
BEGIN
    DELETE FROM member_connections WHERE expires_at < now();
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN pruned;
END
$$;
