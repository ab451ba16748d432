"""Fixtures shared by integration modules: the LangGraph API's two servers, once a session."""

from tests.langgraph_api_servers import api

__all__ = ["api"]
