"""The extension kit: ``ocireg ext new`` writes a working extension package of one's own."""
