-- The last day of the charity's accounting period (month and day), which Gift Aid's 4-year limit runs from. NULL
-- (the default) means the day before the fiscal year starts, so it follows fiscal_year_start_month until a
-- tenant sets its own. Day 29 of February means the last day of February, whatever the year.
ALTER TABLE tenants
    ADD COLUMN accounting_period_end_month smallint,
    ADD COLUMN accounting_period_end_day   smallint,
    ADD CONSTRAINT tenants_accounting_period_end_check CHECK (
        (accounting_period_end_month IS NULL) = (accounting_period_end_day IS NULL)
        AND (accounting_period_end_month IS NULL OR (
            accounting_period_end_month BETWEEN 1 AND 12
            AND accounting_period_end_day BETWEEN 1 AND CASE
                WHEN accounting_period_end_month = 2 THEN 29
                WHEN accounting_period_end_month IN (4, 6, 9, 11) THEN 30
                ELSE 31 END)));
