-- known_tenants is filled once per statement that inserts donors rather than once per donor: an import's chunk
-- inserts a thousand donors of one tenant in one statement, and the row trigger ran a thousand
-- INSERT ... ON CONFLICT DO NOTHING for the same id.
DROP TRIGGER donors_remember_tenant ON donors;
DROP FUNCTION remember_donor_tenant();

CREATE FUNCTION remember_donor_tenants() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
    AS $$
BEGIN
    INSERT INTO known_tenants (tenant_id) SELECT DISTINCT tenant_id FROM inserted_donors ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER donors_remember_tenants AFTER INSERT ON donors
    REFERENCING NEW TABLE AS inserted_donors
    FOR EACH STATEMENT EXECUTE FUNCTION remember_donor_tenants();
