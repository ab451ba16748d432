"""Progress lines of a run's updates: what a chat UI shows in its collapsible block."""

from __future__ import annotations

from server.turns.progress import progress_lines


def test_a_compaction_is_a_line_of_its_own() -> None:
    compacted = {"how": "summary", "before": 10060, "after": 2751, "budget": 2800}
    lines = list(progress_lines({"compact": {"compacted": compacted, "prompt_tokens": {}}}))
    assert lines == ["Context: older turns summarised (~10060 → ~2751 tokens)\n"]
    assert list(progress_lines({"compact": {"prompt_tokens": {}}})) == []  # it fitted
