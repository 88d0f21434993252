#!/bin/sh
# The gateway image's /docker-entrypoint.d/15-almoner-tls-certificates.sh (gateway/Dockerfile). The image's
# entrypoint runs it before it renders the templates and starts nginx. Does nothing unless
# ALMONER_TLS_CERTIFICATE is set, which only Compose's TLS setup does (docs/deployment.md, "TLS at the gateway").
#
#   ALMONER_TLS_CERTIFICATE, ALMONER_TLS_CERTIFICATE_KEY
#       the certificate chain and key as mounted (PEM files, readable by the nginx user), e.g. what certbot
#       writes, or your own
#   ALMONER_GATEWAY_TLS_CERTIFICATE, ALMONER_GATEWAY_TLS_CERTIFICATE_KEY
#       where nginx reads them (compose/gateway/tls.conf.template): made symbolic links to the mounted files
#   ALMONER_GATEWAY_PID_FILE   nginx's pid file, to signal it
#   ALMONER_TLS_CHECK_SECONDS  how often the mounted files are looked at (60)
#
# Until both mounted files exist (the first certbot run needs the gateway up to answer its challenge), the
# links point at a self-signed placeholder made here, so nginx starts and serves the challenge on port 80.
# Then a watcher compares the mounted files' contents every ALMONER_TLS_CHECK_SECONDS and, when they change
# (the first certificate, each renewal), points the links at them and reloads nginx (SIGHUP: new
# connections get the new certificate, open ones finish). A broken pair is refused by the reload and nginx
# keeps serving the previous one; the error log says why. The watcher's pid is written beside the links.
set -eu

source_certificate="${ALMONER_TLS_CERTIFICATE:-}"
[ -n "${source_certificate}" ] || exit 0
source_key="${ALMONER_TLS_CERTIFICATE_KEY:?ALMONER_TLS_CERTIFICATE is set, ALMONER_TLS_CERTIFICATE_KEY must be too}"
certificate="${ALMONER_GATEWAY_TLS_CERTIFICATE:?where nginx reads the certificate}"
key="${ALMONER_GATEWAY_TLS_CERTIFICATE_KEY:?where nginx reads the key}"
pid_file="${ALMONER_GATEWAY_PID_FILE:?nginx pid file}"
interval="${ALMONER_TLS_CHECK_SECONDS:-60}"
links="$(dirname "${certificate}")"
me="$(basename "$0")"
mkdir -p "${links}" "$(dirname "${key}")"

point_links() {
    if [ -r "${source_certificate}" ] && [ -r "${source_key}" ]; then
        ln -sfn "${source_certificate}" "${certificate}"
        ln -sfn "${source_key}" "${key}"
        echo "${me}: serving ${source_certificate}" >&2
        return
    fi
    if [ ! -s "${links}/placeholder.key" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=almoner-placeholder" \
            -keyout "${links}/placeholder.key" -out "${links}/placeholder.crt" 2>/dev/null
    fi
    ln -sfn "${links}/placeholder.crt" "${certificate}"
    ln -sfn "${links}/placeholder.key" "${key}"
    echo "${me}: no readable ${source_certificate} and ${source_key} yet: serving a self-signed placeholder until they appear" >&2
}

fingerprint() {
    cat "${source_certificate}" "${source_key}" 2>/dev/null | cksum
}

point_links
last="$(fingerprint)"
(
    while sleep "${interval}"; do
        now="$(fingerprint)"
        [ "${now}" != "${last}" ] || continue
        last="${now}"
        point_links
        if [ -s "${pid_file}" ] && kill -HUP "$(cat "${pid_file}")"; then
            echo "${me}: the certificate changed: nginx reloaded" >&2
        fi
    done
) </dev/null &
echo "$!" >"${links}/watcher.pid"
