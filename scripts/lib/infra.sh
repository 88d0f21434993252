# shellcheck shell=bash
# PostgreSQL, Redis, RabbitMQ and an S3 server for development and tests. Sourced by scripts/up,
# scripts/down and scripts/test; never edits system configuration.
#
#   infra_up      install missing Debian packages (as root), then for each server: reuse the one that
#                 answers on its configured host:port, or start a private one under the run directory (for
#                 S3, s3s-fs, built once by `cargo install` into the run directory); create the database and
#                 the per-service roles; write "$ALMONER_RUN_DIR/env" and "$ALMONER_RUN_DIR/services/<svc>.env".
#                 Sets INFRA_STARTED_NOW to what this call started.
#   infra_down [COMPONENT...]
#                 stop what the scripts started (default: everything recorded in $ALMONER_RUN_DIR/started).
#
# Settings (environment, defaults in config.sh): ALMONER_RUN_DIR, ALMONER_PG_HOST/PORT/SUPERUSER/
# SUPERUSER_PASSWORD, ALMONER_DB_NAME, ALMONER_REDIS_HOST/PORT, ALMONER_AMQP_HOST/PORT/USER/PASSWORD,
# ALMONER_AMQP_DIST_PORT, ALMONER_EPMD_PORT, ALMONER_S3_HOST/PORT/ACCESS_KEY/SECRET_KEY/REGION/BUCKET,
# ALMONER_START_TIMEOUT.

# shellcheck disable=SC2016 # single-quoted `bash -c` scripts take their values as arguments

[[ -n "${_ALMONER_INFRA_SH:-}" ]] && return 0
_ALMONER_INFRA_SH=1

# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

INFRA_STARTED_NOW=()

# ---------------------------------------------------------------------------------------------------
# Packages

