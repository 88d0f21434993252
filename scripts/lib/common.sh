# shellcheck shell=bash
# Helpers shared by scripts/*: logging, bounded waits, run-directory bookkeeping, running a command as a
# service user. Sourced, never executed. Everything else in scripts/lib builds on this file.

# shellcheck disable=SC2016 # single-quoted `bash -c` scripts take their values as arguments

[[ -n "${_ALMONER_COMMON_SH:-}" ]] && return 0
_ALMONER_COMMON_SH=1

ALMONER_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Everything the scripts start keeps its data, logs and pid files here; `rm -rf` it to start afresh.
ALMONER_RUN_DIR=${ALMONER_RUN_DIR:-$ALMONER_REPO/.run}
mkdir -p "$ALMONER_RUN_DIR"
ALMONER_RUN_DIR=$(cd "$ALMONER_RUN_DIR" && pwd)

# shellcheck source=scripts/lib/config.sh
. "$ALMONER_REPO/scripts/lib/config.sh"

log() { printf '[almoner] %s\n' "$*" >&2; }
warn() { printf '[almoner] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[almoner] ERROR: %s\n' "$*" >&2
    exit 1
}

# wait_until SECONDS WHAT COMMAND...: run COMMAND every 0.25 s until it succeeds; false after SECONDS.
wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 0.25
    done
}

# tcp_open HOST PORT: something accepts TCP connections there.
tcp_open() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

is_local_host() {
    case "$1" in 127.* | localhost | ::1) return 0 ;; *) return 1 ;; esac
}

pid_alive() {
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null
}

# stop_pid PID WHAT [SECONDS]: SIGTERM, wait, then SIGKILL. Only for pids this project recorded.
stop_pid() {
    local pid=$1 what=$2 timeout=${3:-20}
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until "$timeout" "$what (pid $pid) to exit" bash -c '! kill -0 "$0" 2>/dev/null' "$pid"; then
        warn "$what (pid $pid) ignored SIGTERM for ${timeout}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
}

# run_as USER COMMAND...: servers refuse to run as root (PostgreSQL) or expect their own user (RabbitMQ).
# As a non-root user everything runs as that user.
run_as() {
    local user=$1
    shift
    if [[ $EUID -eq 0 && $user != root ]]; then
        runuser -u "$user" -- "$@"
    else
        "$@"
    fi
}

# own_dir USER DIR...: create the directories, owned by USER when we are root.
own_dir() {
    local user=$1
    shift
    mkdir -p "$@"
    if [[ $EUID -eq 0 && $user != root ]]; then
        chown "$user:" "$@"
    fi
}

# data_dir_for USER NAME: "$ALMONER_RUN_DIR/NAME" when USER can reach the run directory, otherwise
# (a checkout under /root, say) a private directory under /tmp keyed by the run directory. Unix
# socket paths are limited to 107 bytes, so a very long run directory also moves to /tmp.
data_dir_for() {
    local user=$1 name=$2 base=$ALMONER_RUN_DIR
    if [[ $EUID -eq 0 && $user != root ]] && ! runuser -u "$user" -- test -x "$base"; then
        base=""
    fi
    if [[ -z $base || ${#base} -gt 70 ]]; then
        base=/tmp/almoner-run-$(printf '%s' "$ALMONER_RUN_DIR" | cksum | cut -d' ' -f1)
        mkdir -p "$base"
        chmod 755 "$base"
    fi
    printf '%s/%s\n' "$base" "$name"
}

# What the scripts started is recorded as one file per component in $ALMONER_RUN_DIR/started/,
# KEY=VALUE lines, so `down` stops exactly that and nothing it merely reused.
started_dir() { printf '%s/started\n' "$ALMONER_RUN_DIR"; }

record_started() {
    local component=$1
    shift
    mkdir -p "$(started_dir)"
    printf '%s\n' "$@" >"$(started_dir)/$component"
}

# started_get COMPONENT KEY
started_get() {
    local file
    file="$(started_dir)/$1"
    [[ -f $file ]] || return 1
    sed -n "s/^$2=//p" "$file" | tail -n 1
}

forget_started() { rm -f "$(started_dir)/$1"; }

list_started() {
    local d
    d=$(started_dir)
    [[ -d $d ]] || return 0
    find "$d" -maxdepth 1 -type f -printf '%f\n' | sort
}

# url_encode STRING (for passwords inside URLs)
url_encode() {
    local s=$1 out='' c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case "$c" in
        [A-Za-z0-9._~-]) out+=$c ;;
        *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s\n' "$out"
}

# The gateway scripts/up runs (scripts/lib/gateway.sh), as clients and the services' public URLs reach it.
gateway_url() { printf 'http://127.0.0.1:%s\n' "$ALMONER_GATEWAY_PORT"; }

# service_port NAME: ALMONER_<NAME>_PORT overrides the port given in ALMONER_SERVICES.
service_port() {
    local name=$1 entry var
    var="ALMONER_$(service_upper "$name")_PORT"
    if [[ -n "${!var:-}" ]]; then
        printf '%s\n' "${!var}"
        return
    fi
    for entry in "${ALMONER_SERVICES[@]}"; do
        if [[ ${entry%%:*} == "$name" ]]; then
            printf '%s\n' "${entry#*:}"
            return
        fi
    done
    die "unknown service '$name' (known: $(service_names | tr '\n' ' '))"
}

service_names() {
    local entry
    for entry in "${ALMONER_SERVICES[@]}"; do printf '%s\n' "${entry%%:*}"; done
}

# identity -> IDENTITY, webhook-ingest -> WEBHOOK_INGEST
service_upper() {
    local s=${1//-/_}
    printf '%s\n' "${s^^}"
}

# identity -> identity_app, webhook-ingest -> webhook_ingest_app (the service's PostgreSQL role)
service_role() { printf '%s_app\n' "${1//-/_}"; }
