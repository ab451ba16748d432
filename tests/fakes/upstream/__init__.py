"""A scripted fake LLM provider speaking the OpenAI and Anthropic wire protocols.

``FakeUpstream`` serves, over real HTTP on 127.0.0.1:

* ``POST /v1/chat/completions`` -- OpenAI Chat Completions (JSON or SSE stream),
* ``POST /v1/messages`` -- Anthropic Messages (JSON or named-event SSE stream),
* ``GET /v1/models`` -- an OpenAI model list with the single model ``fake-model``,
* ``POST /v1/embeddings`` -- OpenAI embeddings: a deterministic bag of words of
  ``EMBEDDING_DIMENSION`` dimensions (``embeddings``); each request consumes a step too.

Every request is recorded, then answered by the next scripted *step* (FIFO, shared
by both completion endpoints) or by ``default`` when the script is empty. A step is
a ``Reply`` (rendered for the endpoint and the request's ``stream`` flag) or a fault
built with ``Fault``. With ``rejects_images`` set, a request that carries an image is
answered 400 "does not support image input" instead, as a text-only model answers.

Example:
    >>> with FakeUpstream() as upstream:
    ...     upstream.script(Fault.rate_limit(retry_after=1), Reply("hello"))
    ...     client = openai.OpenAI(base_url=upstream.openai_base_url, api_key="test")

Modules: ``steps`` (what a script is made of), ``faults`` (the ``Fault`` constructors),
``recording`` (``RecordedRequest``), ``rendering`` (what both wires share),
``openai_wire`` and ``anthropic_wire`` (each provider's bodies, errors and event streams),
``asgi`` (the raw ASGI channel that can pause and drop connections), ``server``
(``FakeUpstream``: routes, the script, the recording, acting on a step).
"""

from __future__ import annotations

from tests.fakes.upstream.embeddings import EMBEDDING_DIMENSION
from tests.fakes.upstream.faults import Fault
from tests.fakes.upstream.recording import RecordedRequest
from tests.fakes.upstream.server import FakeUpstream
from tests.fakes.upstream.steps import (
    ContextLengthFault,
    CutStreamFault,
    HangFault,
    MalformedJSONFault,
    NotStreamingFault,
    Reply,
    StatusFault,
    Step,
    ToolCallSpec,
)

__all__ = [
    "EMBEDDING_DIMENSION",
    "ContextLengthFault",
    "CutStreamFault",
    "FakeUpstream",
    "Fault",
    "HangFault",
    "MalformedJSONFault",
    "NotStreamingFault",
    "RecordedRequest",
    "Reply",
    "StatusFault",
    "Step",
    "ToolCallSpec",
]
