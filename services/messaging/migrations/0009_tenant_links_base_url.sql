-- A tenant's own address for short links (`https://go.charity.example`, pointed at the gateway): its messages carry
-- `<links_base_url>/l/<code>`. NULL: the installation's `sms.links_base_url`.
ALTER TABLE settings ADD COLUMN links_base_url text
    CHECK (links_base_url IS NULL OR links_base_url ~ '^https?://[^/?#\s]+$');
