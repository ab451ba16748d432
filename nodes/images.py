"""Images in message content: one provider-neutral form, and stored once per thread database.

Clients send OpenAI's `image_url` parts (an http(s) URL, or a `data:` URL carrying base64).
The door turns them into LangChain's standard image blocks (`standard_image`), which every
integration converts to its provider's own shape: an `image_url` part for OpenAI, an `image`
block with a `source` for Anthropic, `images: [base64]` for Ollama.

LangGraph stores the whole `messages` value again with every checkpoint, so a base64 image
sent in turn 1 would be written again by every later turn. Before a turn's messages enter a
thread, `externalize` saves each base64 image once in an `ImageStore` (keyed by the SHA-256
of its bytes) and leaves a reference block in the message (its `url` is
`agent-image:sha256:<hex>`); `resolve` puts the bytes back when the provider request is
built. `image_key` names an image the same way in every form (OpenAI part, inline block,
reference), so a client that resends the history with the image inline still matches the
stored, referenced message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from langchain_core.messages import BaseMessage

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseMessage)

REFERENCE_PREFIX = "agent-image:sha256:"
"""The `url` of a reference block: the image's bytes are in the `ImageStore`."""

_DATA_URL = re.compile(r"data:(?P<mime>image/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")

MISSING_IMAGE = "[an image of this conversation is no longer stored]"


@dataclass(frozen=True)
class StoredImage:
    """An image's bytes and media type, as the store keeps them."""

    mime_type: str
    data: bytes


class ImageStore(Protocol):
    """Where a thread's images live, once each, by the hex SHA-256 of their bytes."""

    async def save(self, images: Mapping[str, StoredImage]) -> None:
        """Store these images; one already stored under its digest is left as it is."""
        ...

    async def load(self, digests: Collection[str]) -> dict[str, StoredImage]:
        """The stored images among `digests` (a digest never stored is absent)."""
        ...


def decode_base64(text: str) -> bytes:
    """The bytes of base64 text; whitespace and missing padding are forgiven.

    Raises:
        ValueError: The text is not base64.
    """
    compact = _WHITESPACE.sub("", text)
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except binascii.Error as error:
        raise ValueError(f"the image data is not base64 ({error})") from error


def parse_data_url(url: str) -> tuple[str, str] | None:
    """`(mime_type, base64 text)` of a `data:image/...;base64,...` URL, else None."""
    match = _DATA_URL.fullmatch(url)
    return (match["mime"], match["data"]) if match else None


def check_image_url(url: str) -> str:
    """The URL of a client's `image_url` part, if a provider can be given it.

    Raises:
        ValueError: Neither an http(s) URL nor a base64 `data:image/...` URL.
    """
    if url.startswith(("https://", "http://")):
        return url
    parsed = parse_data_url(url)
    if parsed is None:
        raise ValueError("must be an http(s) URL or a data:image/<type>;base64,<data> URL")
    decode_base64(parsed[1])
    return url


def standard_image(url: str, detail: str | None = None) -> dict[str, Any]:
    """LangChain's standard image block for an OpenAI `image_url` part (checked beforehand).

    OpenAI's `detail` has no standard field; it travels in `extras`, where the OpenAI wire
    picks it up again (`nodes.providers.openai_wire`).
    """
    parsed = parse_data_url(url)
    block: dict[str, Any] = (
        {"type": "image", "url": url}
        if parsed is None
        else {"type": "image", "base64": parsed[1], "mime_type": parsed[0]}
    )
    if detail is not None:
        block["extras"] = {"detail": detail}
    return block


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _inline(block: Mapping[str, Any]) -> tuple[str, str] | None:
    """`(mime_type, base64 text)` of an image block or part that carries its bytes."""
    if block.get("type") == "image_url":
        image = block.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return parse_data_url(url) if isinstance(url, str) else None
    if block.get("type") != "image":
        return None
    if isinstance(block.get("base64"), str):
        return str(block.get("mime_type") or "image/png"), block["base64"]
    url = block.get("url")
    return parse_data_url(url) if isinstance(url, str) else None


def _reference(block: Mapping[str, Any]) -> str | None:
    """The digest a reference block names, else None."""
    url = block.get("url")
    if block.get("type") == "image" and isinstance(url, str) and url.startswith(REFERENCE_PREFIX):
        return url[len(REFERENCE_PREFIX) :]
    return None


