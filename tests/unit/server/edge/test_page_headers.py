"""The security headers' pieces: which pages get which policy, and their inline hashes."""

from __future__ import annotations

import base64
import hashlib

from server.edge.page_headers import INSPECTOR_POLICY, PLAYGROUND_POLICY, inline_hashes, policy_for


def sha256(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def test_each_page_family_has_its_policy_and_other_routes_none() -> None:
    assert policy_for("/agent/inspect") == INSPECTOR_POLICY
    assert policy_for("/agent/inspect/threads/a/b") == INSPECTOR_POLICY
    assert policy_for("/agent/playground/") == PLAYGROUND_POLICY
    assert policy_for("/agent/c/N4XyA/playground/assets/index.js") == PLAYGROUND_POLICY
    for other in ("/agent/inspector", "/agent/invoke", "/agent/c/x/invoke", "/docs", "/v1/models"):
        assert policy_for(other) is None


def test_only_inline_elements_are_hashed_each_once() -> None:
    html = (
        '<head><script type="module" crossorigin src="/a.js"></script>'
        "<STYLE>\n  a { color: red; }\n</STYLE><link rel=stylesheet href=/b.css></head>"
        "<body><script>\n  window.X = 1;\n</script><scripts>not one</scripts>"
        "<script>\n  window.X = 1;\n</script><script>unclosed"
    )
    assert inline_hashes(html, "script") == [sha256("\n  window.X = 1;\n")]
    assert inline_hashes(html, "style") == [sha256("\n  a { color: red; }\n")]
    assert inline_hashes("<p>no element</p>", "script") == []
