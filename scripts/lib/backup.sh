# shellcheck shell=bash
# What scripts/backup, scripts/restore and scripts/wal-archive share: the encryption, where backups go (a local
# directory and, optionally, an S3 bucket), and the S3 calls.
#
# The S3 calls are curl's own AWS Signature Version 4 (path-style URLs, so any S3-compatible store: R2, S3, MinIO,
# Garage, s3s-fs), with no other client to install. The payload is declared UNSIGNED-PAYLOAD; uploads carry a
# Content-MD5, which the store checks, and the backups carry their own SHA-256s. Each call takes the store it talks to
# as its first argument: the name of an associative array made by s3_store, so that the same calls serve the
# installation's bucket (s3_installation_store) and the backups' destination (backup_s3_store), which may be another
# store altogether (an off-site R2 bucket, say). Needs curl, python3 and openssl; log and die from the caller.

# ---------------------------------------------------------------------------------------------------
# Stores

# s3_store NAME ENDPOINT REGION BUCKET ACCESS_KEY SECRET_KEY: NAME becomes a global associative array describing one
# bucket of one store. ENDPOINT is scheme://host[:port].
s3_store() {
    declare -gA "$1"
    local -n _s3_new=$1
    _s3_new=([endpoint]=${2%/} [region]=$3 [bucket]=$4 [access_key]=$5 [secret_key]=$6)
}

# s3_installation_store NAME [BUCKET]: the installation's own store (config.sh's ALMONER_S3_*), its bucket or BUCKET.
s3_installation_store() {
    s3_store "$1" "${ALMONER_S3_SCHEME:-http}://$ALMONER_S3_HOST:$ALMONER_S3_PORT" "$ALMONER_S3_REGION" \
        "${2:-$ALMONER_S3_BUCKET}" "$ALMONER_S3_ACCESS_KEY" "$ALMONER_S3_SECRET_KEY"
}

# s3_url STORE [KEY]: the bucket's URL, or the object's (each segment of the key percent-encoded).
s3_url() {
    local -n _s3=$1
    if [[ -n ${2:-} ]]; then
        printf '%s/%s/%s\n' "${_s3[endpoint]}" "${_s3[bucket]}" "$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/"))' "$2")"
    else
        printf '%s/%s\n' "${_s3[endpoint]}" "${_s3[bucket]}"
    fi
}

