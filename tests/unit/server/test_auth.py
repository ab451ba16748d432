"""Key checking: digests only, bearer scheme, 401 in OpenAI's shape, open when unconfigured."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from server.auth import ANONYMOUS, KeyRing, digest
from server.errors import OpenAIHTTPError
from tests.conftest import SettingsFactory


def test_open_when_no_keys(make_settings: SettingsFactory) -> None:
    ring = KeyRing.from_settings(make_settings())
    assert ring.open
    assert ring.caller(None).key_id == ANONYMOUS


def test_only_digests_are_kept(make_settings: SettingsFactory) -> None:
    ring = KeyRing.from_settings(make_settings(api_keys=[SecretStr("sk-one")]))
    assert ring.digests == {digest("sk-one")}
    assert "sk-one" not in repr(ring)


def test_clear_key_and_hashed_key_both_accepted(make_settings: SettingsFactory) -> None:
    ring = KeyRing.from_settings(
        make_settings(api_keys=[SecretStr("sk-one")], api_key_hashes=[digest("sk-two")])
    )
    one = ring.caller("Bearer sk-one")
    two = ring.caller("bearer  sk-two")
    assert one.key_id != two.key_id
    assert one.key_id == digest("sk-one")[:16]


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Basic sk-one", "missing_api_key"),
        ("Bearer ", "missing_api_key"),
        ("Bearer sk-wrong", "invalid_api_key"),
    ],
)
def test_wrong_or_missing_key_is_401(
    make_settings: SettingsFactory, header: str | None, code: str
) -> None:
    ring = KeyRing.from_settings(make_settings(api_keys=[SecretStr("sk-one")]))
    with pytest.raises(OpenAIHTTPError) as caught:
        ring.caller(header)
    assert caught.value.status == 401
    assert caught.value.code == code


def test_hashes_must_be_sha256_hex(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        make_settings(api_key_hashes=["not-a-digest"])
