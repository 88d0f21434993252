-- The chat widget: each tenant's widget settings, and the reply mails sent to its members. A tenant without a
-- widget_settings row has the column defaults (src/domain/widget.rs names the same greeting and colour).
--
-- The widget secret, which the host site's server signs members' identifiers with, must be read back to check a
-- signature, so it is kept sealed (XChaCha20-Poly1305 under widget.secrets_key, bound to the tenant) rather than
-- hashed. Rotating it replaces it: the old one stops working at once.
--
-- Both tables are tenant data under row-level security like the others; the migration runner grants identity_app
-- its privileges on every table of the schema.
CREATE TABLE widget_settings (
    tenant_id              uuid PRIMARY KEY DEFAULT almoner_current_tenant() REFERENCES tenants (id),
    secret_sealed          bytea,
    secret_rotated_at      timestamptz,
    allowed_origins        text[] NOT NULL DEFAULT '{}' CHECK (cardinality(allowed_origins) <= 20),
    identity_required      boolean NOT NULL DEFAULT true,
    greeting               text NOT NULL DEFAULT 'Hello! Send us a message and we will reply as soon as we can.'
                           CHECK (length(greeting) BETWEEN 1 AND 280),
    accent_colour          text NOT NULL DEFAULT '#1f6feb' CHECK (accent_colour ~ '^#[0-9a-f]{6}$'),
    notify_email_on_reply  boolean NOT NULL DEFAULT true,
    -- The page on the host site where a member reads replies, put in reply mails.
    reply_mail_url         text CHECK (length(reply_mail_url) BETWEEN 1 AND 2000),
    revision               bigint NOT NULL DEFAULT 1,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((secret_sealed IS NULL) = (secret_rotated_at IS NULL))
);
ALTER TABLE widget_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE widget_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON widget_settings
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));

-- Reply mails sent: at most one per message of a conversation, however often messaging's
-- messaging.conversation.reply_waiting.v1 for it arrives (under one event id or several). The row commits with the
-- mail handed to the relay.
CREATE TABLE reply_mails (
    tenant_id        uuid NOT NULL DEFAULT almoner_current_tenant() REFERENCES tenants (id),
    conversation_id  uuid NOT NULL,
    message_id       uuid NOT NULL,
    event_id         uuid NOT NULL,
    mailed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id, message_id)
);
CREATE INDEX reply_mails_mailed_at_idx ON reply_mails (mailed_at);
ALTER TABLE reply_mails ENABLE ROW LEVEL SECURITY;
ALTER TABLE reply_mails FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reply_mails
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