# s3_curl STORE ARGS...: curl signed for the store; fails on an HTTP error. No overall time limit (a backup may take
# long to move); a transfer slower than 1 KiB/s for two minutes is given up.
s3_curl() {
    local -n _s3=$1
    shift
    curl -fsS --retry 3 --connect-timeout 30 --speed-limit 1024 --speed-time 120 --aws-sigv4 "aws:amz:${_s3[region]}:s3" \
        --user "${_s3[access_key]}:${_s3[secret_key]}" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

# ---------------------------------------------------------------------------------------------------
# Objects

# s3_list STORE [PREFIX]: every object of the bucket under PREFIX, one per line: key, last modified (Unix seconds) and
# size, tab-separated (ListObjectsV2, page by page).
s3_list() {
    local store=$1 prefix=${2:-} token="" page url
    while :; do
        # SigV4 signs the query as sent: every value percent-encoded, "/" too.
        url="$(s3_url "$store")?list-type=2&max-keys=1000"
        [[ -z $prefix ]] || url+="&prefix=$(_s3_query_encode "$prefix")"
        [[ -z $token ]] || url+="&continuation-token=$(_s3_query_encode "$token")"
        page=$(s3_curl "$store" "$url") || return 1
        python3 -c '
import sys, xml.etree.ElementTree as ET
from datetime import datetime
root = ET.fromstring(sys.stdin.read())
ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
for item in root.findall("s3:Contents", ns):
    modified = datetime.fromisoformat(item.findtext("s3:LastModified", "", ns).replace("Z", "+00:00"))
    print(item.findtext("s3:Key", "", ns), int(modified.timestamp()), item.findtext("s3:Size", "0", ns), sep="\t")
' <<<"$page" || return 1
        token=$(python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
truncated = root.findtext("s3:IsTruncated", "false", ns) == "true"
print(root.findtext("s3:NextContinuationToken", "", ns) if truncated else "")
' <<<"$page") || return 1
        [[ -n $token ]] || break
    done
}

_s3_query_encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"
}

# s3_list_keys STORE [PREFIX]: every key of the bucket under PREFIX, one per line.
s3_list_keys() {
    s3_list "$@" | cut -f1
}

# s3_get STORE KEY FILE: the object into FILE; prints its content type.
s3_get() {
    s3_curl "$1" -o "$3" -w '%{content_type}' "$(s3_url "$1" "$2")"
}

# s3_put STORE KEY FILE [CONTENT_TYPE]: streams FILE up in one PUT, with its MD5 for the store to check.
s3_put() {
    local md5
    md5=$(openssl dgst -md5 -binary "$3" | base64)
    s3_curl "$1" -T "$3" -H "content-type: ${4:-application/octet-stream}" -H "content-md5: $md5" \
        "$(s3_url "$1" "$2")" >/dev/null
}

# s3_put_multipart STORE KEY FILE PART_BYTES: FILE up as a multipart upload, in parts of PART_BYTES (S3 allows 5 MiB
# to 5 GiB, and 10,000 parts), each read into a temporary file beside FILE and sent with its MD5. On any failure the
# upload is aborted (the store then holds nothing of it) and the call fails.
s3_put_multipart() {
    local store=$1 key=$2 file=$3 part_bytes=$4 url id query size n=0 offset=0 etag parts="" part answer
    url=$(s3_url "$store" "$key")
    size=$(stat -c %s "$file")
    (((size + part_bytes - 1) / part_bytes <= 10000)) || { log "$file needs more than 10,000 parts of $part_bytes bytes"; return 1; }
    id=$(s3_curl "$store" -X POST "$url?uploads=" | python3 -c '
import sys, xml.etree.ElementTree as ET
print(ET.fromstring(sys.stdin.read()).findtext("{http://s3.amazonaws.com/doc/2006-03-01/}UploadId") or "")') || return 1
    [[ -n $id ]] || return 1
    query="uploadId=$(_s3_query_encode "$id")"
    part=$(mktemp "$(dirname "$file")/.part.XXXXXX")
    while ((offset < size)); do
        n=$((n + 1))
        tail -c "+$((offset + 1))" "$file" | head -c "$part_bytes" >"$part"
        etag=$(s3_curl "$store" -T "$part" -H "content-md5: $(openssl dgst -md5 -binary "$part" | base64)" -D - -o /dev/null \
            "$url?partNumber=$n&$query" | tr -d '\r' | awk -F': ' 'tolower($1) == "etag" { print $2 }') || etag=""
        if [[ -z $etag ]]; then
            log "part $n of $file was not stored; aborting the upload"
            rm -f "$part"
            s3_curl "$store" -X DELETE "$url?$query" >/dev/null || true
            return 1
        fi
        parts+="<Part><PartNumber>$n</PartNumber><ETag>$etag</ETag></Part>"
        offset=$((offset + part_bytes))
    done
    rm -f "$part"
    # A completion can fail with 200 and an <Error> body: only CompleteMultipartUploadResult is success.
    answer=$(s3_curl "$store" -X POST -H 'content-type: application/xml' \
        --data-binary "<CompleteMultipartUpload>$parts</CompleteMultipartUpload>" "$url?$query") || answer=""
    if [[ $answer != *CompleteMultipartUploadResult* ]]; then
        log "completing the multipart upload of $file failed: ${answer:-no answer}"
        s3_curl "$store" -X DELETE "$url?$query" >/dev/null || true
        return 1
    fi
}

# s3_size STORE KEY: prints the object's size. Returns 1 when there is no such object, 2 when the store did not
# answer 200 or 404 (so that "absent" is never mistaken for "could not tell").
s3_size() {
    local -n _s3=$1
    local headers status
    headers=$(curl -sS --retry 3 --max-time 60 -I --aws-sigv4 "aws:amz:${_s3[region]}:s3" \
        --user "${_s3[access_key]}:${_s3[secret_key]}" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
        "$(s3_url "$1" "$2")") || return 2
    status=$(head -n 1 <<<"$headers" | awk '{print $2}')
    case "$status" in
    200) tr -d '\r' <<<"$headers" | awk -F': ' 'tolower($1) == "content-length" { print $2 }' ;;
    404) return 1 ;;
    *) return 2 ;;
    esac
}

