-- Platform tables every service schema has, applied before the service's own migrations.

-- The tenant of the current transaction, or NULL when none is set. `current_setting(..., true)` yields NULL instead
-- of an error when the setting was never defined; NULLIF turns the empty string left behind by an ended
-- `SET LOCAL` into NULL as well. Row-level-security policies compare tenant_id with it, so no tenant means no rows.
CREATE FUNCTION almoner_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

-- Transactional outbox: events written in the same transaction as the change they describe, published by the
-- relay. No row-level security: the relay publishes every tenant's events from a system transaction, and services
-- only ever insert here (through almoner_db::outbox::enqueue), never read back.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    event_type   text NOT NULL,
    payload      jsonb NOT NULL,
    traceparent  text,
    tracestate   text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
-- What the relay scans: only unpublished rows, oldest first.
CREATE INDEX outbox_unpublished_idx ON outbox (created_at, id) WHERE published_at IS NULL;
-- What the cleanup scans.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Inbox: event ids a consumer has already handled, recorded in the same transaction as the effect.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_processed_at_idx ON processed_events (processed_at);

-- Idempotency-Key: the response to a POST, replayed for 24 hours to a retry with the same key and body.
CREATE TABLE idempotency_keys (
    tenant_id       uuid NOT NULL DEFAULT almoner_current_tenant(),
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL,
    response_status integer,
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys
    USING (tenant_id = almoner_current_tenant())
    WITH CHECK (tenant_id = almoner_current_tenant());
-- Expired keys of any tenant may be deleted (never read) without a tenant: see the purge function below.
CREATE POLICY purge_expired ON idempotency_keys FOR DELETE
    USING (created_at < now() - interval '24 hours');

-- Deletes every tenant's expired keys. The DELETE has no WHERE clause on purpose: a WHERE that reads the row
-- would also apply the SELECT policies (tenant only), whereas without one only the DELETE policies apply, and with
-- no tenant set only purge_expired can match. Refused inside a tenant transaction, where tenant_isolation would
-- match that tenant's live keys too.
CREATE FUNCTION almoner_purge_expired_idempotency_keys() RETURNS bigint
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
    AS $$
DECLARE
    purged bigint;
BEGIN
    IF almoner_current_tenant() IS NOT NULL THEN
        RAISE EXCEPTION 'expired idempotency keys are purged from a system transaction, not a tenant one';
    END IF;
    DELETE FROM idempotency_keys;
    GET DIAGNOSTICS purged = ROW_COUNT;
    RETURN purged;
END
$$;
