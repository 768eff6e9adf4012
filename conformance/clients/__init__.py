"""Real clients against the registry under test: oras, skopeo, and Notary Project signatures."""
