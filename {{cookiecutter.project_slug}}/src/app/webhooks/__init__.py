"""SEC-WEBHOOKS: Standard Webhooks deliveries out, verification in (docs/webhooks.md)."""
