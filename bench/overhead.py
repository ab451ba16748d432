"""What the service adds on top of a direct call, on two paths `make bench` does not cover.

`make bench` (`python -m bench`) is the benchmark: pinned processes, closed-loop load,
CPU per request against a one-node LangGraph floor. This older script, run with
`python -m bench.overhead`, still times what that one leaves out: a client that resends
the whole history every turn (as Open WebUI does) and an answer from the response cache. It
starts a fake OpenAI-compatible upstream (in this process) and the service
as its own process (`python -m server`: uvicorn on loopback, the real graph, SQLite
checkpoints), then sends the same requests, interleaved, with the official openai SDK:
directly to the upstream, through the service statelessly, and through the service on one
thread that grows by a turn per request. It prints latencies, ratios to the direct call, and
the service's resident memory. Nothing is asserted: these are figures to compare over time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import openai

from tests.fakes.service_process import ServiceProcess
from tests.fakes.upstream import FakeUpstream, Reply


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def _service(upstream_url: str, tmp: str) -> Iterator[tuple[str, int]]:
    env = {
        "AGENT_MODELS": json.dumps({"m": ["openai:bench"]}),
        "OPENAI_BASE_URL": upstream_url,
        "LOG_FORMAT": "text",
    }
    with ServiceProcess(Path(tmp), env) as service:
        assert service.process is not None
        yield service.url, service.process.pid


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def _first_token_ms(client: openai.OpenAI, model: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        extra_headers=headers,
    )
    first = 0.0
    for chunk in stream:
        if first == 0.0 and chunk.choices and chunk.choices[0].delta.content:
            first = (time.perf_counter() - start) * 1000
    return first


def _row(name: str, samples: list[float], base: float) -> str:
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[-1]
    return f"{name:<34} {median:8.2f} ms {p95:8.2f} ms {median / base:8.2f}x"


def main() -> None:
    """Run the side-by-side measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    with FakeUpstream() as upstream, tempfile.TemporaryDirectory() as tmp:
        upstream.default = Reply("The quick brown fox jumps over the lazy dog.")
        with _service(upstream.openai_base_url, tmp) as (service_url, pid):
            direct = openai.OpenAI(base_url=upstream.openai_base_url, api_key="x", max_retries=0)
            agent = openai.OpenAI(base_url=f"{service_url}/v1", api_key="x", max_retries=0)
            messages: list[dict[str, str]] = [{"role": "user", "content": "hello"}]
            thread = {"X-Thread-Id": f"bench-{uuid.uuid4().hex}"}

            def ask_direct() -> object:
                return direct.chat.completions.create(model="bench", messages=messages)  # type: ignore[arg-type]

            def ask_stateless() -> object:
                return agent.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]

            def ask_thread() -> object:
                return agent.chat.completions.create(
                    model="m",
                    messages=messages,  # type: ignore[arg-type]
                    extra_headers=thread,
                )

            history: list[dict[str, str]] = []

            def ask_direct_history() -> object:
                # What a client holding the thread itself would send: the whole history.
                reply = direct.chat.completions.create(
                    model="bench",
                    messages=[*history, *messages],  # type: ignore[list-item]
                )
                history.extend(
                    [
                        *messages,
                        {"role": "assistant", "content": reply.choices[0].message.content or ""},
                    ]
                )
                return reply

            webui_history: list[dict[str, str]] = []
            webui = {"X-OpenWebUI-Chat-Id": f"bench-{uuid.uuid4().hex}"}

            def ask_full_history() -> object:
                # What Open WebUI sends: the whole history each turn, reconciled with the thread.
                reply = agent.chat.completions.create(
                    model="m",
                    messages=[*webui_history, *messages],  # type: ignore[list-item]
                    extra_headers=webui,
                )
                webui_history.extend(
                    [
                        *messages,
                        {"role": "assistant", "content": reply.choices[0].message.content or ""},
                    ]
                )
                return reply

            def ask_cached() -> object:
                # Stateless with temperature 0: answered from the in-process cache after once.
                return agent.chat.completions.create(
                    model="m",
                    messages=messages,  # type: ignore[arg-type]
                    temperature=0,
                )

            for warm in (ask_direct, ask_stateless, ask_thread, ask_full_history, ask_cached):
                warm()
            history.extend([*messages, {"role": "assistant", "content": "warm-up"}])
            rss_before = _rss_mib(pid)
            results: dict[str, list[float]] = {
                "direct": [],
                "stateless": [],
                "direct_history": [],
                "thread": [],
                "full_history": [],
                "cached": [],
            }
            ttft: dict[str, list[float]] = {"direct": [], "service": []}
            for _ in range(args.requests):
                results["direct"].append(_timed(ask_direct))
                results["stateless"].append(_timed(ask_stateless))
                results["direct_history"].append(_timed(ask_direct_history))
                results["thread"].append(_timed(ask_thread))
                results["full_history"].append(_timed(ask_full_history))
                results["cached"].append(_timed(ask_cached))
            for _ in range(max(10, args.requests // 4)):
                ttft["direct"].append(_first_token_ms(direct, "bench", {}))
                ttft["service"].append(_first_token_ms(agent, "m", {}))
            rss_after = _rss_mib(pid)

    base = statistics.median(results["direct"])
    ttft_base = statistics.median(ttft["direct"])
    lines = [
        f"requests per series: {args.requests} (interleaved), loopback, one client",
        f"{'series':<34} {'median':>11} {'p95':>11} {'ratio':>9}",
        _row("direct to fake upstream", results["direct"], base),
        _row("service, stateless", results["stateless"], base),
        _row("direct, whole growing history", results["direct_history"], base),
        _row(
            "service, thread (vs whole history)",
            results["thread"],
            statistics.median(results["direct_history"]),
        ),
        _row(
            "service, full history each turn",
            results["full_history"],
            statistics.median(results["direct_history"]),
        ),
        _row("service, cache hit", results["cached"], base),
        _row("time to first token, direct", ttft["direct"], ttft_base),
        _row("time to first token, service", ttft["service"], ttft_base),
        f"service RSS: {rss_before:.1f} MiB after warm-up, {rss_after:.1f} MiB at the end",
    ]
    print("\n".join(lines))  # noqa: T201 - a benchmark prints its figures


if __name__ == "__main__":
    main()
