"""Serve any ASGI app with uvicorn in a background thread, for tests.

Example:
    >>> with ServedApp(app) as served:
    ...     httpx.get(f"{served.url}/health")

The listening socket is bound in the calling thread before the server starts, so
``.port``/``.url`` are known right away and there is no "pick a port, then bind it"
race. ``start()`` returns only once lifespan startup has completed and the socket
accepts connections; ``stop()`` asks uvicorn to exit, waits for it, and escalates to
a forced exit if in-flight requests keep it busy.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.types import ASGIApp

__all__ = ["ServedApp", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` with nothing listening on it.

    The port is obtained from the OS and the probing socket is closed again, so a
    connection attempt to it is refused (useful to simulate an unreachable
    upstream). Another process could grab it in the meantime, which is very
    unlikely within a test.

    Args:
        host: Interface to probe.

    Returns:
        The port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


class StartStop:
    """`with` support for anything that has `start() -> Self` and `stop()`."""

    def start(self) -> Self:
        """Start; subclasses do the work."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop; subclasses do the work."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServedApp(StartStop):
    """An ASGI app served by uvicorn on a background thread.

    Args:
        app: The ASGI application to serve.
        host: Interface to listen on.
        port: Port to listen on; ``None`` picks a free one.
        startup_timeout: Seconds ``start()`` waits for the server to accept connections.
        graceful_timeout: Seconds uvicorn waits for in-flight requests on shutdown
            before cancelling them (uvicorn's ``timeout_graceful_shutdown``).
        stop_timeout: Seconds ``stop()`` waits for the thread before forcing exit.
        **uvicorn_options: Extra keyword arguments for ``uvicorn.Config`` (they
            override the defaults chosen here, e.g. ``lifespan`` or ``http``).

    Attributes:
        app: The served application.
        host: The interface the server listens on.
        server: The ``uvicorn.Server`` instance (``None`` until ``start()``).
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        startup_timeout: float = 10.0,
        graceful_timeout: int = 1,
        stop_timeout: float = 5.0,
        **uvicorn_options: Any,
    ) -> None:
        self.app = app
        self.host = host
        self.server: uvicorn.Server | None = None
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._options: dict[str, Any] = {
            "lifespan": "on",
            "log_config": None,
            "access_log": False,
            "timeout_graceful_shutdown": graceful_timeout,
            **uvicorn_options,
        }
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._exit_code: str | int | None = None
        self._port = port if port is not None else 0
        self._bind()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the server, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _bind(self) -> None:
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it every response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self._port = sock.getsockname()[1]
        self._sock = sock

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits this way when lifespan startup fails
            self._exit_code = exc.code

    def start(self) -> Self:
        """Start serving and wait until the server accepts connections.

        Returns:
            This instance, for chaining.

        Raises:
            RuntimeError: If already started, or if the server did not come up (for
                example because the app's lifespan startup failed).
        """
        if self._thread is not None:
            raise RuntimeError("ServedApp already started (it cannot be restarted)")
        assert self._sock is not None
        config = uvicorn.Config(self.app, host=self.host, port=self.port, **self._options)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run,
            args=(self.server, self._sock),
            name=f"uvicorn-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self.server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError(
                    f"server on {self.url} exited during startup (exit code {self._exit_code!r})"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on {self.url} did not start in time")
            time.sleep(0.01)
        self._wait_accepting(deadline)
        return self

    def _wait_accepting(self, deadline: float) -> None:
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    msg = f"server on {self.url} does not accept connections"
                    raise RuntimeError(msg) from None
                time.sleep(0.01)

    def stop(self) -> None:
        """Shut the server down and wait for its thread to finish.

        Idle keep-alive connections are closed at once; in-flight requests get
        ``graceful_timeout`` seconds before uvicorn cancels them. If the thread is
        still alive after ``stop_timeout`` seconds, a forced exit is requested.
        Calling ``stop()`` more than once is harmless.

        Raises:
            RuntimeError: If the server thread could not be stopped.
        """
        thread, server = self._thread, self.server
        if thread is not None and server is not None and thread.is_alive():
            server.should_exit = True
            thread.join(self._stop_timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(self._stop_timeout)
            if thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not stop")
        if self._sock is not None:
            self._sock.close()
