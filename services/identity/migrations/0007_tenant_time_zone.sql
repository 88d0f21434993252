-- The tenant's time zone, an IANA name (checked by the service against the time zone database it carries): the
-- console shows local times in it and messaging keeps quiet hours by it. Existing tenants are UK charities.
ALTER TABLE tenants ADD COLUMN time_zone text NOT NULL DEFAULT 'Europe/London'
    CHECK (length(time_zone) BETWEEN 1 AND 64);
