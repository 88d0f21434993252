-- Statistics for tables an import has outgrown. On a new installation (or any table never analyzed) PostgreSQL
-- plans without statistics, and the foreign-key check each gift makes against its donor picked an index that
-- only matches the tenant (donors_full_name_idx), reading every donor of the tenant for every gift: a
-- 50,000-row import took 12 s instead of 4.5 s until autovacuum came by. The importer calls this with the number
-- of donors and gifts it has written so far (in its chunk's transaction, whose own rows ANALYZE counts); a table
-- whose statistics know fewer than half that many rows is analyzed then, so it happens a few times per import of
-- a new tenant and never for an installation whose tables already hold more. SKIP_LOCKED: a table autovacuum is
-- working on is left to it. SECURITY DEFINER, as ANALYZE needs the tables' owner; it takes numbers only.
CREATE FUNCTION almoner_analyze_outgrown(donors_written bigint, gifts_written bigint) RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path FROM CURRENT
    AS $$
BEGIN
    IF (SELECT reltuples FROM pg_class WHERE oid = 'donors'::regclass) < donors_written / 2 THEN
        ANALYZE (SKIP_LOCKED) donors;
    END IF;
    IF (SELECT reltuples FROM pg_class WHERE oid = 'gifts'::regclass) < gifts_written / 2 THEN
        ANALYZE (SKIP_LOCKED) gifts;
    END IF;
END
$$;
