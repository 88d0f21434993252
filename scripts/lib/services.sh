# shellcheck shell=bash
# Building, migrating, starting and stopping the service binaries for scripts/up and scripts/down.
# Sourced; needs infra.sh (the per-service env files it writes).
#
#   services_build           cargo build of every service (release; ALMONER_PROFILE=dev for debug)
#   service_run SVC ARGS...  run `SVC ARGS...` in the foreground with the service's environment
#   service_start SVC        (re)start `SVC serve` in the background; log in $ALMONER_RUN_DIR/logs/SVC.log
#   service_stop SVC         stop what service_start started

[[ -n "${_ALMONER_SERVICES_SH:-}" ]] && return 0
_ALMONER_SERVICES_SH=1

# shellcheck source=scripts/lib/infra.sh
. "$(dirname "${BASH_SOURCE[0]}")/infra.sh"

: "${ALMONER_PROFILE:=release}"

cargo_target_dir() {
    if [[ -z ${_ALMONER_TARGET_DIR:-} ]]; then
        _ALMONER_TARGET_DIR=$(cd "$ALMONER_REPO" && cargo metadata --format-version 1 --no-deps 2>/dev/null | jq -r .target_directory) ||
            _ALMONER_TARGET_DIR=""
        [[ -n $_ALMONER_TARGET_DIR && $_ALMONER_TARGET_DIR != null ]] || _ALMONER_TARGET_DIR=${CARGO_TARGET_DIR:-$ALMONER_REPO/target}
    fi
    printf '%s\n' "$_ALMONER_TARGET_DIR"
}

profile_dir() {
    case "$ALMONER_PROFILE" in
    release) printf 'release\n' ;;
    dev | debug) printf 'debug\n' ;;
    *) die "ALMONER_PROFILE must be release or dev, not '$ALMONER_PROFILE'" ;;
    esac
}

service_bin() { printf '%s/%s/%s\n' "$(cargo_target_dir)" "$(profile_dir)" "$1"; }

services_build() {
    local -a args=(build)
    local svc
    [[ $(profile_dir) == debug ]] || args+=(--release)
    for svc in $(service_names); do args+=(-p "$svc"); done
    log "cargo ${args[*]}"
    (cd "$ALMONER_REPO" && cargo "${args[@]}") || die "cargo ${args[*]} failed"
    for svc in $(service_names); do
        [[ -x $(service_bin "$svc") ]] || die "cargo built no binary at $(service_bin "$svc") (is the package named '$svc'?)"
    done
}

# The command prefix that runs a service: the environment of "$ALMONER_RUN_DIR/services/SVC.env", minus
# the scripts' own settings (ALMONER_PG_PORT and the like), which a service's configuration loader
# would otherwise read as unknown keys. ALMONER_<SECTION>__<KEY> set by the caller (log level, say) pass.
# service_command SVC [NAME=VALUE...]: sets SERVICE_COMMAND.
service_command() {
    local svc=$1 file=$ALMONER_RUN_DIR/services/$1.env name line
    shift
    [[ -f $file ]] || die "$file is missing; scripts/lib/infra.sh writes it (run infra_up first)"
    SERVICE_COMMAND=(env)
    while IFS= read -r name; do
        [[ $name == *__* ]] || SERVICE_COMMAND+=(-u "$name")
    done < <(compgen -e | grep '^ALMONER_' || true)
    while IFS= read -r line; do
        [[ -z $line || $line == '#'* ]] || SERVICE_COMMAND+=("$line")
    done <"$file"
    SERVICE_COMMAND+=("$@" "$(service_bin "$svc")")
}

service_run() {
    local svc=$1
    shift
    service_command "$svc"
    (cd "$ALMONER_REPO" && "${SERVICE_COMMAND[@]}" "$@")
}

service_pid_file() { printf '%s/pids/%s.pid\n' "$ALMONER_RUN_DIR" "$1"; }

# The recorded pid, if that process is still this service.
service_pid() {
    local svc=$1 pid
    pid=$(cat "$(service_pid_file "$svc")" 2>/dev/null || true)
    if [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "/$svc serve"; then
        printf '%s\n' "$pid"
    else
        return 1
    fi
}

service_stop() {
    local svc=$1 pid
    if pid=$(service_pid "$svc"); then
        log "$svc: stopping (pid $pid)"
        stop_pid "$pid" "$svc" 30
    fi
    rm -f "$(service_pid_file "$svc")"
}

service_start() {
    local svc=$1 port log pid
    port=$(service_port "$svc")
    log=$ALMONER_RUN_DIR/logs/$svc.log
    service_stop "$svc"
    if tcp_open 127.0.0.1 "$port"; then
        die "port $port for $svc is taken by another program (see: ss -ltnp 'sport = :$port'); free it or set ALMONER_$(service_upper "$svc")_PORT"
    fi
    mkdir -p "$ALMONER_RUN_DIR/pids" "$ALMONER_RUN_DIR/logs"
    service_command "$svc" ALMONER_DATABASE__RUN_MIGRATIONS=false
    printf '\n--- %s: %s serve\n' "$(date -u +%FT%TZ)" "$svc" >>"$log"
    # Migrations already ran (scripts/up runs `migrate` first). setsid: the service outlives this shell's
    # session and ^C; every program in the chain execs, so $! is the service's own pid.
    (cd "$ALMONER_REPO" && exec nohup setsid "${SERVICE_COMMAND[@]}" serve) </dev/null >>"$log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$(service_pid_file "$svc")"
    sleep 0.3
    if ! pid_alive "$pid"; then
        tail -n 30 "$log" >&2 || true
        die "$svc exited at once; log: $log"
    fi
    log "$svc: started (pid $pid) on 127.0.0.1:$port, log $log"
}

# service_wait_ready SVC URL: poll URL (the service's /ready) until it answers 200.
service_wait_ready() {
    local svc=$1 url=$2 deadline=$((SECONDS + ALMONER_START_TIMEOUT)) code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$url" || true)
        [[ $code == 200 ]] && return 0
        if ! service_pid "$svc" >/dev/null; then
            tail -n 30 "$ALMONER_RUN_DIR/logs/$svc.log" >&2 || true
            die "$svc exited while starting; log: $ALMONER_RUN_DIR/logs/$svc.log"
        fi
        if ((SECONDS >= deadline)); then
            curl -s --max-time 3 "$url" >&2 || true
            die "$svc not ready after ${ALMONER_START_TIMEOUT}s ($url answers ${code:-nothing}); log: $ALMONER_RUN_DIR/logs/$svc.log"
        fi
        sleep 0.5
    done
}
