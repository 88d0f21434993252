# shellcheck shell=bash
# The development mailbox (scripts/lib/mailbox.py: an SMTP sink with the messages over HTTP) that scripts/up runs
# for identity's sign-in links, so the staff console's sign-in works without a real mail relay. Sourced.
#
#   mailbox_start   (re)start it: SMTP on 127.0.0.1:$ALMONER_MAILBOX_SMTP_PORT, HTTP on $ALMONER_MAILBOX_HTTP_PORT
#   mailbox_stop    stop what mailbox_start started
#   mailbox_url     http://127.0.0.1:<http port> (GET /messages?to=<address>)

[[ -n "${_ALMONER_MAILBOX_SH:-}" ]] && return 0
_ALMONER_MAILBOX_SH=1

# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

MAILBOX_SCRIPT=$ALMONER_REPO/scripts/lib/mailbox.py
MAILBOX_PID_FILE=$ALMONER_RUN_DIR/pids/mailbox.pid
MAILBOX_LOG=$ALMONER_RUN_DIR/logs/mailbox.log

mailbox_url() { printf 'http://127.0.0.1:%s\n' "$ALMONER_MAILBOX_HTTP_PORT"; }

# The recorded pid, if that process is still the mailbox.
mailbox_pid() {
    local pid
    pid=$(cat "$MAILBOX_PID_FILE" 2>/dev/null || true)
    if [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'mailbox\.py'; then
        printf '%s\n' "$pid"
    else
        return 1
    fi
}

mailbox_stop() {
    local pid
    if pid=$(mailbox_pid); then
        log "mailbox: stopping (pid $pid)"
        stop_pid "$pid" mailbox 10
    fi
    rm -f "$MAILBOX_PID_FILE"
}

mailbox_start() {
    local pid port
    command -v python3 >/dev/null || die "python3 is needed for the development mailbox (Debian package python3)"
    mailbox_stop
    for port in "$ALMONER_MAILBOX_SMTP_PORT" "$ALMONER_MAILBOX_HTTP_PORT"; do
        if tcp_open 127.0.0.1 "$port"; then
            die "port $port for the development mailbox is taken; free it or set ALMONER_MAILBOX_SMTP_PORT and ALMONER_MAILBOX_HTTP_PORT"
        fi
    done
    mkdir -p "$(dirname "$MAILBOX_PID_FILE")" "$(dirname "$MAILBOX_LOG")"
    (exec nohup setsid python3 "$MAILBOX_SCRIPT" --smtp-port "$ALMONER_MAILBOX_SMTP_PORT" \
        --http-port "$ALMONER_MAILBOX_HTTP_PORT") </dev/null >>"$MAILBOX_LOG" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$MAILBOX_PID_FILE"
    wait_until 10 "the mailbox on port $ALMONER_MAILBOX_HTTP_PORT" tcp_open 127.0.0.1 "$ALMONER_MAILBOX_HTTP_PORT" ||
        die "the development mailbox did not start; log: $MAILBOX_LOG"
    log "mailbox: SMTP on 127.0.0.1:$ALMONER_MAILBOX_SMTP_PORT, messages at $(mailbox_url)/messages?to=<address> (pid $pid)"
}
