# shellcheck shell=bash
# Demo data for the demo tenant, through the gateway's APIs as a client would write it: funds, donors with two years
# of gifts, SMS contacts (some with a donor's number, so messaging links them), a template and a segment. Written
# once: a tenant that has a donor already is left as it is.
#
#   demo_seed GATEWAY TOKEN    seed the tenant the token belongs to, unless it has donors

# demo_call METHOD GATEWAY PATH TOKEN [JSON]: the answer's body; dies unless 2xx.
demo_call() {
    local method=$1 gateway=$2 path=$3 token=$4 body=${5:-} out status
    out=$(mktemp)
    local -a args=(-s -o "$out" -w '%{http_code}' --max-time 20 -X "$method" "$gateway$path"
        -H "authorization: Bearer $token" -H 'accept: application/json')
    if [[ -n $body ]]; then
        args+=(-H 'content-type: application/json' -H "idempotency-key: $(cat /proc/sys/kernel/random/uuid)" --data "$body")
    fi
    status=$(curl "${args[@]}" || true)
    if [[ $status != 2* ]]; then
        local answer
        answer=$(cat "$out")
        rm -f "$out"
        die "demo data: $method $path answered ${status:-nothing}: $answer"
    fi
    cat "$out"
    rm -f "$out"
}

# An ISO date N days before today.
demo_days_ago() {
    date -u -d "-$1 days" +%F
}

