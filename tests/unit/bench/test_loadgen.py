"""How the closed loop shares requests between workers, and who owns which thread."""

from __future__ import annotations

from bench.loadgen import split
from bench.payloads import Endpoint, ThreadPool


def test_split_is_even_and_complete() -> None:
    assert split(10, 4) == [3, 3, 2, 2]
    assert split(3, 8) == [1, 1, 1, 0, 0, 0, 0, 0]
    assert sum(split(1001, 32)) == 1001


def test_a_thread_pool_never_gives_one_thread_to_two_workers() -> None:
    endpoint = Endpoint("t", "127.0.0.1", 1, "m", None)
    threads = [f"t{i}" for i in range(6)]
    turns: dict[str, int] = {"t0": 50}
    pool = ThreadPool(endpoint, threads, 3, stream=False, turns=turns)
    seen: dict[int, set[str]] = {0: set(), 1: set(), 2: set()}
    for _ in range(4):
        for worker in range(3):
            request = pool.next(worker)
            thread = request.split(b"X-Thread-Id: ")[1].split(b"\r\n")[0].decode()
            seen[worker].add(thread)
    assert seen == {0: {"t0", "t3"}, 1: {"t1", "t4"}, 2: {"t2", "t5"}}
    # The shared counts go on from what the threads had; each message says its turn.
    assert turns["t0"] == 52
    assert turns["t5"] == 2
    assert b'"content":"turn 53: hello"' in pool.next(0)  # worker 0 is back at t0
