#!/bin/bash
# Creates the almoner database and one LOGIN role per service (<service>_app, '-' -> '_'),
# the password of each taken from <SERVICE>_DB_PASSWORD (e.g. IDENTITY_DB_PASSWORD,
# FUNDRAISING_DB_PASSWORD, WEBHOOK_INGEST_DB_PASSWORD). The services are the space-separated
# ALMONER_DB_SERVICES (compose/docker-compose.yml sets it). The services' migrations create their
# schemas and grant this role USAGE + DML; the role itself owns nothing, so row-level security
# applies to it.
#
# The postgres image runs this once, when the data volume is empty. It is idempotent: after
# adding a service to ALMONER_DB_SERVICES (and its password to compose/.env), run it again:
#   docker compose exec -u postgres postgres /docker-entrypoint-initdb.d/10-almoner-roles.sh
set -euo pipefail

database="${ALMONER_DB_NAME:-almoner}"
services="${ALMONER_DB_SERVICES:-identity fundraising rollup}"

run_psql() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" "$@"
}

run_psql --dbname postgres -v db="${database}" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL

for service in ${services}; do
  role="${service//-/_}_app"
  password_var="$(tr '[:lower:]-' '[:upper:]_' <<<"${service}")_DB_PASSWORD"
  password="${!password_var:-}"
  if [[ -z "${password}" ]]; then
    echo "10-almoner-roles.sh: ${password_var} is not set (needed for role ${role})" >&2
    exit 1
  fi
  run_psql --dbname "${database}" -v role="${role}" -v password="${password}" -v db="${database}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role')
\gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD %L',
              :'role', :'password')
\gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'role')
\gexec
SQL
  echo "10-almoner-roles.sh: role ${role} ready in database ${database}"
done