# s3_delete STORE KEY
s3_delete() {
    s3_curl "$1" -X DELETE "$(s3_url "$1" "$2")" >/dev/null
}

# s3_make_bucket STORE: creates the bucket unless it is there.
s3_make_bucket() {
    s3_curl "$1" -o /dev/null -I "$(s3_url "$1")" 2>/dev/null || s3_curl "$1" -X PUT "$(s3_url "$1")" >/dev/null
}

# s3_remove_bucket STORE: deletes every object of the bucket, then the bucket; nothing when there is no such bucket.
# For throwaway buckets only (scripts/drill's second stack, scripts/test's drill stack and checks).
s3_remove_bucket() {
    s3_curl "$1" -o /dev/null -I "$(s3_url "$1")" 2>/dev/null || return 0
    local key
    while IFS= read -r key; do
        [[ -z $key ]] || s3_delete "$1" "$key"
    done < <(s3_list_keys "$1")
    s3_curl "$1" -X DELETE "$(s3_url "$1")" >/dev/null
}

# ---------------------------------------------------------------------------------------------------
# Encryption: AES-256-CBC, the key derived from the passphrase by PBKDF2 (600,000 iterations) with a random salt.

# backup_encrypt OUT: stdin, encrypted, into OUT.
backup_encrypt() {
    openssl enc -aes-256-cbc -pbkdf2 -iter 600000 -salt -pass "file:$ALMONER_BACKUP_PASSPHRASE_FILE" -out "$1"
}

# backup_decrypt IN: IN, decrypted, to stdout.
backup_decrypt() {
    openssl enc -d -aes-256-cbc -pbkdf2 -iter 600000 -pass "file:$ALMONER_BACKUP_PASSPHRASE_FILE" -in "$1"
}

backup_require_passphrase() {
    [[ -n ${ALMONER_BACKUP_PASSPHRASE_FILE:-} && -s ${ALMONER_BACKUP_PASSPHRASE_FILE:-} ]] ||
        die "set ALMONER_BACKUP_PASSPHRASE_FILE to a file holding the backups' passphrase"
}

# ---------------------------------------------------------------------------------------------------
# The S3 destination (ALMONER_BACKUP_S3_*): a bucket of the installation's store, or of another one.

# backup_s3_enabled: a bucket is set for the backups.
backup_s3_enabled() { [[ -n ${ALMONER_BACKUP_S3_BUCKET:-} ]]; }

# backup_s3_store NAME [BUCKET]: the destination's store, each setting defaulting to the installation's.
backup_s3_store() {
    s3_store "$1" "${ALMONER_BACKUP_S3_ENDPOINT:-${ALMONER_S3_SCHEME:-http}://$ALMONER_S3_HOST:$ALMONER_S3_PORT}" \
        "${ALMONER_BACKUP_S3_REGION:-$ALMONER_S3_REGION}" "${2:-$ALMONER_BACKUP_S3_BUCKET}" \
        "${ALMONER_BACKUP_S3_ACCESS_KEY:-$ALMONER_S3_ACCESS_KEY}" "${ALMONER_BACKUP_S3_SECRET_KEY:-$ALMONER_S3_SECRET_KEY}"
}