demo_seed() {
    local gateway=$1 token=$2 existing
    existing=$(demo_call GET "$gateway" "/api/fundraising/v1/donors?limit=1" "$token" | jq '.data | length')
    if [[ $existing != 0 ]]; then
        log "demo data: the demo tenant has donors already; left as it is"
        return 0
    fi
    log "demo data: funds, donors and two years of gifts; SMS contacts, a template and a segment"
    local general winter
    general=$(demo_call POST "$gateway" /api/fundraising/v1/funds "$token" \
        '{"code": "GENERAL", "name": "General fund"}' | jq -r .id)
    winter=$(demo_call POST "$gateway" /api/fundraising/v1/funds "$token" \
        '{"code": "WINTER", "name": "Winter appeal", "restricted": true}' | jq -r .id)

    # first|last|email|phone|postcode|sms|gifts (amount_minor@days_ago, space separated)
    local -a donors=(
        "Ada|Lovelace|ada@example.org|+447700900101|LS1 4AP|true|2500@20 2500@50 2500@80 2500@400"
        "Grace|Hopper|grace@example.org|+447700900102|YO1 7HH|true|10000@35 15000@370"
        "Alan|Turing|alan@example.org|+447700900103|M1 1AE|false|5000@600"
        "Mary|Somerville|mary@example.org|+447700900104|EH1 1YZ|true|2000@10 2000@40 2000@70"
        "Charles|Babbage|charles@example.org||SW1A 1AA|false|50000@200"
        "Rosalind|Franklin|rosalind@example.org|+447700900106|CB2 1TN|true|1500@5"
        "Dorothy|Hodgkin|dorothy@example.org|+447700900107|OX1 3PN|false|7500@700 7500@330"
        "Tim|Berners-Lee|tim@example.org||SE1 9GF|false|3000@15"
    )
    local row first last email phone postcode sms gifts donor gift amount days fund body n=0
    for row in "${donors[@]}"; do
        IFS='|' read -r first last email phone postcode sms gifts <<<"$row"
        body=$(jq -nc --arg f "$first" --arg l "$last" --arg e "$email" --arg p "$phone" --arg pc "$postcode" \
            --argjson sms "$sms" \
            '{first_name: $f, last_name: $l, email: $e, address: {line1: "1 Demo Street", postcode: $pc, country: "GB"},
              communication_preferences: {email: true, sms: $sms, post: true, phone: false}}
             + (if $p == "" then {} else {phone: $p} end)')
        donor=$(demo_call POST "$gateway" /api/fundraising/v1/donors "$token" "$body" | jq -r .id)
        for gift in $gifts; do
            amount=${gift%@*}
            days=${gift#*@}
            n=$((n + 1))
            if ((n % 3 == 0)); then fund=$winter; else fund=$general; fi
            body=$(jq -nc --arg d "$donor" --argjson a "$amount" --arg date "$(demo_days_ago "$days")" --arg fund "$fund" \
                '{donor_id: $d, amount_minor: $a, currency: "GBP", gift_date: $date, payment_method: "card",
                  allocations: [{fund_id: $fund, amount_minor: $a}]}')
            demo_call POST "$gateway" /api/fundraising/v1/gifts "$token" "$body" >/dev/null
        done
    done

    # SMS: contacts (four with a donor's number: messaging links them), a template, a segment.
    # phone|first|tags|attributes|consented
    local -a contacts=(
        "07700 900101|Ada|supporters,gala|{\"level\": \"gold\"}|true"
        "07700 900102|Grace|supporters|{\"level\": \"gold\"}|true"
        "07700 900104|Mary|supporters,volunteers|{\"level\": \"silver\"}|true"
        "07700 900106|Rosalind|volunteers|{}|true"
        "07700 900201|Sam|gala|{\"level\": \"silver\"}|true"
        "07700 900202|Priya|volunteers|{}|false"
    )
    local tags attributes consented
    for row in "${contacts[@]}"; do
        IFS='|' read -r phone first tags attributes consented <<<"$row"
        body=$(jq -nc --arg p "$phone" --arg f "$first" --arg t "$tags" --argjson a "$attributes" \
            --argjson c "$consented" --arg at "$(demo_days_ago 90)" \
            '{phone: $p, first_name: $f, tags: ($t | split(",")), attributes: $a}
             + (if $c then {consent_source: "demo sign-up form", consented_at: $at} else {} end)')
        demo_call POST "$gateway" /api/messaging/v1/contacts "$token" "$body" >/dev/null
    done
    demo_call POST "$gateway" /api/messaging/v1/templates "$token" \
        '{"name": "Winter appeal thank you", "body": "Thank you {{first_name|friend}} for your support this winter! See what it did: https://example.org/winter"}' \
        >/dev/null
    demo_call POST "$gateway" /api/messaging/v1/segments "$token" \
        '{"name": "Gave this year, consented", "description": "Linked donors who gave in the last 12 months and agreed to texts", "filter": {"sms_consent": true, "donor": {"gave_within_months": 12}}}' \
        >/dev/null
    log "demo data: 8 donors, $n gifts, 6 SMS contacts, a template and a segment"
}

# demo_widget GATEWAY TOKEN DIR: the demo tenant's chat widget for a member site at http://localhost:8090 (its
# allowed origin; identity required), a new widget secret, two conversations imported as history (so the inbox has
# something), and DIR/index.html: a member page embedding the widget as "ada@example.org" (a donor's email, so the
# inbox links her to the donor), signed with the secret as a member site's server would. Serve DIR on port 8090
# to try it (scripts/up prints how). Run every time: the secret changes, and the page with it.
demo_widget() {
    local gateway=$1 token=$2 dir=$3 secret tenant identifier=ada@example.org hash
    demo_call PUT "$gateway" /api/identity/v1/widget "$token" \
        '{"allowed_origins": ["http://localhost:8090", "http://127.0.0.1:8090"], "identity_required": true,
          "greeting": "Hello! Questions about your giving? We usually answer within a day.",
          "accent_colour": "#0b6e4f", "notify_email_on_reply": true,
          "reply_mail_url": "http://localhost:8090/"}' >/dev/null
    secret=$(demo_call POST "$gateway" /api/identity/v1/widget/secret "$token" '{}' | jq -r .secret)
    tenant=$(jq -r .tenant_id "$DEMO_CREDENTIALS")
    hash=$(printf '%s' "$identifier" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
    demo_call POST "$gateway" /api/messaging/v1/conversation-imports "$token" "$(jq -nc --arg d1 "$(date -u -d '-3 days' +%FT%TZ)" \
        --arg d2 "$(date -u -d '-3 days +20 minutes' +%FT%TZ)" --arg d3 "$(date -u -d '-1 days' +%FT%TZ)" '{dry_run: false, conversations: [
          {id: "demo-1", member: {identifier: "grace@example.org", name: "Grace Hopper", email: "grace@example.org"},
           status: "resolved", messages: [
             {author: "member", body: "Could I have a receipt for my gift last spring?", sent_at: $d1},
             {author: "staff", author_name: "Demo staff", body: "Of course, it is on its way by email.", sent_at: $d2}]},
          {id: "demo-2", member: {identifier: "mary@example.org", name: "Mary Somerville", email: "mary@example.org"},
           status: "open", messages: [
             {author: "member", body: "Can I move my monthly gift to the winter appeal?", sent_at: $d3}]}]}')" >/dev/null
    mkdir -p "$dir"
    cat >"$dir/index.html" <<HTML
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Demo Charity: member area</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>Welcome back, Ada</h1>
<p>This stands for a charity's member area. Its server signed Ada's identifier for the chat widget (bottom right);
staff answer in the console's Inbox at $gateway/inbox.</p>
<script src="$gateway/widget.js" data-tenant="$tenant" data-identifier="$identifier"
        data-identifier-hash="$hash" data-name="Ada Lovelace" data-email="$identifier" async></script>
</body>
</html>
HTML
    log "demo data: the chat widget for http://localhost:8090 (a member page in $dir), two conversations in the inbox"
}
