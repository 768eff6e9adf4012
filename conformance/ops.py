"""Pushes and reads that the workflows use to set up content (not themselves under test)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from ocireg.conformance.checks import ConformanceFailure, describe
from ocireg.conformance.content import Blob, Manifest


class SetupFailed(ConformanceFailure):
    """The registry refused content the suite needs before it can check anything."""


def session_path(location: str) -> str:
    """A Location made relative to the registry: clients must keep its query string."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def with_query(location: str, **params: str) -> str:
    separator = "&" if "?" in location else "?"
    return location + separator + "&".join(f"{key}={value}" for key, value in params.items())


class Registry:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def start_upload(self, repo: str) -> str:
        response = self.client.post(f"/v2/{repo}/blobs/uploads/")
        if response.status_code != 202 or "Location" not in response.headers:
            raise SetupFailed(f"setup could not start an upload: {describe(response)}")
        return session_path(response.headers["Location"])

    def push_blob(self, repo: str, blob: Blob) -> None:
        location = self.start_upload(repo)
        response = self.client.put(
            with_query(location, digest=blob.digest),
            content=blob.data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if response.status_code != 201:
            raise SetupFailed(f"setup could not push blob {blob.digest}: {describe(response)}")

    def push_blobs(self, repo: str, manifest: Manifest) -> None:
        """Push every blob ``manifest`` needs, so it can be pushed next."""
        for blob in manifest.blobs:
            self.push_blob(repo, blob)

    def put_manifest(self, repo: str, reference: str, manifest: Manifest) -> httpx.Response:
        return self.client.put(
            f"/v2/{repo}/manifests/{reference}",
            content=manifest.body,
            headers={"Content-Type": manifest.media_type},
        )

    def push_manifest(self, repo: str, reference: str, manifest: Manifest) -> httpx.Response:
        self.push_blobs(repo, manifest)
        response = self.put_manifest(repo, reference, manifest)
        if response.status_code != 201:
            raise SetupFailed(f"setup could not push manifest {reference}: {describe(response)}")
        return response
