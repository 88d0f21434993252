#!/bin/bash
# The one definition of Almoner's database and per-service roles, used by both ways of running it:
#   - Compose: the postgres image runs it once, when the data volume is empty
#     (compose/docker-compose.yml mounts this directory at /docker-entrypoint-initdb.d);
#   - scripts/up and scripts/test: scripts/lib/infra.sh (pg_setup_database) runs it against the
#     development server, with each role's password set to the role's name.
#
# It creates the database ALMONER_DB_NAME (default almoner) and one LOGIN role per service of the
# space-separated ALMONER_DB_SERVICES, named <service>_app ('-' becomes '_'), whose password comes
# from <SERVICE>_DB_PASSWORD (IDENTITY_DB_PASSWORD, WEBHOOK_INGEST_DB_PASSWORD...). The role is no
# superuser and owns nothing, so row-level security applies to it; it may connect to the database
# and nothing more. The schemas are not created here: each service's `migrate` creates its own
# (CREATE SCHEMA IF NOT EXISTS <service>) and grants this role USAGE and DML on it, so a schema
# exists exactly when its migrations have run, whoever runs them.
#
# psql connects as POSTGRES_USER (the image's superuser) over the local socket unless the libpq
# variables (PGHOST, PGPORT, PGUSER, PGPASSWORD) say otherwise; infra.sh sets them.
#
# Idempotent: it also resets each role's attributes and password. After adding a service to
# ALMONER_DB_SERVICES (and its password to compose/.env), run it again:
#   docker compose exec -u postgres postgres /docker-entrypoint-initdb.d/10-almoner-roles.sh
set -euo pipefail

database="${ALMONER_DB_NAME:-almoner}"
services="${ALMONER_DB_SERVICES:?ALMONER_DB_SERVICES must list the services, e.g. "identity fundraising rollup"}"

run_psql() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${PGUSER:-${POSTGRES_USER:-postgres}}" "$@"
}

run_psql --dbname postgres -v db="${database}" >/dev/null <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL

for service in ${services}; do
  role="${service//-/_}_app"
  if [[ ! ${role} =~ ^[a-z_][a-z0-9_]*$ ]]; then
    echo "10-almoner-roles.sh: service '${service}' does not make a plain lower-case role name" >&2
    exit 1
  fi
  password_var="$(tr '[:lower:]-' '[:upper:]_' <<<"${service}")_DB_PASSWORD"
  password="${!password_var:-}"
  if [[ -z "${password}" ]]; then
    echo "10-almoner-roles.sh: ${password_var} is not set (needed for role ${role})" >&2
    exit 1
  fi
  run_psql --dbname "${database}" -v role="${role}" -v password="${password}" -v db="${database}" >/dev/null <<'SQL'
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
