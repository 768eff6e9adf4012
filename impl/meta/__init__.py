"""The meta DB: an index derived from storage (never the truth) for search and statistics."""