def image_key(block: Mapping[str, Any]) -> str | None:
    """What identifies the image of a block: `sha256:<hex>` of its bytes, or its URL.

    The same for an OpenAI `image_url` part, an inline standard block and a reference block
    of the same image; None for a block that is no image.
    """
    digest = _reference(block)
    if digest is not None:
        return f"sha256:{digest}"
    inline = _inline(block)
    if inline is not None:
        try:
            return f"sha256:{_sha256(decode_base64(inline[1]))}"
        except ValueError:
            return f"text-sha256:{_sha256(inline[1].encode())}"
    if block.get("type") == "image":
        return str(block.get("url") or block.get("file_id") or block.get("id"))
    if block.get("type") == "image_url":
        image = block.get("image_url")
        return str(image.get("url") if isinstance(image, Mapping) else image)
    return None


def names_stored_image(messages: Sequence[BaseMessage]) -> bool:
    """Whether any message refers to a stored image (`agent-image:`) itself.

    Only the service writes references; one from a client would read an image stored for
    someone else (images are stored once, by content, for every caller).
    """
    return any(
        isinstance(m.content, list)
        and any(isinstance(b, dict) and _reference(b) is not None for b in m.content)
        for m in messages
    )


def has_image(content: str | list[str | dict[str, Any]]) -> bool:
    """Whether message content carries an image, in any form."""
    return isinstance(content, list) and any(
        isinstance(block, dict) and image_key(block) is not None for block in content
    )


def _with_content(message: M, content: list[str | dict[str, Any]]) -> M:
    # The id stays: `add_messages` and reconciliation know the message by it.
    return message.model_copy(update={"content": content})


def _extras(block: Mapping[str, Any]) -> dict[str, Any]:
    """The `extras` a block carries on (an OpenAI part's `detail` becomes one)."""
    if isinstance(block.get("extras"), dict):
        return {"extras": block["extras"]}
    image = block.get("image_url")
    if isinstance(image, Mapping) and image.get("detail") is not None:
        return {"extras": {"detail": image["detail"]}}
    return {}


def _resolved(
    block: str | dict[str, Any], found: Mapping[str, StoredImage]
) -> str | dict[str, Any]:
    """A block as the provider gets it: a reference becomes its image's base64 again."""
    digest = _reference(block) if isinstance(block, dict) else None
    if digest is None or not isinstance(block, dict):
        return block
    if digest not in found:
        return {"type": "text", "text": MISSING_IMAGE}
    image = found[digest]
    data = base64.b64encode(image.data).decode("ascii")
    return {"type": "image", "base64": data, "mime_type": image.mime_type} | _extras(block)


async def externalize(messages: Sequence[M], store: ImageStore) -> list[M]:
    """The messages with every inline image saved in `store` and replaced by a reference.

    Call it before messages enter a thread: the checkpoints then hold a short reference
    per image, whatever the number of turns. Base64 that does not decode stays inline.
    """
    saved: dict[str, StoredImage] = {}
    out: list[M] = []
    for message in messages:
        if not has_image(message.content):
            out.append(message)
            continue
        content: list[str | dict[str, Any]] = []
        for block in message.content:
            inline = _inline(block) if isinstance(block, dict) else None
            if not isinstance(block, dict) or inline is None:
                content.append(block)
                continue
            try:
                data = decode_base64(inline[1])
            except ValueError:
                content.append(block)
                continue
            digest = _sha256(data)
            saved[digest] = StoredImage(inline[0], data)
            url = f"{REFERENCE_PREFIX}{digest}"
            content.append({"type": "image", "url": url, "mime_type": inline[0], **_extras(block)})
        out.append(_with_content(message, content))
    if saved:
        await store.save(saved)
    return out


async def resolve(messages: Sequence[M], store: ImageStore | None) -> list[M]:
    """The messages with every reference block replaced by the image's base64 again.

    For the provider request, which must carry the bytes. A reference whose image is gone
    (or with no store to ask) becomes a short text saying so: the turn still runs.
    """
    wanted = {
        digest
        for message in messages
        if isinstance(message.content, list)
        for block in message.content
        if isinstance(block, dict) and (digest := _reference(block)) is not None
    }
    if not wanted:
        return list(messages)
    found = await store.load(wanted) if store is not None else {}
    if len(found) < len(wanted):
        logger.warning("%d referenced image(s) are not stored", len(wanted) - len(found))
    return [
        _with_content(message, [_resolved(block, found) for block in message.content])
        if isinstance(message.content, list)
        and any(isinstance(b, dict) and _reference(b) for b in message.content)
        else message
        for message in messages
    ]
