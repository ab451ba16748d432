"""`/health` and `/ready` over HTTP, with real dependencies failing for real."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from server.settings import Settings
from tests.conftest import ADMIN_DSN, SettingsFactory
from tests.fakes.mcp_server import McpServerProcess
from tests.fakes.redis_server import RedisProcess
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault
from tests.helpers import chat_body

Serve = Callable[[Settings], ServedApp]


def test_ready_when_everything_answers(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())

    assert httpx.get(f"{app.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{app.url}/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["degraded"] == []
    assert body["checks"]["checkpointer"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True, "configured": False}


@pytest.mark.postgres
def test_unready_when_the_checkpointer_is_gone(
    make_settings: SettingsFactory, serve: Serve, postgres_url: str
) -> None:
    app = serve(make_settings(database_url=postgres_url))
    assert httpx.get(f"{app.url}/ready").status_code == 200

    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    ready = httpx.get(f"{app.url}/ready", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["checks"]["checkpointer"]["ok"] is False
    assert ready.json()["status"] == "unready"


def test_ready_but_half_open_while_every_provider_cools_down(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(
        make_settings(
            agent_models={"m": ["openai:gpt-test"]},
            openai_base_url=primary.openai_base_url,
            provider_max_retries=0,
            provider_cooldown_failures=1,
            provider_cooldown_seconds=60,
        )
    )
    primary.script(Fault.server_error())
    httpx.post(f"{app.url}/v1/chat/completions", json=chat_body(("user", "hi"), model="m"))

    # Still serving (the next request tries the provider whose cooldown ends first): were it
    # unready, shared cooldowns would take every replica out of the load balancer at once.
    ready = httpx.get(f"{app.url}/admin/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["degraded"] == ["all-providers-cooling", "providers-half-open"]
    assert ready.json()["checks"]["providers"]["cooling"] == ["openai:gpt-test"]
    assert ready.json()["checks"]["providers"]["half_open"] == {"m": "openai:gpt-test"}


@pytest.mark.redis
def test_redis_down_is_degraded_but_ready(
    make_settings: SettingsFactory, serve: Serve, own_redis: RedisProcess
) -> None:
    app = serve(make_settings(redis_url=own_redis.url, redis_prefix="health"))
    assert httpx.get(f"{app.url}/ready").json()["status"] == "ready"
    own_redis.stop()

    ready = httpx.get(f"{app.url}/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == {"ok": False, "configured": True}
    assert body["degraded"] == [
        "cache-in-process-only",
        "cooldowns-in-process",
        "rate-limits-in-process",
    ]

    own_redis.start()
    assert httpx.get(f"{app.url}/ready").json()["status"] == "ready"


def test_ready_shows_states_only_and_the_admin_key_shows_details_without_secrets(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    marker = "s3cret-mcp-token-0427"  # in the URL's query string, never in the output
    server = McpServerProcess(authorization="Bearer another").start()  # 401 to the service
    try:
        settings = make_settings(
            api_keys=[SecretStr("sk-client")],
            admin_api_keys=[SecretStr("sk-admin")],
            mcp_servers={"docs": {"url": f"{server.url}?token={marker}"}},
        )
        app = serve(settings)

        public = httpx.get(f"{app.url}/ready")  # what a probe, or anyone, sees
        assert public.status_code == 200
        assert public.json() == {
            "status": "degraded",
            "draining": False,
            "checks": {
                "checkpointer": {"ok": True},
                "redis": {"ok": True, "configured": False},
                "providers": {"ok": True},
                "mcp_servers": {"ok": False, "configured": True},
                "knowledge": {"ok": True, "enabled": True},
            },
            "degraded": ["mcp-servers-down"],
        }
        assert str(settings.knowledge_path) not in public.text

        detail = f"{app.url}/admin/ready"
        assert httpx.get(detail).status_code == 401
        client = httpx.get(detail, headers={"Authorization": "Bearer sk-client"})
        assert client.status_code == 403
        admin = httpx.get(detail, headers={"Authorization": "Bearer sk-admin"})
        assert admin.status_code == 200
        checks = admin.json()["checks"]
        assert checks["knowledge"]["store"] == str(settings.knowledge_path)
        error = checks["mcp_servers"]["servers"]["docs"]["error"]
        assert "401 Unauthorized" in error
        assert server.url in error  # the URL, without its query string
        assert marker not in admin.text
    finally:
        server.stop()
