-- Tenant policies as initplans, so a tenant the statistics have not seen is planned as an average one (see the
-- platform migration that defines the function).
SELECT almoner_tenant_policies_as_initplans();
