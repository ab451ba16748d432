"""Log records as one JSON object per line, each tagged with the request it belongs to.

The request's facts live in a context variable (`current_request`), set by
`server.telemetry.middleware` for every HTTP request and copied by asyncio into every task the
request starts (graph nodes, streams). The graph's `TurnMetrics` fills in the provider that
answered, so the
access line says which provider served the request. Only these whitelisted fields reach the
output: headers and message bodies are never logged, and thread ids only as a hash.

Every record's message and traceback, third parties' included, has its URLs redacted (no
credentials, no query string: `nodes.redact`). `LOG_LEVEL=debug` is for the service's own
loggers (`OWN_LOGGERS`): the others stay at INFO, since their debug lines carry what must not be
logged (aiosqlite's writes every checkpoint, whole conversations; httpx's and openai's show
request headers and bodies).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from nodes.redact import redact_urls

LogFormat = Literal["auto", "json", "text"]

#: Attributes of `LogRecord` itself; anything else passed in `extra=` is a structured field.
_RECORD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}  # uvicorn's ANSI-coloured copy of the message
)


#: The service's own loggers: the only ones `LOG_LEVEL=debug` lowers below INFO.
OWN_LOGGERS: Final = ("graph", "nodes", "server")


def hash_thread_id(thread_id: str) -> str:
    """A short, stable, non-reversible tag of a thread id, to correlate logs without it."""
    return hashlib.sha256(thread_id.encode("utf-8")).hexdigest()[:16]


@dataclass
class RequestInfo:
    """What the logs may say about the request being served (mutable while it runs)."""

    request_id: str
    method: str
    route: str = "other"
    thread: str | None = None
    """`hash_thread_id` of the thread, never the id itself: of the `X-Thread-Id` (or
    `X-OpenWebUI-Chat-Id`) header as sent, else of the stored id the graph runs on."""
    provider: str | None = None
    """The provider target that produced the latest answer of this request's run."""
    ttft_ms: float | None = None
    """Milliseconds to the first token of the run's first answer."""
    input_tokens: int = 0
    output_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)


current_request: ContextVar[RequestInfo | None] = ContextVar("current_request", default=None)


class RequestContextFilter(logging.Filter):
    """Copies the current request's id, route, thread hash and provider onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate, never drop."""
        info = current_request.get()
        if info is not None:
            record.request_id = info.request_id
            record.route = info.route
            if info.thread is not None:
                record.thread_hash = info.thread
            if info.provider is not None and not hasattr(record, "provider"):
                record.provider = info.provider
        return True


class RedactingFilter(logging.Filter):
    """Redacts the URLs of every record's message and traceback (see `nodes.redact`).

    On the handler, so it sees every logger's records; the message is rendered once here.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite, never drop."""
        message = record.getMessage()
        redacted = redact_urls(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_urls(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record; values that are not JSON types become strings."""
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:  # rendered (and redacted) by `RedactingFilter`
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


JsonFormatter.converter = time.gmtime


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The classic line, suffixed with `[request_id]`."""
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [{request_id}]" if request_id else line


def resolve_format(log_format: LogFormat) -> Literal["json", "text"]:
    """`auto` is text on a terminal (a developer) and JSON otherwise (containers, files)."""
    if log_format == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return log_format


def library_level(level: str) -> str:
    """The level of third-party loggers for LOG_LEVEL `level`: never below INFO."""
    wanted = logging.getLevelName(level.upper())
    if isinstance(wanted, int) and wanted < logging.INFO:
        return "info"
    return level.lower()


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Route every logger (uvicorn's too) through one stderr handler in the chosen format.

    Called once by the process entry point (`python -m server`), not by the app: logging is
    process-wide, and tests build many apps in one process. The root logger (every third
    party's) is at `library_level(level)`; the service's own loggers at `level`.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter() if resolve_format(log_format) == "json" else TextFormatter()
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(library_level(level).upper())
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # MCP's server logs every request of the /mcp door at INFO; the access log has them already.
    if logging.getLogger(OWN_LOGGERS[-1]).getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("mcp.server").setLevel(max(root.level, logging.WARNING))
