"""Authentication (who is asking) and access control (what they may do), as zot reads
``http.auth`` and ``http.accessControl``."""
