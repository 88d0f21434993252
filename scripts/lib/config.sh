# shellcheck shell=bash
# The knobs of scripts/up, scripts/down, scripts/test and scripts/bench. Every value can be overridden
# from the environment. Sourced by common.sh.

# The services, as name:port. Adding a service is one line here; scripts/gen-gateway then writes its
# upstream and locations into gateway/nginx.conf.template. ALMONER_<NAME>_PORT (e.g. ALMONER_IDENTITY_PORT)
# overrides a port.
# The order is the order scripts/up migrates and starts them in: identity first, since the others
# verify tokens with the keys at its /.well-known/jwks.json.
# shellcheck disable=SC2034 # used by the files that source this one
ALMONER_SERVICES=(
    identity:8086
    fundraising:8081
    rollup:8085
    storage:8084
    webhook-ingest:8083
    messaging:8082
)

# Infrastructure. When something already answers on HOST:PORT it is reused; otherwise, for a local
# host, a private instance is started under the run directory.
: "${ALMONER_PG_HOST:=127.0.0.1}"
: "${ALMONER_PG_PORT:=5432}"
: "${ALMONER_PG_SUPERUSER:=postgres}"
: "${ALMONER_PG_SUPERUSER_PASSWORD:=}"
# A private PostgreSQL cluster is crash-safe (fsync, synchronous commit) unless this is 1. scripts/test sets it
# for its throwaway test databases; scripts/up leaves it, so the demo stack and the benchmarks are durable.
: "${ALMONER_PG_FAST_UNSAFE:=0}"
# A durable private cluster's shared_buffers (1GB; with lz4 WAL compression, max_wal_size 4GB and 15 min
# checkpoints, as docs/operations.md recommends for production).
: "${ALMONER_PG_SHARED_BUFFERS:=1GB}"
: "${ALMONER_DB_NAME:=almoner}"
: "${ALMONER_REDIS_HOST:=127.0.0.1}"
: "${ALMONER_REDIS_PORT:=6379}"
: "${ALMONER_AMQP_HOST:=127.0.0.1}"
: "${ALMONER_AMQP_PORT:=5672}"
: "${ALMONER_AMQP_USER:=guest}"
: "${ALMONER_AMQP_PASSWORD:=guest}"
# Erlang distribution port of a private RabbitMQ node (RabbitMQ's own default is AMQP port + 20000).
: "${ALMONER_AMQP_DIST_PORT:=$((ALMONER_AMQP_PORT + 20000))}"
# Erlang port mapper a private RabbitMQ registers with (started by the node if none runs).
: "${ALMONER_EPMD_PORT:=4369}"
# The S3-compatible object store (the storage service's files). A private one is s3s-fs, installed with
# `cargo install` into the run directory; the storage service creates ALMONER_S3_BUCKET, tests their own buckets.
: "${ALMONER_S3_HOST:=127.0.0.1}"
: "${ALMONER_S3_PORT:=9000}"
: "${ALMONER_S3_ACCESS_KEY:=almoner-dev}"
: "${ALMONER_S3_SECRET_KEY:=almoner-dev-secret-key}"
: "${ALMONER_S3_REGION:=us-east-1}"
: "${ALMONER_S3_BUCKET:=almoner}"
: "${ALMONER_GATEWAY_PORT:=8080}"
# The gateway's per-client API rate limit (limit_req rate and burst) and the origins allowed to call the API
# from a browser (space-separated; empty: no CORS). See gateway/README.md.
: "${ALMONER_GATEWAY_API_RATE:=100r/s}"
: "${ALMONER_GATEWAY_API_BURST:=200}"
: "${ALMONER_GATEWAY_CORS_ORIGINS:=}"
# The development mailbox scripts/up runs (scripts/lib/mailbox.py): identity mails staff sign-in links to its SMTP
# port, and its HTTP port shows them (GET /messages?to=<address>).
: "${ALMONER_MAILBOX_SMTP_PORT:=1025}"
: "${ALMONER_MAILBOX_HTTP_PORT:=8025}"

# Seconds to wait for each thing to come up.
: "${ALMONER_START_TIMEOUT:=120}"
