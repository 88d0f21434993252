-- Tenant policies compare with `(SELECT almoner_current_tenant())`, an initplan, rather than with the function
-- itself. The planner evaluates a plain stable function for its estimates: for a tenant the statistics have not
-- seen yet (a new charity importing its history), that estimate is one row, so it picks any tenant-prefixed index
-- and tests every row of the tenant against the query's other conditions, which the 50,000-row import measured
-- at seconds per 2,000-row chunk, growing with every chunk. An initplan's value is unknown at planning time, so
-- the estimate is the table's average tenant, and the value is still an index condition when the plan runs.
--
-- `almoner_tenant_policies_as_initplans()` rewrites every `tenant_isolation` policy of the schema this way; each
-- service calls it in a migration after its tables exist, and new tables declare the initplan form directly
-- (almoner_db::tenant::RLS_EXAMPLE). Running it again changes nothing.
CREATE FUNCTION almoner_tenant_policies_as_initplans() RETURNS integer
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
    AS $$
DECLARE
    policy record;
    rewritten integer := 0;
BEGIN
    -- Only the documented form, `(<column> = almoner_current_tenant())`, is rewritten, keeping its column.
    FOR policy IN
        SELECT p.tablename, substring(p.qual FROM '^\(([a-z_]+) = almoner_current_tenant\(\)\)$') AS column_name
        FROM pg_policies p
        WHERE p.schemaname = current_schema() AND p.policyname = 'tenant_isolation'
          AND p.qual ~ '^\(([a-z_]+) = almoner_current_tenant\(\)\)$'
        ORDER BY p.tablename
    LOOP
        EXECUTE format(
            'ALTER POLICY tenant_isolation ON %I USING (%I = (SELECT almoner_current_tenant())) '
            'WITH CHECK (%I = (SELECT almoner_current_tenant()))',
            policy.tablename, policy.column_name, policy.column_name);
        rewritten := rewritten + 1;
    END LOOP;
    RETURN rewritten;
END
$$;

SELECT almoner_tenant_policies_as_initplans();
