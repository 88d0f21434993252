//! PayPal: deliveries verified by PayPal's `POST /v1/notifications/verify-webhook-signature`.
