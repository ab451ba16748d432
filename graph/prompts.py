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

FILL_IN_THE_MIDDLE = (
    "You fill a gap in a document, as an editor's autocomplete does. The user sends the "
    "document with the marker <FILL_HERE> where text is missing. Reply with exactly the text "
    "that replaces the marker and nothing else: no explanation, no code fences, no repetition "
    "of the text before or after it. It may span several lines, or be empty when nothing is "
    "missing."
)
"""The system prompt of a fill-in-the-middle request (`/v1/completions` with a `suffix`)."""

FILL_HERE = "<FILL_HERE>"
"""Where the gap is, in the user message of a fill-in-the-middle request."""
