"""The module-level graph that `langgraph.json` names, for `langgraph dev` and scripts.

`graph/` builds graphs over whatever services it is given and imports nothing from `server/`;
this module gives it the services built from the environment (`Settings`, `.env`), on the
first run rather than at import, so loading it does no I/O. `langgraph dev` adds its own
checkpointer.
"""

from __future__ import annotations

from graph.builder import build_graph
from server.wiring.services import default_agent_deps

__all__ = ["graph"]

graph = build_graph(default_agent_deps)
"""The agent graph over the services of the environment's settings (built on first use)."""
