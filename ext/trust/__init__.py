"""``trust``: notation and cosign signatures verified against uploaded keys and certificates."""
