"""The `/mcp` door: the agent as an MCP server (Streamable HTTP), a `chat` tool and the tools."""
