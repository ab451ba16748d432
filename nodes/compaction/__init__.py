"""Keeping a prompt within its model's context budget (the pure logic of `nodes/compact.py`).

`tokens` estimates sizes, `budget` says how many tokens a prompt may take, `prompt` builds
what is sent from the thread and its summary, `cut` finds the turn boundaries, `summary`
writes the summariser's prompt, `compactor` decides.
"""
