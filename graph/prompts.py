"""Prompt text used by the nodes."""

SYSTEM_PROMPT = (
    "You are a helpful assistant running inside an agent service. "
    "Use the tools you are offered when they help: the calculator for arithmetic, "
    "the clock for dates and times, web search for current facts. "
    "Answer concisely."
)

TOOL_BUDGET_EXHAUSTED = (
    "The tool budget of this turn is used up. Answer now from what you already know "
    "and the tool results above, without calling tools."
)

BACKGROUND_TASK_PREFIX = "### Task:"
"""Chat UIs (Open WebUI) start their title, tag and follow-up prompts with this."""

SUMMARY_PROMPT = (
    "You maintain a running summary of a conversation between a user and an assistant, so "
    "the assistant can continue it without the full history. Merge the summary so far (if "
    "any) with the conversation to add into one updated summary. Keep names, numbers, "
    "decisions, facts the user stated, open questions and the results of tool calls; drop "
    "small talk. Write it in the third person, as plain text, as short as it can be. "
    "Reply with the summary only."
)
