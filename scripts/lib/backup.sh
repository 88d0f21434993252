# shellcheck shell=bash
# The S3 calls of scripts/backup and scripts/restore: curl's own AWS Signature Version 4 (path-style URLs, so any
# S3-compatible store: R2, S3, MinIO, Garage, s3s-fs), with no other client to install. The payload is declared
# UNSIGNED-PAYLOAD (its integrity is the backup's own SHA-256s). Needs config.sh's ALMONER_S3_* and python3.

s3_base() {
    printf '%s://%s:%s/%s\n' "${ALMONER_S3_SCHEME:-http}" "$ALMONER_S3_HOST" "$ALMONER_S3_PORT" "$ALMONER_S3_BUCKET"
}

# s3_curl ARGS...: curl signed for the store; fails on an HTTP error.
s3_curl() {
    curl -fsS --retry 3 --max-time 600 --aws-sigv4 "aws:amz:$ALMONER_S3_REGION:s3" \
        --user "$ALMONER_S3_ACCESS_KEY:$ALMONER_S3_SECRET_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

# s3_list_keys: every key of the bucket, one per line (ListObjectsV2, page by page).
s3_list_keys() {
    local token="" page
    while :; do
        local url
        url="$(s3_base)?list-type=2&max-keys=1000"
        if [[ -n $token ]]; then
            url+="&continuation-token=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$token")"
        fi
        page=$(s3_curl "$url")
        python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
for key in root.findall("s3:Contents/s3:Key", ns):
    print(key.text)
' <<<"$page"
        token=$(python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
truncated = root.findtext("s3:IsTruncated", "false", ns) == "true"
print(root.findtext("s3:NextContinuationToken", "", ns) if truncated else "")
' <<<"$page")
        [[ -n $token ]] || break
    done
}

# s3_key_path KEY: the key as a URL path (each segment percent-encoded).
s3_key_path() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/"))' "$1"
}

# s3_get KEY FILE: the object into FILE; prints its content type.
s3_get() {
    s3_curl -o "$2" -w '%{content_type}' "$(s3_base)/$(s3_key_path "$1")"
}

# s3_put KEY FILE CONTENT_TYPE
s3_put() {
    s3_curl -X PUT -H "content-type: ${3:-application/octet-stream}" --data-binary "@$2" \
        "$(s3_base)/$(s3_key_path "$1")" >/dev/null
}

# s3_make_bucket: creates the bucket unless it is there.
s3_make_bucket() {
    s3_curl -o /dev/null -I "$(s3_base)" 2>/dev/null || s3_curl -X PUT "$(s3_base)" >/dev/null
}

# s3_remove_bucket: deletes every object of the bucket, then the bucket; nothing when there is no such bucket.
# For throwaway buckets only (scripts/drill's second stack, scripts/test's drill stack).
s3_remove_bucket() {
    s3_curl -o /dev/null -I "$(s3_base)" 2>/dev/null || return 0
    local key
    while IFS= read -r key; do
        [[ -z $key ]] || s3_curl -X DELETE "$(s3_base)/$(s3_key_path "$key")" >/dev/null
    done < <(s3_list_keys)
    s3_curl -X DELETE "$(s3_base)" >/dev/null
}
