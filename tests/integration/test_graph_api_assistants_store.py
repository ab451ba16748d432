"""Assistants and the long-term memory store, driven with the real `langgraph_sdk` client.

The same scripts run against the service (served on a loopback port) and against
`langgraph dev` serving this graph (the reference, `tests.integration.test_langgraph_dev`),
so the shapes and statuses the SDK sees agree. What only the service does (keys, the
graph's own assistant kept unchangeable, 422s for bad presets) is tested on it alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.postgres_cluster import PostgresCluster
from tests.fakes.server_thread import ServedApp
from tests.integration import test_langgraph_dev as reference

Serve = Callable[[Settings], ServedApp]

langgraph_dev = reference.langgraph_dev
"""`langgraph dev` serving this graph: the reference (a fixture of this module too)."""

SYSTEM_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"
"""The id `langgraph dev` gives the assistant of the graph `agent`."""

ASSISTANT_KEYS = {
    "assistant_id",
    "graph_id",
    "config",
    "context",
    "metadata",
    "name",
    "description",
    "version",
    "created_at",
    "updated_at",
}
ITEM_KEYS = {"namespace", "key", "value", "created_at", "updated_at"}


@pytest.fixture
def service(serve: Serve, make_settings: SettingsFactory) -> str:
    """The service on SQLite, open (no keys), as `langgraph dev` is."""
    return serve(make_settings(agent_models={"offline": ["offline"]})).url


@pytest.fixture(params=["service", "reference"])
def base_url(request: pytest.FixtureRequest) -> str:
    """The service, then `langgraph dev`: the same script runs against both."""
    name = "service" if request.param == "service" else "langgraph_dev"
    url: str = request.getfixturevalue(name)
    return url


async def test_the_graphs_own_assistant(base_url: str) -> None:
    async with get_client(url=base_url) as client:
        found = await client.assistants.search(
            limit=10, offset=0, metadata={"created_by": "system"}
        )
        (system,) = [a for a in found if a["graph_id"] == "agent"]
        assert set(system) == ASSISTANT_KEYS
        assert system["assistant_id"] == SYSTEM_ID
        assert (system["name"], system["version"], system["metadata"]) == (
            "agent",
            1,
            {"created_by": "system"},
        )
        assert await client.assistants.get(SYSTEM_ID) == system
        assert await client.assistants.get_subgraphs(SYSTEM_ID) == {}
        schemas = await client.assistants.get_schemas(SYSTEM_ID)
        assert set(schemas) == {
            "graph_id",
            "input_schema",
            "output_schema",
            "state_schema",
            "config_schema",
            "context_schema",
        }
        context_schema = schemas["context_schema"]
        assert context_schema is not None
        assert "instructions" in context_schema["properties"]
        with pytest.raises(NotFoundError):
            await client.assistants.get(str(uuid.uuid4()))


async def test_a_preset_is_created_versioned_searched_and_deleted(base_url: str) -> None:
    tag = uuid.uuid4().hex
    async with get_client(url=base_url) as client:
        made = await _create(client, tag)
        preset = made["assistant_id"]
        assert set(made) == ASSISTANT_KEYS
        assert (made["version"], made["name"], made["description"]) == (1, "terse", "short")
        assert made["context"] == {"model": "offline", "instructions": "Be terse."}
        assert made["config"]["recursion_limit"] == 30
        assert made["metadata"] == {"tag": tag}

        again = await client.assistants.create(
            "agent", assistant_id=preset, if_exists="do_nothing", name="other"
        )
        assert again["name"] == "terse"
        with pytest.raises(ConflictError):
            await client.assistants.create("agent", assistant_id=preset)

        second = await client.assistants.update(preset, metadata={"v": 2}, name="terse2")
        assert (second["version"], second["name"]) == (2, "terse2")
        assert second["metadata"] == {"tag": tag, "v": 2}
        assert second["context"] == made["context"]
        third = await client.assistants.update(preset, context={"model": "offline"})
        assert (third["version"], third["context"]) == (3, {"model": "offline"})

        versions = await client.assistants.get_versions(preset)
        assert [v["version"] for v in versions] == [3, 2, 1]
        assert [v["name"] for v in versions] == ["terse2", "terse2", "terse"]
        latest = await client.assistants.set_latest(preset, 1)
        assert (latest["version"], latest["name"], latest["metadata"]) == (1, "terse", {"tag": tag})
        assert (await client.assistants.get(preset))["version"] == 1

        tagged = await client.assistants.search(metadata={"tag": tag})
        assert [a["assistant_id"] for a in tagged] == [preset]
        assert await client.assistants.count(metadata={"tag": tag}) == 1
        by_name = await client.assistants.search(name="ters", metadata={"tag": tag})
        assert [a["assistant_id"] for a in by_name] == [preset]

        await client.assistants.delete(preset)
        with pytest.raises(NotFoundError):
            await client.assistants.get(preset)
        assert await client.assistants.search(metadata={"tag": tag}) == []


async def test_a_preset_of_an_unknown_graph_is_not_found(base_url: str) -> None:
    async with get_client(url=base_url) as client:
        with pytest.raises(NotFoundError):
            await client.assistants.create("no-such-graph")
        with pytest.raises(NotFoundError):
            await client.assistants.update(str(uuid.uuid4()), name="x")
        with pytest.raises(NotFoundError):
            await client.assistants.get_versions(str(uuid.uuid4()))


async def test_the_graph_drawn_and_its_schemas_are_langgraph_devs(
    service: str, langgraph_dev: str
) -> None:
    drawn, schemas = [], []
    for url in (service, langgraph_dev):
        async with get_client(url=url) as client:
            drawn.append(await client.assistants.get_graph(SYSTEM_ID))
            drawn.append(await client.assistants.get_graph(SYSTEM_ID, xray=True))
            schemas.append(await client.assistants.get_schemas(SYSTEM_ID))
    assert drawn[0] == drawn[2]
    assert drawn[1] == drawn[3]
    assert schemas[0] == schemas[1]


async def test_store_items_are_put_found_listed_and_deleted(base_url: str) -> None:
    root = f"t{uuid.uuid4().hex}"
    async with get_client(url=base_url) as client:
        store = client.store
        await store.put_item([root, "u1"], "likes", {"colour": "blue"})
        await store.put_item([root, "u2", "x"], "likes", {"colour": "red", "n": 2}, ttl=60)

        item = await store.get_item([root, "u1"], "likes")
        assert item is not None
        assert set(item) == ITEM_KEYS
        assert (item["namespace"], item["key"], item["value"]) == (
            [root, "u1"],
            "likes",
            {"colour": "blue"},
        )
        assert await store.get_item([root, "u1"], "missing") is None

        found = (await store.search_items([root]))["items"]
        assert sorted((i["namespace"], i["value"]["colour"]) for i in found) == [
            ([root, "u1"], "blue"),
            ([root, "u2", "x"], "red"),
        ]
        assert {*found[0]} == ITEM_KEYS | {"score"}
        red = (await store.search_items([root], filter={"colour": "red"}))["items"]
        assert [i["namespace"] for i in red] == [[root, "u2", "x"]]
        page = (await store.search_items([root], limit=1, offset=1))["items"]
        assert len(page) == 1

        listed = await store.list_namespaces(prefix=[root])
        assert sorted(listed["namespaces"]) == [[root, "u1"], [root, "u2", "x"]]
        shallow = await store.list_namespaces(prefix=[root], max_depth=2)
        assert sorted(shallow["namespaces"]) == [[root, "u1"], [root, "u2"]]
        ending = await store.list_namespaces(prefix=[root], suffix=["x"])
        assert ending["namespaces"] == [[root, "u2", "x"]]

        await store.delete_item([root, "u1"], "likes")
        assert await store.get_item([root, "u1"], "likes") is None
        await store.delete_item([root, "u2", "x"], "likes")
        assert (await store.search_items([root]))["items"] == []


async def test_a_bad_store_body_is_a_422(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        missing_value = await http.put("/store/items", json={"namespace": ["a"], "key": "k"})
        bad_limit = await http.post("/store/items/search", json={"limit": "x"})
    for response in (missing_value, bad_limit):
        assert response.status_code == 422
        assert "detail" in response.json()


async def _create(client: LangGraphClient, tag: str) -> dict[str, Any]:
    made = await client.assistants.create(
        "agent",
        config={"recursion_limit": 30},
        context={"model": "offline", "instructions": "Be terse."},
        metadata={"tag": tag},
        name="terse",
        description="short",
    )
    return dict(made)


# --- What only the service does ---------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def keyed(request: pytest.FixtureRequest, serve: Serve, make_settings: SettingsFactory) -> str:
    """The service with two keys, on SQLite or on PostgreSQL."""
    overrides: dict[str, Any] = {}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    settings = make_settings(
        agent_models={"offline": ["offline"]}, api_keys=["key-1", "key-2"], **overrides
    )
    return serve(settings).url


async def test_presets_and_items_are_per_key(keyed: str) -> None:
    async with (
        get_client(url=keyed, api_key="key-1") as one,
        get_client(url=keyed, api_key="key-2") as two,
    ):
        preset = (await _create(one, "mine"))["assistant_id"]
        await one.store.put_item(["notes"], "n1", {"text": "one's"})

        assert [a["name"] for a in await two.assistants.search()] == ["agent"]
        assert len(await one.assistants.search()) == 2
        for call in (
            two.assistants.get(preset),
            two.assistants.update(preset, name="taken"),
            two.assistants.delete(preset),
        ):
            with pytest.raises(NotFoundError):
                await call
        assert await two.store.get_item(["notes"], "n1") is None
        assert (await two.store.search_items(["notes"]))["items"] == []
        assert (await two.store.list_namespaces())["namespaces"] == []

        item = await one.store.get_item(["notes"], "n1")
        assert item is not None
        assert item["namespace"] == ["notes"]
        assert (await one.store.list_namespaces())["namespaces"] == [["notes"]]
        assert (await one.store.list_namespaces(max_depth=1))["namespaces"] == [["notes"]]
    async with httpx.AsyncClient(base_url=keyed) as http:
        assert (await http.post("/assistants/search", json={})).status_code == 401


async def test_the_graphs_own_assistant_by_graph_id_and_unchangeable(service: str) -> None:
    async with get_client(url=service) as client:
        assert (await client.assistants.get("agent"))["assistant_id"] == SYSTEM_ID
        assert [v["version"] for v in await client.assistants.get_versions(SYSTEM_ID)] == [1]
        for call in (
            client.assistants.update(SYSTEM_ID, name="renamed"),
            client.assistants.delete(SYSTEM_ID),
        ):
            with pytest.raises(ConflictError):
                await call
        assert (await client.assistants.get(SYSTEM_ID))["name"] == "agent"


async def test_a_preset_sets_only_fields_of_the_graphs_context(service: str) -> None:
    async with get_client(url=service) as client:
        for context in ({"no_such_field": 1}, {"caller": "someone"}, {"max_tool_rounds": "x"}):
            with pytest.raises(UnprocessableEntityError):
                await client.assistants.create("agent", context=context)
        tools: list[Any] = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
        made = await client.assistants.create(
            "agent", context={"client_tools": tools, "tool_choice": "none"}
        )
        assert made["context"] == {"client_tools": tools, "tool_choice": "none"}


async def test_studio_searches_with_a_text_plain_body(service: str) -> None:
    async with httpx.AsyncClient(base_url=service) as http:
        response = await http.post(
            "/assistants/search",
            content=b'{"limit":10,"offset":0,"metadata":{"created_by":"system"}}',
            headers={"content-type": "text/plain;charset=UTF-8"},
        )
    assert response.status_code == 200
    assert [a["assistant_id"] for a in response.json()] == [SYSTEM_ID]
    assert response.headers["x-pagination-total"] == "1"


async def test_what_no_assistant_or_item_can_be_named_is_a_404_or_a_422(keyed: str) -> None:
    headers = {"x-api-key": "key-1"}
    async with httpx.AsyncClient(base_url=keyed, headers=headers) as http:
        nul_assistant = await http.get("/assistants/a%00b")
        nul_versions = await http.post("/assistants/a%00b/versions", json={})
        nul_key = await http.get("/store/items", params={"namespace": "a", "key": "k\x00"})
        nul_label = await http.get("/store/items", params={"namespace": "a\x00", "key": "k"})
        operator = await http.post("/store/items/search", json={"filter": {"colour": {"$nope": 1}}})
        boolean = await http.post("/assistants/search", json={"offset": True})
    assert nul_assistant.status_code == nul_versions.status_code == 404
    for response in (nul_key, nul_label, operator, boolean):
        assert response.status_code == 422, response.text
        assert "detail" in response.json()


@pytest.mark.postgres
async def test_while_postgres_is_down_assistants_and_the_store_are_a_503_then_work_again(
    postgres_cluster: PostgresCluster, make_settings: SettingsFactory, serve: Serve
) -> None:
    settings = make_settings(database_url=postgres_cluster.url, database_pool_timeout=2)
    url = serve(settings).url
    async with get_client(url=url) as client:
        preset = (await _create(client, "down"))["assistant_id"]
        await client.store.put_item(["notes"], "n1", {"text": "kept"})
    postgres_cluster.halt()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            answers = [
                await http.get(f"/assistants/{preset}"),
                await http.post("/assistants/search", json={}),
                await http.patch(f"/assistants/{preset}", json={"name": "n"}),
                await http.get("/store/items", params={"namespace": "notes", "key": "n1"}),
                await http.put("/store/items", json={"namespace": ["a"], "key": "k", "value": {}}),
                await http.post("/store/items/search", json={}),
            ]
    finally:
        postgres_cluster.resume()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "checkpointer_unavailable"
        assert answer.headers["retry-after"]
    async with get_client(url=url) as client:
        assert (await client.assistants.get(preset))["name"] == "terse"
        item = await client.store.get_item(["notes"], "n1")
        assert item is not None
        assert item["value"] == {"text": "kept"}
