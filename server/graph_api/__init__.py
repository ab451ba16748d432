"""The LangGraph API door: the routes LangGraph's own clients call.

langgraph-sdk, RemoteGraph, agent-chat-ui and Studio, on the same graph, threads, keys,
budgets and metrics as the other doors. Written from the public API reference and the
clients' behaviour; nothing is taken from langgraph-api. `door.py` is the door's frame;
each other module serves one part of the API (`routes.py` lists them).
"""
