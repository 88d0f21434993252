#!/usr/bin/env python3
"""Prints the webhook signatures the providers' official Python libraries make for the test vectors in
crates/webhook-verify/src/{stripe,gocardless,twilio}.rs, so the constants there can be re-made and checked.

    python3 -m venv /tmp/sigvenv
    /tmp/sigvenv/bin/pip install stripe twilio gocardless_pro
    /tmp/sigvenv/bin/python crates/webhook-verify/tests/official_signatures.py

The vectors in the Rust tests were made with stripe 16.1.0, twilio 9.13.0 and gocardless_pro 3.22.0.
"""

import hashlib
import hmac
from importlib.metadata import version

import gocardless_pro.webhooks
from stripe import WebhookSignature
from twilio.request_validator import RequestValidator

print(f"stripe {version('stripe')}, twilio {version('twilio')}, gocardless_pro {version('gocardless_pro')}")

# Stripe: WebhookSignature.generate_signature_header signs "{t}.{body}" with the whole whsec_ string as the key.
STRIPE_BODY = '{"id":"evt_1QmXyZ2eZvKYlo2C","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_3QmXyZ","amount":2500}}}'
STRIPE_T = 1733400000
for name, secret in [("STRIPE_SECRET_OLD", "whsec_old0123456789abcdefABCDEF"), ("STRIPE_SECRET_NEW", "whsec_new9876543210fedcbaFEDCBA")]:
    header = WebhookSignature.generate_signature_header(STRIPE_BODY, secret, STRIPE_T)
    WebhookSignature.verify_header(STRIPE_BODY, header, secret, tolerance=None)
    print(f"stripe {name}: {header}")

# GoCardless: the library's own webhooks.parse must accept the lower-case hex HMAC-SHA256 of the raw body.
GC_BODY = '{"events":[{"id":"EV0123ABC","created_at":"2026-12-05T10:00:00.000Z","resource_type":"payments","action":"confirmed","links":{"payment":"PM0123"},"details":{"origin":"gocardless","cause":"payment_confirmed"}},{"id":"EV0124DEF","created_at":"2026-12-05T10:00:01.000Z","resource_type":"mandates","action":"active","links":{"mandate":"MD0456"}}],"meta":{"webhook_id":"WB0001"}}'
for name, secret in [("GC_SECRET_OLD", "gc-old-secret-0123"), ("GC_SECRET_NEW", "gc-new-secret-4567")]:
    signature = hmac.new(secret.encode(), GC_BODY.encode(), hashlib.sha256).hexdigest()
    events = gocardless_pro.webhooks.parse(GC_BODY, secret, signature)
    print(f"gocardless {name}: {signature} ({len(events)} events: {[e.id for e in events]})")

# Twilio: RequestValidator.compute_signature over the URL and the sorted parameters; validate accepts the URL with
# and without its port.
TWILIO_TOKEN_OLD = "12345678901234567890123456789012"
TWILIO_TOKEN_NEW = "abcdefabcdefabcdefabcdefabcdef12"
TWILIO_URL = "https://hooks.example.org/webhooks/twilio/sms?endpoint=main"
TWILIO_PARAMS = {
    "MessageSid": "SM0123456789abcdef0123456789abcdef",
    "SmsSid": "SM0123456789abcdef0123456789abcdef",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "MessageStatus": "delivered",
    "To": "+447700900123",
    "From": "Almoner",
    "ApiVersion": "2010-04-01",
}
for name, token in [("TWILIO_TOKEN_OLD", TWILIO_TOKEN_OLD), ("TWILIO_TOKEN_NEW", TWILIO_TOKEN_NEW)]:
    v = RequestValidator(token)
    signature = v.compute_signature(TWILIO_URL, TWILIO_PARAMS)
    assert v.validate(TWILIO_URL, TWILIO_PARAMS, signature)
    assert v.validate("https://hooks.example.org:443/webhooks/twilio/sms?endpoint=main", TWILIO_PARAMS, signature)
    print(f"twilio status {name}: {signature}")
    signature = v.compute_signature("https://hooks.example.org:443/webhooks/twilio/sms?endpoint=main", TWILIO_PARAMS)
    assert v.validate(TWILIO_URL, TWILIO_PARAMS, signature)
    print(f"twilio status with :443 {name}: {signature}")

# An incoming message, with a repeated name (Twilio sorts the values of a repeated name too) and characters that
# are percent-encoded in the form body.
class MultiDict(dict):
    def getall(self, name):
        return self[name]

INBOUND_URL = "http://hooks.example.org:8080/webhooks/twilio/sms"
INBOUND = MultiDict({
    "SmsSid": ["SM99999999999999999999999999999999"],
    "AccountSid": ["AC0123456789abcdef0123456789abcdef"],
    "Body": ["Donate £5 & thanks!"],
    "From": ["+447700900456"],
    "Tag": ["zeta", "alpha"],
})
v = RequestValidator(TWILIO_TOKEN_NEW)
signature = v.compute_signature(INBOUND_URL, INBOUND)
assert v.validate(INBOUND_URL, INBOUND, signature)
print(f"twilio inbound (port 8080): {signature}")
signature = v.compute_signature("http://hooks.example.org/webhooks/twilio/sms", INBOUND)
assert v.validate(INBOUND_URL, INBOUND, signature)
print(f"twilio inbound (signed without the port): {signature}")

# JSON body: the URL carries bodySHA256, the signature is over the URL alone.
JSON_BODY = '{"MessageSid":"SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","MessageStatus":"sent","AccountSid":"AC0123456789abcdef0123456789abcdef"}'
body_hash = v.compute_hash(JSON_BODY)
JSON_URL = f"https://hooks.example.org/webhooks/twilio/json?bodySHA256={body_hash}"
signature = v.compute_signature(JSON_URL, {})
assert v.validate(JSON_URL, JSON_BODY, signature)
print(f"twilio json: url {JSON_URL} signature {signature}")
