"""The benchmark of the service against the libraries it is built on (`make bench`).

`python -m bench [--quick]` (`__main__`) runs one benchmark (`run`): the systems under
test (`systems`, `peers/`) as processes pinned to core 0 (`targets`, `pinning`), the fake
upstream in a process of its own (`upstream`) and the closed-loop load generator (`loadgen`,
`wire`, `payloads`) on core 1; each series (`series`) takes CPU and memory from `/proc`
(`procfs`), PostgreSQL's transaction counts and checkpoint rows come from `pg`, thread growth
from `growth`, cold start and memory over many threads from `memory`. `plan` sizes a run,
`stats`, `report` and `goals` turn it into the printed table and the issue's goals, `results`
into JSON. `overhead` is the older one-client script, kept for two paths this one leaves out.

Its tests are in `tests/unit/bench/` and `tests/integration/test_bench.py`; the fake upstream
and the server helpers it runs are the tests' own (`tests/fakes/`), so it runs from a checkout.
"""
