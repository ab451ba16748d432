"""The `/agent` door: LangServe's endpoints and playground, and thread inspection."""