# backup_s3_upload STORE FILE KEY: FILE and FILE.sha256 up, then checked: the object's size (HEAD) equals the file's,
# and the .sha256 downloaded again equals the local one. The store checks each body against its Content-MD5. A file
# larger than ALMONER_BACKUP_S3_PART_MIB (256) MiB goes up as a multipart upload in parts of that size (one PUT
# stores at most 5 GiB on S3 and R2; 10,000 parts of 256 MiB, 2.5 TiB).
backup_s3_upload() {
    local store=$1 file=$2 key=$3 size remote check part_mib=${ALMONER_BACKUP_S3_PART_MIB:-256}
    if [[ ! $part_mib =~ ^[0-9]+$ ]] || ((part_mib < 5 || part_mib > 5120)); then
        die "ALMONER_BACKUP_S3_PART_MIB must be a number of MiB from 5 to 5120 (S3's part sizes)"
    fi
    size=$(stat -c %s "$file")
    if ((size > part_mib * 1024 * 1024)); then
        s3_put_multipart "$store" "$key" "$file" $((part_mib * 1024 * 1024)) ||
            die "the multipart upload of $file to $(s3_url "$store" "$key") failed"
    else
        s3_put "$store" "$key" "$file" || die "uploading $file to $(s3_url "$store" "$key") failed"
    fi
    s3_put "$store" "$key.sha256" "$file.sha256" text/plain || die "uploading $file.sha256 failed"
    remote=$(s3_size "$store" "$key") || die "$(s3_url "$store" "$key") is not there after its upload"
    [[ $remote == "$size" ]] || die "$(s3_url "$store" "$key") holds $remote bytes after its upload, not $size"
    check=$(mktemp)
    if ! s3_get "$store" "$key.sha256" "$check" >/dev/null || ! cmp -s "$check" "$file.sha256"; then
        rm -f "$check"
        die "$(s3_url "$store" "$key.sha256") does not read back as written"
    fi
    rm -f "$check"
}

# backup_s3_expire STORE PREFIX NAME_PATTERN DAYS KEEP: deletes the objects under PREFIX whose name after it matches
# the extended regular expression NAME_PATTERN and that are older than DAYS days, except the key KEEP and its .sha256.
backup_s3_expire() {
    local store=$1 prefix=$2 pattern=$3 days=$4 keep=$5 key modified size cutoff
    cutoff=$(($(date +%s) - days * 86400))
    while IFS=$'\t' read -r key modified size; do
        [[ -n $key && $key != "$keep" && $key != "$keep.sha256" ]] || continue
        [[ ${key#"$prefix"} =~ $pattern ]] || continue
        ((modified < cutoff)) || continue
        s3_delete "$store" "$key" || die "could not delete $(s3_url "$store" "$key")"
        log "backup: deleted (older than the retention) $(s3_url "$store" "$key")"
    done < <(s3_list "$store" "$prefix")
}

# ---------------------------------------------------------------------------------------------------
# WAL archive (scripts/wal-archive): each segment gzipped and encrypted, as wal/<segment>.gz.enc in the S3
# destination when ALMONER_BACKUP_S3_BUCKET is set, else under ALMONER_BACKUP_DIR.

backup_wal_key() { printf '%swal/%s.gz.enc\n' "${ALMONER_BACKUP_S3_PREFIX:-}" "$1"; }
backup_wal_file() { printf '%s/wal/%s.gz.enc\n' "$ALMONER_BACKUP_DIR" "$1"; }

# backup_wal_expire_before SEGMENT: deletes the archived segments (and backup history files) before SEGMENT, on any
# timeline, as pg_archivecleanup does; timeline history files are kept. What a base backup starting at SEGMENT needs
# is SEGMENT and after.
backup_wal_expire_before() {
    local cutoff=${1:8:16} name n=0
    [[ $1 =~ ^[0-9A-F]{24}$ ]] || die "not a WAL segment name: '$1'"
    if backup_s3_enabled; then
        backup_s3_store _wal_store
        local key modified size prefix="${ALMONER_BACKUP_S3_PREFIX:-}wal/"
        while IFS=$'\t' read -r key modified size; do
            name=${key#"$prefix"}
            [[ $name =~ ^[0-9A-F]{24}(\.[0-9A-F]{8}\.backup)?\.gz\.enc$ && ${name:8:16} < "$cutoff" ]] || continue
            s3_delete _wal_store "$key" || die "could not delete $(s3_url _wal_store "$key")"
            n=$((n + 1))
        done < <(s3_list _wal_store "$prefix")
    elif [[ -d $ALMONER_BACKUP_DIR/wal ]]; then
        local file
        for file in "$ALMONER_BACKUP_DIR"/wal/*.gz.enc; do
            [[ -e $file ]] || continue
            name=${file##*/}
            [[ $name =~ ^[0-9A-F]{24}(\.[0-9A-F]{8}\.backup)?\.gz\.enc$ && ${name:8:16} < "$cutoff" ]] || continue
            rm -f "$file"
            n=$((n + 1))
        done
    fi
    ((n == 0)) || log "backup: deleted $n archived WAL files from before $1 (the oldest base backup kept)"
}
