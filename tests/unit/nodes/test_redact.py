"""URLs as the logs and `/admin/ready` show them: no userinfo, no query, no fragment."""

from __future__ import annotations

import pytest

from nodes.redact import redact_url, redact_urls


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8931/mcp?token=abc", "http://127.0.0.1:8931/mcp"),
        ("postgresql://agent:pw@db:5432/agent?sslmode=require", "postgresql://db:5432/agent"),
        ("redis://:pw@cache:6379/0", "redis://cache:6379/0"),
        ("https://searx.example/search?q=my+question#top", "https://searx.example/search"),
        ("https://[::1]:8080/v1", "https://[::1]:8080/v1"),
        ("https://[bad/x?y", "https://…"),
    ],
)
def test_a_url_loses_its_credentials_query_and_fragment(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_every_url_in_a_text_is_redacted_and_the_rest_kept() -> None:
    text = (
        "Client error '401 Unauthorized' for url 'http://h:1/mcp?token=s3cret'\n"
        "then redis://u:pw@r:6379 (and plain words://? no)"
    )
    assert redact_urls(text) == (
        "Client error '401 Unauthorized' for url 'http://h:1/mcp'\nthen redis://r:6379 (and "
        "plain words:// no)"
    )
    assert redact_urls("no address here") == "no address here"
