"""Key checking: digests only, bearer scheme, 401 in OpenAI's shape, open when unconfigured."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from server.auth import ANONYMOUS, KeyRing, digest
from server.errors import status_of
from server.refusals import Refused
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
    with pytest.raises(Refused) as caught:
        ring.caller(header)
    assert status_of(caught.value) == 401
    assert caught.value.code == code


def test_hashes_must_be_sha256_hex(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        make_settings(api_key_hashes=["not-a-digest"])


# --- admin keys --------------------------------------------------------------------------


def admin_ring(make_settings: SettingsFactory, **extra: object) -> KeyRing:
    return KeyRing.from_settings(
        make_settings(
            api_keys=[SecretStr("sk-client")], admin_api_keys=[SecretStr("sk-admin")], **extra
        )
    )


def test_an_admin_key_opens_the_operator_routes_and_the_client_doors(
    make_settings: SettingsFactory,
) -> None:
    ring = admin_ring(make_settings)
    operator = ring.operator("Bearer sk-admin")
    assert operator == ring.caller("Bearer sk-admin")
    assert operator.admin
    assert operator.key_id == digest("sk-admin")[:16]
    assert not ring.caller("Bearer sk-client").admin


def test_a_client_key_on_an_operator_route_is_403_once_admin_keys_exist(
    make_settings: SettingsFactory,
) -> None:
    ring = admin_ring(make_settings)
    with pytest.raises(Refused) as caught:
        ring.operator("Bearer sk-client")
    assert (status_of(caught.value), caught.value.code) == (403, "permission_denied")
    for header, code in ((None, "missing_api_key"), ("Bearer sk-nope", "invalid_api_key")):
        with pytest.raises(Refused) as missing:
            ring.operator(header)
        assert (status_of(missing.value), missing.value.code) == (401, code)


def test_without_admin_keys_operator_routes_take_the_client_keys(
    make_settings: SettingsFactory,
) -> None:
    ring = KeyRing.from_settings(make_settings(api_keys=[SecretStr("sk-client")]))
    assert not ring.has_admin_keys
    assert ring.operator("Bearer sk-client").key_id == digest("sk-client")[:16]
    with pytest.raises(Refused):
        ring.operator(None)
    assert KeyRing.from_settings(make_settings()).operator(None).key_id == ANONYMOUS


def test_admin_key_hashes_are_accepted_and_checked(make_settings: SettingsFactory) -> None:
    ring = KeyRing.from_settings(make_settings(admin_api_key_hashes=[digest("sk-admin")]))
    assert ring.operator("Bearer sk-admin").admin
    assert ring.open  # no client key: /v1 stays open, and its callers anonymous
    assert ring.key_ids() == {digest("sk-admin")[:16], ANONYMOUS}
    with pytest.raises(ValueError, match="SHA-256"):
        make_settings(admin_api_key_hashes=["sk-admin"])