pg_bin_dir() {
    local d
    while read -r d; do
        if [[ -x $d/initdb && -x $d/pg_ctl ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done < <(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V -r)
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

# The real RabbitMQ scripts. Debian's /usr/sbin wrappers switch to user rabbitmq with `su`, which resets
# HOME (and with it the Erlang cookie); calling these directly keeps the private node's environment.
rabbit_bin_dir() {
    if [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
        printf '%s\n' /usr/lib/rabbitmq/bin
    elif command -v rabbitmq-server >/dev/null && command -v rabbitmqctl >/dev/null; then
        dirname "$(command -v rabbitmq-server)"
    else
        return 1
    fi
}

nginx_bin() {
    if command -v nginx >/dev/null; then
        command -v nginx
    elif [[ -x /usr/sbin/nginx ]]; then
        printf '%s\n' /usr/sbin/nginx
    else
        return 1
    fi
}

_ALMONER_APT_UPDATED=${_ALMONER_APT_UPDATED:-}

# apt_install PACKAGE...: as root on Debian/Ubuntu; otherwise say what to install.
apt_install() {
    (($#)) || return 0
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "missing packages: $*. Install them (Debian/Ubuntu: sudo apt-get install -y $*) and re-run."
    fi
    local apt_log=$ALMONER_RUN_DIR/logs/apt.log
    mkdir -p "$(dirname "$apt_log")"
    if [[ -z $_ALMONER_APT_UPDATED ]]; then
        log "apt-get update"
        if ! DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$apt_log" 2>&1; then
            tail -n 20 "$apt_log" >&2
            die "apt-get update failed; full log in $apt_log"
        fi
        _ALMONER_APT_UPDATED=1
    fi
    log "apt-get install $* (log: $apt_log)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2
        die "apt-get install $* failed; full log in $apt_log"
    fi
}

# infra_install: install whatever is missing. apt may start the packaged services on
# machines without a policy-rc.d; the reuse checks below then find and use them.
infra_install() {
    local -a pkgs=()
    pg_bin_dir >/dev/null || pkgs+=(postgresql)
    command -v pg_isready >/dev/null && command -v psql >/dev/null || pkgs+=(postgresql-client)
    command -v redis-server >/dev/null || pkgs+=(redis-server)
    command -v redis-cli >/dev/null || pkgs+=(redis-tools)
    rabbit_bin_dir >/dev/null || pkgs+=(rabbitmq-server)
    nginx_bin >/dev/null && [[ -f /usr/lib/nginx/modules/ngx_http_js_module.so ]] || pkgs+=(nginx libnginx-mod-http-js)
    command -v envsubst >/dev/null || pkgs+=(gettext-base)
    command -v curl >/dev/null || pkgs+=(curl)
    command -v jq >/dev/null || pkgs+=(jq)
    command -v ss >/dev/null || pkgs+=(iproute2)
    command -v flock >/dev/null && command -v runuser >/dev/null || pkgs+=(util-linux)
    apt_install "${pkgs[@]}"
}

# ---------------------------------------------------------------------------------------------------
# PostgreSQL

pg_admin_url() {
    local db=${1:-postgres} auth
    auth=$(url_encode "$ALMONER_PG_SUPERUSER")
    if [[ -n $ALMONER_PG_SUPERUSER_PASSWORD ]]; then
        auth+=":$(url_encode "$ALMONER_PG_SUPERUSER_PASSWORD")"
    fi
    printf 'postgres://%s@%s:%s/%s\n' "$auth" "$ALMONER_PG_HOST" "$ALMONER_PG_PORT" "$db"
}

pg_psql() {
    PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 "$@"
}

# The configured superuser can log in over TCP and is a superuser.
pg_superuser_ok() {
    [[ $(pg_psql "$(pg_admin_url)" -Atc 'select rolsuper from pg_roles where rolname = current_user' 2>/dev/null) == t ]]
}

# Debian's packaged cluster (started by apt on some machines) asks for passwords over TCP. Rather than
# edit its pg_hba.conf, add a password superuser for Almoner through its local socket (peer auth).
pg_adopt_debian_cluster() {
    [[ $EUID -eq 0 ]] && command -v pg_lsclusters >/dev/null || return 1
    is_local_host "$ALMONER_PG_HOST" || return 1
    pg_lsclusters --no-header 2>/dev/null | awk -v p="$ALMONER_PG_PORT" '$3 == p && $4 ~ /online/ { found = 1 } END { exit !found }' ||
        return 1
    local role=almoner_admin
    warn "PostgreSQL on port $ALMONER_PG_PORT is Debian's packaged cluster and wants a password; adding superuser '$role' to it"
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$ALMONER_PG_PORT" -d postgres -c "
        DO \$\$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN
            CREATE ROLE $role SUPERUSER LOGIN PASSWORD '$role';
          ELSE
            ALTER ROLE $role SUPERUSER LOGIN PASSWORD '$role';
          END IF;
        END \$\$;" >/dev/null || return 1
    ALMONER_PG_SUPERUSER=$role
    ALMONER_PG_SUPERUSER_PASSWORD=$role
    pg_superuser_ok
}

pg_up() {
    local host=$ALMONER_PG_HOST port=$ALMONER_PG_PORT rc=0
    pg_isready -q -h "$host" -p "$port" -t 3 || rc=$?
    if ((rc == 1)); then # answering but still starting up (or shutting down)
        wait_until 60 "PostgreSQL on $host:$port to accept connections" pg_isready -q -h "$host" -p "$port" -t 3 || true
        pg_isready -q -h "$host" -p "$port" -t 3 && rc=0
    fi
    if ((rc == 0)); then
        if pg_superuser_ok || pg_adopt_debian_cluster; then
            log "PostgreSQL: reusing the server on $host:$port"
            return 0
        fi
        local err
        err=$(pg_psql "$(pg_admin_url)" -c 'select 1' 2>&1 >/dev/null | head -n 3 || true)
        die "PostgreSQL on $host:$port answers, but superuser '$ALMONER_PG_SUPERUSER' cannot log in (${err:-not a superuser}).
  Set ALMONER_PG_SUPERUSER / ALMONER_PG_SUPERUSER_PASSWORD, or choose a free ALMONER_PG_PORT to get a private cluster."
    fi
    is_local_host "$host" || die "no PostgreSQL answers on $host:$port (private servers are only started on this machine)"
    if tcp_open "$host" "$port"; then
        die "port $port on $host is taken by something that is not PostgreSQL; choose another ALMONER_PG_PORT"
    fi
    pg_start_private
}

pg_start_private() {
    local host=$ALMONER_PG_HOST port=$ALMONER_PG_PORT bindir dir
    bindir=$(pg_bin_dir) || die "PostgreSQL server programs (initdb, pg_ctl) not found; install Debian's postgresql package"
    dir=$(data_dir_for postgres "postgres-$port")
    [[ $dir != *[[:space:]]* ]] || die "the PostgreSQL data directory '$dir' contains whitespace; set ALMONER_RUN_DIR"
    [[ $host != localhost ]] || host=127.0.0.1
    own_dir postgres "$dir" "$dir/sock"
    if [[ ! -s $dir/data/PG_VERSION ]]; then
        log "PostgreSQL: initialising a private cluster in $dir/data"
        rm -rf "$dir/data"
        without_lock run_as postgres "$bindir/initdb" -D "$dir/data" -A trust -U "$ALMONER_PG_SUPERUSER" -E UTF8 --locale=C.UTF-8 \
            >"$dir/initdb.log" 2>&1 || die "initdb failed; see $dir/initdb.log"
    fi
    if run_as postgres "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        die "the private cluster $dir/data is running but not answering on $host:$port (started with another port?).
  Stop it with: runuser -u postgres -- $bindir/pg_ctl -D $dir/data stop"
    fi
    log "PostgreSQL: starting a private server on $host:$port (data in $dir)"
    local options="-c listen_addresses=$host -c port=$port -c unix_socket_directories=$dir/sock -c max_connections=500"
    if [[ $ALMONER_PG_FAST_UNSAFE == 1 ]]; then
        # Test databases only: tests create and drop many of them, and a crash loses nothing anyone needs.
        log "PostgreSQL: fsync and synchronous_commit off (ALMONER_PG_FAST_UNSAFE=1)"
        options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    else
        # A durable server is sized for a giving day's writes rather than PostgreSQL's defaults, as a production
        # server should be (docs/operations.md, "PostgreSQL settings"): with 128 MB of shared buffers the gift
        # tables' indexes did not fit, and backends wrote dirty pages out themselves in the middle of requests;
        # lz4 halves the full-page images that follow each checkpoint, and fewer checkpoints make fewer of them.
        options+=" -c shared_buffers=$ALMONER_PG_SHARED_BUFFERS -c wal_compression=lz4"
        options+=" -c max_wal_size=4GB -c checkpoint_timeout=15min"
    fi
    if ! without_lock run_as postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t "$ALMONER_START_TIMEOUT" \
        -o "$options" start >/dev/null 2>&1; then
        tail -n 20 "$dir/postgres.log" >&2 || true
        die "PostgreSQL did not start on $host:$port; log: $dir/postgres.log"
    fi
    record_started "postgres-$port" kind=postgres "port=$port" "data=$dir/data" "bindir=$bindir" "log=$dir/postgres.log"
    INFRA_STARTED_NOW+=("postgres-$port")
    wait_until 30 "PostgreSQL superuser login on $host:$port" pg_superuser_ok ||
        die "the private PostgreSQL on $host:$port started, but '$ALMONER_PG_SUPERUSER' cannot log in; log: $dir/postgres.log"
}

pg_stop() {
    local component=$1 data bindir
    data=$(started_get "$component" data)
    bindir=$(started_get "$component" bindir)
    if [[ -f $data/postmaster.pid ]]; then
        log "PostgreSQL: stopping the private server ($data)"
        run_as postgres "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            warn "pg_ctl stop failed for $data"
    fi
}

# The database and one LOGIN role per service, idempotently, by the same script the Compose
# PostgreSQL container runs at its first start (compose/postgres-init/10-almoner-roles.sh), so that
# development, tests and Compose get the same database and roles. For development each role's
# password is its name (infra_write_env puts it in the services' URLs).
pg_setup_database() {
    local db=$ALMONER_DB_NAME svc
    local -a env=(
        "ALMONER_DB_NAME=$db"
        "ALMONER_DB_SERVICES=$(service_names | tr '\n' ' ')"
        "PGHOST=$ALMONER_PG_HOST" "PGPORT=$ALMONER_PG_PORT" "PGUSER=$ALMONER_PG_SUPERUSER" PGCONNECT_TIMEOUT=5
    )
    [[ -z $ALMONER_PG_SUPERUSER_PASSWORD ]] || env+=("PGPASSWORD=$ALMONER_PG_SUPERUSER_PASSWORD")
    [[ $db =~ ^[a-z_][a-z0-9_]*$ ]] || die "ALMONER_DB_NAME '$db' must be a plain lower-case identifier"
    for svc in $(service_names); do
        env+=("$(service_upper "$svc")_DB_PASSWORD=$(service_role "$svc")")
    done
    env "${env[@]}" bash "$ALMONER_REPO/compose/postgres-init/10-almoner-roles.sh" >/dev/null ||
        die "could not create the database $db and the services' roles (compose/postgres-init/10-almoner-roles.sh)"
}

# ---------------------------------------------------------------------------------------------------
# Redis

redis_answers() {
    [[ $(timeout 5 redis-cli -h "$1" -p "$2" ping 2>/dev/null) == PONG ]]
}

redis_up() {
    local host=$ALMONER_REDIS_HOST port=$ALMONER_REDIS_PORT dir pid
    if redis_answers "$host" "$port"; then
        log "Redis: reusing the server on $host:$port"
        return 0
    fi
    is_local_host "$host" || die "no Redis answers on $host:$port (private servers are only started on this machine)"
    tcp_open "$host" "$port" && die "port $port on $host is taken by something that does not answer Redis PING; choose another ALMONER_REDIS_PORT"
    [[ $host != localhost ]] || host=127.0.0.1
    dir=$(data_dir_for root "redis-$port")
    mkdir -p "$dir"
    log "Redis: starting a private server on $host:$port"
    without_lock redis-server --bind "$host" --port "$port" --save '' --appendonly no --dir "$dir" \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null ||
        die "redis-server did not start; log: $dir/redis.log"
    wait_until 30 "Redis on $host:$port" redis_answers "$host" "$port" || die "Redis did not answer on $host:$port; log: $dir/redis.log"
    wait_until 5 "Redis pid file" test -s "$dir/redis.pid" || true
    pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
    record_started "redis-$port" kind=redis "port=$port" "host=$host" "pid=$pid" "dir=$dir" "log=$dir/redis.log"
    INFRA_STARTED_NOW+=("redis-$port")
}

redis_stop() {
    local component=$1 port host pid
    port=$(started_get "$component" port)
    host=$(started_get "$component" host)
    pid=$(started_get "$component" pid)
    log "Redis: stopping the private server on $host:$port"
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]]; then
        timeout 10 redis-cli -h "$host" -p "$port" shutdown nosave >/dev/null 2>&1 || true
        wait_until 10 "Redis to exit" bash -c '! kill -0 "$0" 2>/dev/null' "$pid" || stop_pid "$pid" redis-server 10
    fi
}

# ---------------------------------------------------------------------------------------------------
# RabbitMQ

# amqp_answers HOST PORT: the peer speaks AMQP 0-9-1 (answers the protocol header with Connection.Start).
# A bare TCP check is not enough: another node's Erlang distribution port also accepts connections.
amqp_answers() {
    local out
    out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "AMQP\x00\x00\x09\x01" >&3 && head -c 11 <&3' "$1" "$2" 2>/dev/null |
        od -An -tx1 | tr -d ' \n') || true
    [[ $out == 010000????????000a000a ]]
}

epmd_pid() {
    ss -ltnpH "sport = :$ALMONER_EPMD_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true
}

# rabbit_env DIR PORT DIST: the environment of a private node (also used by rabbitmqctl to find it).
rabbit_env() {
    local dir=$1 port=$2 dist=$3 host=$ALMONER_AMQP_HOST
    [[ $host != localhost ]] || host=127.0.0.1
    RABBIT_ENV=(
        "HOME=$dir/home"
        "RABBITMQ_NODENAME=almoner-$port@localhost"
        "RABBITMQ_NODE_IP_ADDRESS=$host"
        "RABBITMQ_NODE_PORT=$port"
        "RABBITMQ_DIST_PORT=$dist"
        "RABBITMQ_MNESIA_BASE=$dir/mnesia"
        "RABBITMQ_LOG_BASE=$dir/log"
        "RABBITMQ_PID_FILE=$dir/rabbitmq.pid"
        "RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf"
        "RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config"
        "RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf"
        "RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins"
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
        "ERL_EPMD_ADDRESS=127.0.0.1"
        "ERL_EPMD_PORT=$ALMONER_EPMD_PORT"
        "ERL_CRASH_DUMP=$dir/log/erl_crash.dump"
    )
}

# rabbitmqctl_private SECONDS DIR PORT DIST ARGS...: rabbitmqctl against a private node, bounded in time.
# It runs as the calling user (root reads the node's cookie too), so `timeout` reaches the Erlang VM.
rabbitmqctl_private() {
    local seconds=$1 dir=$2 port=$3 dist=$4
    shift 4
    rabbit_env "$dir" "$port" "$dist"
    (cd "$dir" && without_lock timeout "$seconds" env "${RABBIT_ENV[@]}" "$(rabbit_bin_dir)/rabbitmqctl" -n "almoner-$port@localhost" "$@")
}

# The pid of a private node when it is running: from its pid file, or, while it is still booting and has
# written none, from the Erlang VM's command line (which names the node's HOME).
rabbit_node_pid() {
    local dir=$1 pid
    pid=$(cat "$dir/rabbitmq.pid" 2>/dev/null || true)
    if [[ -z $pid || $(cat "/proc/$pid/comm" 2>/dev/null) != beam* ]]; then
        pid=$(pgrep -n -f -- "beam.* -home $dir/home( |$)" || true)
    fi
    [[ -n $pid ]] || return 1
    printf '%s\n' "$pid"
}

# RabbitMQ takes seconds to boot, so it is started first and waited for last (rabbit_finish).
RABBIT_PENDING=""

rabbit_begin() {
    local host=$ALMONER_AMQP_HOST port=$ALMONER_AMQP_PORT dist=$ALMONER_AMQP_DIST_PORT dir bindir epmd_before=0
    RABBIT_PENDING=""
    if amqp_answers "$host" "$port"; then
        log "RabbitMQ: reusing the broker on $host:$port"
        return 0
    fi
    is_local_host "$host" || die "no AMQP broker answers on $host:$port (private servers are only started on this machine)"
    tcp_open "$host" "$port" && die "port $port on $host is taken by something that does not speak AMQP; choose another ALMONER_AMQP_PORT"
    tcp_open 127.0.0.1 "$dist" && die "port $dist (Erlang distribution for a private RabbitMQ) is taken; set ALMONER_AMQP_DIST_PORT"
    bindir=$(rabbit_bin_dir) || die "RabbitMQ not found; install Debian's rabbitmq-server package"
    dir=$(data_dir_for rabbitmq "rabbitmq-$port")
    [[ $dir != *[[:space:]]* ]] || die "the RabbitMQ directory '$dir' contains whitespace; set ALMONER_RUN_DIR"
    if rabbit_node_pid "$dir" >/dev/null; then
        die "a private RabbitMQ node from $dir is running but does not answer AMQP on $host:$port; stop it (scripts/down) or kill pid $(rabbit_node_pid "$dir")"
    fi
    own_dir rabbitmq "$dir" "$dir/mnesia" "$dir/log" "$dir/home"
    rm -f "$dir/rabbitmq.pid"
    printf 'loopback_users.guest = true\n' >"$dir/rabbitmq.conf"
    printf '[].\n' >"$dir/enabled_plugins"
    : >"$dir/rabbitmq-env.conf"
    # The node and rabbitmqctl share this cookie; made here so that neither races to create it.
    if [[ ! -s $dir/home/.erlang.cookie ]]; then
        local cookie
        cookie=$(head -c 2000 /dev/urandom | LC_ALL=C tr -dc '[:upper:]')
        printf '%s' "${cookie:0:20}" >"$dir/home/.erlang.cookie"
        chmod 400 "$dir/home/.erlang.cookie"
    fi
    if [[ $EUID -eq 0 ]]; then
        chown rabbitmq: "$dir/rabbitmq.conf" "$dir/enabled_plugins" "$dir/rabbitmq-env.conf" "$dir/home/.erlang.cookie"
    fi
    if tcp_open 127.0.0.1 "$ALMONER_EPMD_PORT"; then epmd_before=1; fi
    log "RabbitMQ: starting a private node on $host:$port (data in $dir)"
    rabbit_env "$dir" "$port" "$dist"
    # Every quorum queue keeps segment files open, and the tests declare thousands of queues over a run: the node
    # gets the hard limit on open files rather than Debian's soft 1024 (RabbitMQ's docs ask for tens of thousands).
    # (Raised as the node's own user: runuser's PAM session would reset a limit raised before it.)
    # shellcheck disable=SC2016 # expanded by the inner shell
    (cd "$dir" && without_lock run_as rabbitmq bash -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"' _ \
        env "${RABBIT_ENV[@]}" "$bindir/rabbitmq-server" -detached) >"$dir/start.log" 2>&1 ||
        die "rabbitmq-server did not start; see $dir/start.log and $dir/log"
    record_started "rabbitmq-$port" kind=rabbitmq "port=$port" "dist=$dist" "dir=$dir" "epmd_before=$epmd_before" "epmd_port=$ALMONER_EPMD_PORT"
    INFRA_STARTED_NOW+=("rabbitmq-$port")
    RABBIT_PENDING="$port $dist $dir $epmd_before"
}

rabbit_finish() {
    [[ -n $RABBIT_PENDING ]] || return 0
    local port dist dir epmd_before pid epmd=""
    read -r port dist dir epmd_before <<<"$RABBIT_PENDING"
    RABBIT_PENDING=""
    if ! rabbitmqctl_private $((ALMONER_START_TIMEOUT + 10)) "$dir" "$port" "$dist" \
        wait --timeout "$ALMONER_START_TIMEOUT" "$dir/rabbitmq.pid" >>"$dir/start.log" 2>&1; then
        tail -n 20 "$dir/start.log" >&2 || true
        die "RabbitMQ did not boot within ${ALMONER_START_TIMEOUT}s; logs in $dir/log"
    fi
    wait_until 30 "AMQP on $ALMONER_AMQP_HOST:$port" amqp_answers "$ALMONER_AMQP_HOST" "$port" ||
        die "RabbitMQ booted but AMQP does not answer on $ALMONER_AMQP_HOST:$port; logs in $dir/log"
    pid=$(rabbit_node_pid "$dir" || true)
    # The node started epmd if none was running: remember its pid so that `down` stops it too.
    if [[ $epmd_before == 0 ]]; then epmd=$(epmd_pid); fi
    record_started "rabbitmq-$port" kind=rabbitmq "port=$port" "dist=$dist" "dir=$dir" "pid=$pid" "epmd_pid=$epmd" "epmd_port=$ALMONER_EPMD_PORT"
    log "RabbitMQ: ready on $ALMONER_AMQP_HOST:$port"
}

rabbit_stop() {
    local component=$1 port dist dir pid epmd
    port=$(started_get "$component" port)
    dist=$(started_get "$component" dist)
    dir=$(started_get "$component" dir)
    epmd=$(started_get "$component" epmd_pid || true)
    # The epmd port the node was started with, whatever this shell's settings.
    local ALMONER_EPMD_PORT
    ALMONER_EPMD_PORT=$(started_get "$component" epmd_port || true)
    : "${ALMONER_EPMD_PORT:=4369}"
    if pid=$(rabbit_node_pid "$dir"); then
        log "RabbitMQ: stopping the private node on port $port"
        # rabbitmqctl fails on a node that is still booting; the Erlang VM also stops cleanly on SIGTERM.
        if rabbitmqctl_private 60 "$dir" "$port" "$dist" stop >>"$dir/stop.log" 2>&1; then
            wait_until 60 "RabbitMQ (pid $pid) to exit" bash -c '! kill -0 "$0" 2>/dev/null' "$pid" || true
        fi
        stop_pid "$pid" "RabbitMQ node" 30
    fi
    # Interrupted before rabbit_finish: epmd was not running before this node, so the node started it.
    if [[ -z $epmd && $(started_get "$component" epmd_before || true) == 0 ]]; then epmd=$(epmd_pid); fi
    # Stop the epmd this node started, unless another Erlang node has registered with it since.
    if [[ -n $epmd && $(cat "/proc/$epmd/comm" 2>/dev/null) == epmd ]]; then
        if epmd -port "$ALMONER_EPMD_PORT" -names 2>/dev/null | grep -q '^name '; then
            log "RabbitMQ: leaving epmd (pid $epmd) running: other Erlang nodes use it"
        else
            log "RabbitMQ: stopping epmd (pid $epmd)"
            stop_pid "$epmd" epmd 5
        fi
    fi
}

# ---------------------------------------------------------------------------------------------------
# S3: s3s-fs, a small S3-compatible server over a directory that checks SigV4 signatures (presigned URLs
# included; a tampered one gets 403). Not packaged by Debian: `cargo install` builds it once (a release
# build, 1.5-3 minutes) into the run directory. 0.14.1 is the newest release that builds with Rust 1.95.

S3S_FS_VERSION=0.14.1

s3s_fs_root() { printf '%s/tools/s3s-fs-%s\n' "$ALMONER_RUN_DIR" "$S3S_FS_VERSION"; }

# host:port of the S3 server (an IPv6 address in brackets), as URLs and Host headers write it.
s3_authority() {
    local host=$ALMONER_S3_HOST
    [[ $host != *:* ]] || host="[$host]"
    printf '%s:%s\n' "$host" "$ALMONER_S3_PORT"
}

s3_endpoint() { printf 'http://%s\n' "$(s3_authority)"; }

# s3_answers: an S3 server answers at the endpoint. An unsigned request is refused with 403 (s3s-fs, MinIO,
# Garage, AWS) or, where anonymous access is allowed, answered with S3's XML; any other HTTP server (or a
# proxy answering for an unreachable address) is not taken for one.
s3_answers() {
    local out
    out=$(curl -s --max-time 3 --max-filesize 65536 -w '\n%{http_code}' "$(s3_endpoint)/" 2>/dev/null || true)
    [[ ${out##*$'\n'} == 403 || $out == *'<Error>'* || $out == *'<ListAllMyBucketsResult'* ]]
}

# s3_install: the s3s-fs binary, built when missing. Run from / so that no project's .cargo/config.toml
# applies, and without the infra lock's descriptor (a compiler cache server started now would keep it).
s3_install() {
    local root log
    root=$(s3s_fs_root)
    log=$ALMONER_RUN_DIR/logs/s3s-fs-install.log
    [[ -x $root/bin/s3s-fs ]] && return 0
    command -v cargo >/dev/null ||
        die "cargo not found: it builds s3s-fs, the private S3 server (or point ALMONER_S3_HOST/ALMONER_S3_PORT at a running S3)"
    log "S3: cargo install s3s-fs@$S3S_FS_VERSION into $root (a release build, a few minutes; log: $log)"
    mkdir -p "$(dirname "$log")"
    if ! (cd / && without_lock cargo install "s3s-fs@$S3S_FS_VERSION" --locked --features binary --root "$root") >"$log" 2>&1; then
        tail -n 30 "$log" >&2 || true
        die "cargo install s3s-fs@$S3S_FS_VERSION failed; full log in $log"
    fi
    [[ -x $root/bin/s3s-fs ]] || die "cargo install put no s3s-fs in $root/bin; log: $log"
}

# The pid of the s3s-fs listening on PORT, if one does.
s3s_fs_listener_pid() {
    local pid
    pid=$(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true)
    [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == s3s-fs ]] || return 1
    printf '%s\n' "$pid"
}

s3_up() {
    local host=$ALMONER_S3_HOST port=$ALMONER_S3_PORT dir log bin pid deadline
    if s3_answers; then
        log "S3: reusing the server at $(s3_endpoint)"
        return 0
    fi
    is_local_host "$host" || die "no S3 server answers at $(s3_endpoint) (private servers are only started on this machine)"
    tcp_open "$host" "$port" && die "port $port on $host is taken by something that is not an S3 server; choose another ALMONER_S3_PORT"
    [[ $host != localhost ]] || host=127.0.0.1
    s3_install
    bin=$(s3s_fs_root)/bin/s3s-fs
    dir=$ALMONER_RUN_DIR/s3-$port
    log=$ALMONER_RUN_DIR/logs/s3-$port.log
    mkdir -p "$dir/data" "$(dirname "$log")"
    log "S3: starting s3s-fs on $host:$port (data in $dir/data, log $log)"
    printf '\n--- %s: s3s-fs %s on %s:%s\n' "$(date -u +%FT%TZ)" "$S3S_FS_VERSION" "$host" "$port" >>"$log"
    # setsid: it outlives this shell's session and ^C. The lock's descriptor is closed in the subshell.
    (
        [[ -z ${_ALMONER_INFRA_LOCK_FD:-} ]] || exec {_ALMONER_INFRA_LOCK_FD}>&-
        exec nohup setsid -w "$bin" --host "$host" --port "$port" \
            --access-key "$ALMONER_S3_ACCESS_KEY" --secret-key "$ALMONER_S3_SECRET_KEY" "$dir/data"
    ) </dev/null >>"$log" 2>&1 &
    pid=$!
    deadline=$((SECONDS + ALMONER_START_TIMEOUT))
    until s3_answers; do
        if ! pid_alive "$pid"; then
            tail -n 20 "$log" >&2 || true
            die "s3s-fs exited at once; log: $log"
        fi
        ((SECONDS < deadline)) || die "s3s-fs did not answer at $(s3_endpoint) within ${ALMONER_START_TIMEOUT}s; log: $log"
        sleep 0.25
    done
    # setsid forks (and -w waits) when already a process group leader, under job control: record the listener.
    pid=$(s3s_fs_listener_pid "$port") || pid=$!
    printf '%s\n' "$pid" >"$dir/s3s-fs.pid"
    record_started "s3-$port" kind=s3 "port=$port" "host=$host" "pid=$pid" "dir=$dir" "log=$log"
    INFRA_STARTED_NOW+=("s3-$port")
}

s3_stop() {
    local component=$1 port pid dir
    port=$(started_get "$component" port)
    pid=$(started_get "$component" pid)
    dir=$(started_get "$component" dir)
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == s3s-fs ]]; then
        log "S3: stopping s3s-fs on port $port (pid $pid)"
        stop_pid "$pid" s3s-fs 10
    fi
    rm -f "$dir/s3s-fs.pid"
}

# ---------------------------------------------------------------------------------------------------
# Environment files

amqp_url() {
    printf 'amqp://%s:%s@%s:%s/%%2f\n' "$(url_encode "$ALMONER_AMQP_USER")" "$(url_encode "$ALMONER_AMQP_PASSWORD")" \
        "$ALMONER_AMQP_HOST" "$ALMONER_AMQP_PORT"
}

redis_url() { printf 'redis://%s:%s\n' "$ALMONER_REDIS_HOST" "$ALMONER_REDIS_PORT"; }

# infra_write_env: "$ALMONER_RUN_DIR/env" (sourceable: the ALMONER_TEST_* variables for cargo nextest)
# and "$ALMONER_RUN_DIR/services/<svc>.env" (KEY=VALUE lines: what scripts/up runs each service with;
# usable with `set -a; . FILE`, `env $(cat FILE)`, systemd EnvironmentFile= or docker --env-file).
# They are separate because every service reads the same variable names with different values.
infra_write_env() {
    local nginx svc role port file identity_port
    nginx=$(nginx_bin || true)
    identity_port=$(service_port identity 2>/dev/null || printf 8086)
    {
        printf '# Written by scripts/lib/infra.sh. Source it (. %s) before `cargo nextest run`.\n' "$ALMONER_RUN_DIR/env"
        printf "export ALMONER_TEST_DATABASE_ADMIN_URL='%s'\n" "$(pg_admin_url postgres)"
        printf "export ALMONER_TEST_AMQP_URL='%s'\n" "$(amqp_url)"
        printf "export ALMONER_TEST_REDIS_URL='%s'\n" "$(redis_url)"
        printf "export ALMONER_TEST_NGINX_BIN='%s'\n" "$nginx"
        printf "export ALMONER_TEST_S3_ENDPOINT='%s'\n" "$(s3_endpoint)"
        printf "export ALMONER_TEST_S3_ACCESS_KEY='%s'\n" "$ALMONER_S3_ACCESS_KEY"
        printf "export ALMONER_TEST_S3_SECRET_KEY='%s'\n" "$ALMONER_S3_SECRET_KEY"
        printf "export ALMONER_TEST_S3_REGION='%s'\n" "$ALMONER_S3_REGION"
        # The staff console's build and browser tests (scripts/lib/console.sh builds it; scripts/test sets these too).
        printf "export ALMONER_TEST_CONSOLE_DIST='%s'\n" "$ALMONER_REPO/console/dist"
        [[ ! -x /usr/bin/chromium ]] || printf "export ALMONER_TEST_CHROMIUM_BIN='%s'\n" /usr/bin/chromium
        if command -v node >/dev/null; then printf "export ALMONER_TEST_NODE_BIN='%s'\n" "$(command -v node)"; fi
        printf '# Each service runs with the variables in %s/services/<service>.env\n' "$ALMONER_RUN_DIR"
    } >"$ALMONER_RUN_DIR/env.tmp"
    mv "$ALMONER_RUN_DIR/env.tmp" "$ALMONER_RUN_DIR/env"

    mkdir -p "$ALMONER_RUN_DIR/services"
    for svc in $(service_names); do
        role=$(service_role "$svc")
        port=$(service_port "$svc")
        file=$ALMONER_RUN_DIR/services/$svc.env
        {
            printf '# %s: written by scripts/lib/infra.sh\n' "$svc"
            printf 'ALMONER_ENV=dev\n'
            if [[ -d $ALMONER_REPO/services/$svc/config ]]; then
                printf 'ALMONER_CONFIG_DIR=%s\n' "$ALMONER_REPO/services/$svc/config"
            fi
            printf 'ALMONER_SERVER__HOST=127.0.0.1\n'
            printf 'ALMONER_SERVER__PORT=%s\n' "$port"
            printf 'ALMONER_DATABASE__URL=postgres://%s:%s@%s:%s/%s\n' "$role" "$role" "$ALMONER_PG_HOST" "$ALMONER_PG_PORT" "$ALMONER_DB_NAME"
            printf 'ALMONER_DATABASE__MIGRATION_URL=%s\n' "$(pg_admin_url "$ALMONER_DB_NAME")"
            printf 'ALMONER_DATABASE__APP_ROLE=%s\n' "$role"
            printf 'ALMONER_AMQP__URL=%s\n' "$(amqp_url)"
            printf 'ALMONER_REDIS__URL=%s\n' "$(redis_url)"
            printf 'ALMONER_AUTH__ISSUER=almoner-identity\n'
            printf 'ALMONER_AUTH__JWKS_URL=http://127.0.0.1:%s/.well-known/jwks.json\n' "$identity_port"
            [[ $svc != storage ]] || s3_service_env
            [[ $svc != identity ]] || identity_service_env
        } >"$file.tmp"
        if grep -v '^#' "$file.tmp" | grep -q "[^A-Za-z0-9_=./:@%+,~-]"; then
            die "a value in $file would need shell quoting; use plainer settings (passwords are URL-encoded)"
        fi
        mv "$file.tmp" "$file"
    done
}

# The storage service's S3 settings: path-style requests to the S3 server, its bucket created at start, and
# presigned URLs handed to browsers on the gateway's /s3/ (which forwards them to the S3 server unchanged).
s3_service_env() {
    printf 'ALMONER_S3__ENDPOINT=%s\n' "$(s3_endpoint)"
    printf 'ALMONER_S3__REGION=%s\n' "$ALMONER_S3_REGION"
    printf 'ALMONER_S3__BUCKET=%s\n' "$ALMONER_S3_BUCKET"
    printf 'ALMONER_S3__ACCESS_KEY=%s\n' "$ALMONER_S3_ACCESS_KEY"
    printf 'ALMONER_S3__SECRET_KEY=%s\n' "$ALMONER_S3_SECRET_KEY"
    printf 'ALMONER_S3__PATH_STYLE=true\n'
    printf 'ALMONER_S3__CREATE_BUCKET=true\n'
    printf 'ALMONER_S3__PUBLIC_URL=%s/s3\n' "$(gateway_url)"
}

# identity's staff sign-in: links open the console the gateway serves, and are mailed to the development mailbox
# (scripts/lib/mailbox.sh) that scripts/up runs.
identity_service_env() {
    printf 'ALMONER_SIGN_IN__CONSOLE_URL=%s\n' "$(gateway_url)"
    printf 'ALMONER_MAIL__HOST=127.0.0.1\n'
    printf 'ALMONER_MAIL__PORT=%s\n' "$ALMONER_MAILBOX_SMTP_PORT"
}

# Export the ALMONER_TEST_* variables into the calling shell.
infra_export_test_env() {
    # shellcheck source=/dev/null
    . "$ALMONER_RUN_DIR/env"
}

# ---------------------------------------------------------------------------------------------------
# Up and down

# Serialise concurrent scripts (up and test at once) around starting and stopping servers. Re-entrant, so
# that an exit trap calling infra_down after a failure inside infra_up does not wait for itself.
_ALMONER_INFRA_LOCK_DEPTH=0
_infra_lock() {
    if ((_ALMONER_INFRA_LOCK_DEPTH == 0)); then
        exec {_ALMONER_INFRA_LOCK_FD}>"$ALMONER_RUN_DIR/.infra.lock"
        flock -w 600 "$_ALMONER_INFRA_LOCK_FD" || die "another script holds $ALMONER_RUN_DIR/.infra.lock for 10 minutes"
    fi
    _ALMONER_INFRA_LOCK_DEPTH=$((_ALMONER_INFRA_LOCK_DEPTH + 1))
}

_infra_unlock() {
    ((_ALMONER_INFRA_LOCK_DEPTH > 0)) || return 0
    _ALMONER_INFRA_LOCK_DEPTH=$((_ALMONER_INFRA_LOCK_DEPTH - 1))
    if ((_ALMONER_INFRA_LOCK_DEPTH == 0)); then
        exec {_ALMONER_INFRA_LOCK_FD}>&-
        _ALMONER_INFRA_LOCK_FD=""
    fi
}

# without_lock COMMAND...: servers started while the lock is held must not inherit its descriptor,
# or they would hold the lock for as long as they run.
without_lock() {
    if [[ -n ${_ALMONER_INFRA_LOCK_FD:-} ]]; then
        "$@" {_ALMONER_INFRA_LOCK_FD}>&-
    else
        "$@"
    fi
}

infra_up() {
    INFRA_STARTED_NOW=()
    infra_install
    mkdir -p "$ALMONER_RUN_DIR/logs"
    _infra_lock
    rabbit_begin
    pg_up
    redis_up
    s3_up
    rabbit_finish
    pg_setup_database
    infra_write_env
    _infra_unlock
    log "infrastructure ready: PostgreSQL $ALMONER_PG_HOST:$ALMONER_PG_PORT, Redis $ALMONER_REDIS_HOST:$ALMONER_REDIS_PORT, RabbitMQ $ALMONER_AMQP_HOST:$ALMONER_AMQP_PORT, S3 $(s3_endpoint) (env: $ALMONER_RUN_DIR/env)"
}

# infra_down [COMPONENT...]: components are names in $ALMONER_RUN_DIR/started (e.g. postgres-5432).
infra_down() {
    local -a components=("$@")
    local c kind
    if ((${#components[@]} == 0)); then
        mapfile -t components < <(list_started)
    fi
    _infra_lock
    for c in "${components[@]}"; do
        [[ -n $c && -f "$(started_dir)/$c" ]] || continue
        kind=$(started_get "$c" kind)
        case "$kind" in
        postgres) pg_stop "$c" ;;
        redis) redis_stop "$c" ;;
        rabbitmq) rabbit_stop "$c" ;;
        s3) s3_stop "$c" ;;
        *) warn "unknown component record $(started_dir)/$c" ;;
        esac
        forget_started "$c"
    done
    _infra_unlock
}
