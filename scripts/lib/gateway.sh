# shellcheck shell=bash
# The nginx gateway for scripts/up: renders gateway/nginx.conf.template into "$ALMONER_RUN_DIR/gateway"
# and runs nginx from there. Sourced; needs infra.sh (for nginx_bin).
#
#   gateway_render FILE   write the rendered configuration
#   gateway_start         (re)start nginx on 127.0.0.1:$ALMONER_GATEWAY_PORT
#   gateway_stop          stop the nginx that gateway_start started

[[ -n "${_ALMONER_GATEWAY_SH:-}" ]] && return 0
_ALMONER_GATEWAY_SH=1

# shellcheck source=scripts/lib/infra.sh
. "$(dirname "${BASH_SOURCE[0]}")/infra.sh"

GATEWAY_TEMPLATE=$ALMONER_REPO/gateway/nginx.conf.template
GATEWAY_PREFIX=$ALMONER_RUN_DIR/gateway
GATEWAY_CONF=$GATEWAY_PREFIX/nginx.conf
GATEWAY_PID_FILE=$GATEWAY_PREFIX/nginx.pid
GATEWAY_ERROR_LOG=$ALMONER_RUN_DIR/logs/gateway.error.log
GATEWAY_ACCESS_LOG=$ALMONER_RUN_DIR/logs/gateway.access.log

gateway_url() { printf 'http://127.0.0.1:%s\n' "$ALMONER_GATEWAY_PORT"; }

# The template's variables and their values here, as NAME=VALUE lines.
gateway_variables() {
    local svc temp
    # Workers run as an unprivileged user when nginx starts as root: they must reach the temp directory.
    temp=$(data_dir_for nobody gateway-temp)
    own_dir nobody "$temp"
    printf 'ALMONER_GATEWAY_LISTEN=127.0.0.1:%s\n' "$ALMONER_GATEWAY_PORT"
    for svc in $(service_names); do
        printf 'ALMONER_GATEWAY_%s_UPSTREAM=127.0.0.1:%s\n' "$(service_upper "$svc")" "$(service_port "$svc")"
    done
    printf 'ALMONER_GATEWAY_ACCESS_LOG=%s\n' "$GATEWAY_ACCESS_LOG"
    printf 'ALMONER_GATEWAY_ERROR_LOG=%s\n' "$GATEWAY_ERROR_LOG"
    printf 'ALMONER_GATEWAY_PID_FILE=%s\n' "$GATEWAY_PID_FILE"
    printf 'ALMONER_GATEWAY_TEMP_DIR=%s\n' "$temp"
}

gateway_render() {
    local out=$1 names="" line
    local -a assignments=()
    command -v envsubst >/dev/null || die "envsubst not found (Debian package gettext-base)"
    while IFS= read -r line; do
        assignments+=("$line")
        names+=" \${${line%%=*}}"
    done < <(gateway_variables)
    mkdir -p "$(dirname "$out")"
    env "${assignments[@]}" envsubst "$names" <"$GATEWAY_TEMPLATE" >"$out.tmp"
    local unknown
    # shellcheck disable=SC2016 # a literal ${...}
    unknown=$(grep -o '\${ALMONER_[A-Z0-9_]*}' "$out.tmp" | sort -u | tr '\n' ' ' || true)
    if [[ -n $unknown ]]; then
        rm -f "$out.tmp"
        die "gateway/nginx.conf.template uses $unknown which scripts/lib/gateway.sh does not set (is the service in ALMONER_SERVICES?)"
    fi
    mv "$out.tmp" "$out"
}

gateway_pid() {
    local pid
    pid=$(cat "$GATEWAY_PID_FILE" 2>/dev/null || true)
    if [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == nginx ]]; then
        printf '%s\n' "$pid"
    else
        return 1
    fi
}

gateway_stop() {
    local pid
    if pid=$(gateway_pid); then
        log "gateway: stopping nginx (pid $pid)"
        stop_pid "$pid" nginx 15
    fi
    rm -f "$GATEWAY_PID_FILE"
}

gateway_start() {
    local nginx pid
    nginx=$(nginx_bin) || die "nginx not found; install Debian's nginx package"
    gateway_stop
    if tcp_open 127.0.0.1 "$ALMONER_GATEWAY_PORT"; then
        die "port $ALMONER_GATEWAY_PORT is taken by another program; free it or set ALMONER_GATEWAY_PORT"
    fi
    mkdir -p "$GATEWAY_PREFIX" "$(dirname "$GATEWAY_ERROR_LOG")"
    gateway_render "$GATEWAY_CONF"
    if ! "$nginx" -t -q -p "$GATEWAY_PREFIX" -e "$GATEWAY_ERROR_LOG" -c "$GATEWAY_CONF"; then
        die "nginx rejects $GATEWAY_CONF (rendered from gateway/nginx.conf.template); see the message above"
    fi
    "$nginx" -p "$GATEWAY_PREFIX" -e "$GATEWAY_ERROR_LOG" -c "$GATEWAY_CONF" ||
        die "nginx did not start; see $GATEWAY_ERROR_LOG"
    wait_until 10 "nginx on port $ALMONER_GATEWAY_PORT" tcp_open 127.0.0.1 "$ALMONER_GATEWAY_PORT" ||
        die "nginx does not accept connections on port $ALMONER_GATEWAY_PORT; see $GATEWAY_ERROR_LOG"
    pid=$(gateway_pid) || die "nginx started but wrote no pid file at $GATEWAY_PID_FILE"
    log "gateway: nginx (pid $pid) on $(gateway_url), logs in $ALMONER_RUN_DIR/logs/gateway.*.log"
}
