# shellcheck shell=bash
# The staff console (console/, a Vite single-page app) for scripts/up, scripts/test and scripts/bench: Node,
# its packages, the build the gateway serves at / (console/dist), and Chromium for its browser tests. Sourced;
# needs infra.sh (apt_install).
#
#   ensure_node            Node.js >= 20.19 with npm on PATH, or die naming what to install
#   console_install        npm ci, only when console/package-lock.json (or Node) changed since the last one
#   console_build          console_install, then npm run build (tsc, then vite build into console/dist)
#   console_typecheck      npm run typecheck
#   console_bundle_sizes   each file of console/dist/assets, its size and gzip size
#   ensure_chromium        /usr/bin/chromium, installed from Debian when missing; prints its path
#
# ALMONER_CONSOLE=0 makes scripts/up skip the console (the gateway then answers / with 503 console_not_built).

[[ -n "${_ALMONER_CONSOLE_SH:-}" ]] && return 0
_ALMONER_CONSOLE_SH=1

# shellcheck source=scripts/lib/infra.sh
. "$(dirname "${BASH_SOURCE[0]}")/infra.sh"

CONSOLE_DIR=$ALMONER_REPO/console
CONSOLE_DIST=$CONSOLE_DIR/dist
# Vite 7 needs Node 20.19 or later (console/package.json "engines").
CONSOLE_NODE_MIN=20.19
# What the last npm ci installed from: the lockfile's hash and Node's version.
CONSOLE_NPM_STAMP=$ALMONER_RUN_DIR/console-npm-ci.stamp

# ensure_node: Node.js of at least CONSOLE_NODE_MIN, and npm. Debian 12's own nodejs package is 18, too old for
# Vite, so nothing is installed here: the message says where to get a newer one.
ensure_node() {
    local version major minor want_major want_minor
    want_major=${CONSOLE_NODE_MIN%%.*}
    want_minor=${CONSOLE_NODE_MIN#*.}
    if ! command -v node >/dev/null; then
        die "Node.js $CONSOLE_NODE_MIN or later is needed to build the staff console, and node is not on PATH.
  Install Node.js 20 LTS or 22 LTS with npm (https://nodejs.org/en/download, or NodeSource's Debian packages; Debian's
  own nodejs package is too old for Vite), or set ALMONER_CONSOLE=0 to run scripts/up without the console."
    fi
    version=$(node --version 2>/dev/null || true)
    version=${version#v}
    major=${version%%.*}
    minor=${version#*.}
    minor=${minor%%.*}
    if ! [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] ||
        ((major < want_major || (major == want_major && minor < want_minor))); then
        die "the staff console needs Node.js $CONSOLE_NODE_MIN or later; $(command -v node) is ${version:-of unknown version}.
  Install Node.js 20 LTS (20.19+) or 22 LTS with npm (https://nodejs.org/en/download, or NodeSource's Debian packages;
  Debian's own nodejs package is too old for Vite), or set ALMONER_CONSOLE=0 to run scripts/up without the console."
    fi
    command -v npm >/dev/null ||
        die "node $version is here but npm is not: install the npm that comes with Node.js $version (https://nodejs.org/en/download)"
}

_console_npm_key() {
    printf '%s node-%s\n' "$(sha256sum "$CONSOLE_DIR/package-lock.json" | cut -d' ' -f1)" "$(node --version)"
}

# console_install: npm ci (exactly the locked packages) when the lockfile or Node changed since the last run, or
# node_modules is missing. npm ci deletes node_modules first, so it is not run when nothing changed.
console_install() {
    local key
    ensure_node
    [[ -f $CONSOLE_DIR/package-lock.json ]] || die "$CONSOLE_DIR/package-lock.json is missing"
    key=$(_console_npm_key)
    if [[ -d $CONSOLE_DIR/node_modules && -f $CONSOLE_NPM_STAMP && $(cat "$CONSOLE_NPM_STAMP") == "$key" ]]; then
        log "console: packages up to date with package-lock.json"
        return 0
    fi
    log "console: npm ci (package-lock.json changed since the last install, or first install)"
    (cd "$CONSOLE_DIR" && npm ci --no-audit --no-fund) || die "npm ci failed in $CONSOLE_DIR"
    printf '%s\n' "$key" >"$CONSOLE_NPM_STAMP"
}

console_typecheck() {
    console_install
    log "console: npm run typecheck"
    (cd "$CONSOLE_DIR" && npm run --silent typecheck) || die "the console does not typecheck (npm run typecheck in $CONSOLE_DIR)"
}

# console_build: the build the gateway serves (console/dist), then its sizes.
console_build() {
    console_install
    log "console: npm run build"
    (cd "$CONSOLE_DIR" && npm run --silent build) || die "the console build failed (npm run build in $CONSOLE_DIR)"
    [[ -f $CONSOLE_DIST/index.html ]] || die "npm run build wrote no $CONSOLE_DIST/index.html"
    console_bundle_sizes
}

# console_bundle_sizes: what a browser downloads, file by file (gzip -9, close to what the gateway sends).
console_bundle_sizes() {
    local f size gz total=0 gz_total=0
    [[ -d $CONSOLE_DIST/assets ]] || {
        warn "no $CONSOLE_DIST/assets: the console is not built"
        return 0
    }
    log "console: bundle in $CONSOLE_DIST/assets"
    for f in "$CONSOLE_DIST"/assets/*; do
        [[ -f $f ]] || continue
        size=$(stat -c %s "$f")
        gz=$(gzip -9 -c "$f" | wc -c)
        total=$((total + size))
        gz_total=$((gz_total + gz))
        printf '  %-36s %9.1f KiB  %8.1f KiB gzip\n' "${f##*/}" "$(bc_kib "$size")" "$(bc_kib "$gz")" >&2
    done
    printf '  %-36s %9.1f KiB  %8.1f KiB gzip\n' total "$(bc_kib "$total")" "$(bc_kib "$gz_total")" >&2
}

# bc_kib BYTES: KiB with one decimal, for printf %.1f (no bc needed).
bc_kib() { printf '%d.%d\n' $(($1 / 1024)) $((($1 % 1024) * 10 / 1024)); }

# ensure_chromium: Debian's Chromium, which the console's browser tests drive through playwright-core (no
# browser download). Prints its path.
ensure_chromium() {
    if [[ ! -x /usr/bin/chromium ]]; then
        apt_install chromium
    fi
    [[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is still missing after installing Debian's chromium package"
    printf '%s\n' /usr/bin/chromium
}
