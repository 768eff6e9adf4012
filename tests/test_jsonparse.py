"""Parsing client JSON: large documents are parsed in steps, to the same result."""

from __future__ import annotations

import json

import pytest

from ocireg import jsonparse


def _large() -> str:
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + "a" * 64}
    document = {"schemaVersion": 2, "layers": [dict(layer, size=n) for n in range(3000)]}
    text = json.dumps(document)
    assert len(text) > jsonparse.LARGE
    return text


def test_a_large_document_parses_as_json_parses_it() -> None:
    text = _large()
    assert jsonparse.loads(text) == json.loads(text)
    assert jsonparse.loads(text.encode(), strict=True) == json.loads(text)


def test_a_large_document_keeps_the_leniency_of_the_plain_parser() -> None:
    text = _large()[:-1] + ', "n": NaN, "n": 1}'
    assert jsonparse.loads(text)["n"] == 1  # the last duplicate, as json keeps it
    with pytest.raises(jsonparse.JSONError, match="NaN is not JSON"):
        jsonparse.loads(text, strict=True)
