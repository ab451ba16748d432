"""`item_reference` input items: an earlier item of the caller's, named by its id.

The Vercel AI SDK (with its default `store`) sends earlier turns as references to the items
of the responses it was given (`msg_…`, `fc_…`, `rs_…`), not as their content. Each
reference is replaced by the stored item it names, as it was stored (an input item as
`GET /v1/responses/{id}/input_items` lists it, an output item as the response returned it),
before anything else reads the input; the new response's input items then list the item
itself. Only the caller's key's items are found: another key's item is as absent as an
unknown one.
"""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from graph.errors import ErrorCode
from server.errors import OpenAIHTTPError
from server.responses.protocol import CreateResponseRequest, InputItem, ItemReference, StoredItem
from server.stores.response_store import ResponseStore

STORED_ITEM: TypeAdapter[StoredItem] = TypeAdapter(StoredItem)
"""Reads a stored item back as an input item."""


async def resolve_references(
    request: CreateResponseRequest, store: ResponseStore, caller: str
) -> CreateResponseRequest:
    """The request with each `item_reference` replaced by the item it names.

    Every reference is looked up at once, in one indexed query (`ResponseStore.items`).

    Raises:
        OpenAIHTTPError: 400 `item_not_found`, `param` `input[i].id`, for the first
            reference to no stored item of the caller's key (unknown, deleted, another's).
    """
    if isinstance(request.input, str):
        return request
    named = {
        index: item.id
        for index, item in enumerate(request.input)
        if isinstance(item, ItemReference)
    }
    if not named:
        return request
    found = await store.items(sorted(set(named.values())), caller)
    resolved: dict[int, InputItem] = {}
    for index, item_id in named.items():
        try:
            resolved[index] = STORED_ITEM.validate_python(found[item_id])
        except (KeyError, ValidationError):
            raise OpenAIHTTPError(
                400,
                f"Item with id '{item_id}' not found.",
                code=ErrorCode.ITEM_NOT_FOUND,
                param=f"input[{index}].id",
            ) from None
    items = [resolved.get(index, item) for index, item in enumerate(request.input)]
    return request.model_copy(update={"input": items})
