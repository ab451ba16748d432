"""The thread inspector at `/agent/inspect`: server-rendered HTML pages, no LangServe."""
