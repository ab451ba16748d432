"""`/v1/completions` translated onto chat requests: what each prompt becomes, what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from graph.prompts import FILL_HERE, FILL_IN_THE_MIDDLE
from server.chat.completions import as_chat, finish_reason, gap_in, total_usage, validate
from server.chat.protocol import CompletionRequest
from server.errors import OpenAIHTTPError
from server.turns.result import TurnResult
from tests.conftest import SettingsFactory


def request(**fields: Any) -> CompletionRequest:
    return CompletionRequest.model_validate({"model": "m", "prompt": "p", **fields})


def test_a_prompt_is_one_user_message_with_the_sampling_fields() -> None:
    chat = as_chat(
        request(max_tokens=5, stop="\n", temperature=0.5, seed=3, logit_bias={"50256": -100}),
        "Say this is",
    )
    assert [(m.role, m.content) for m in chat.messages] == [("user", "Say this is")]
    assert (chat.max_output_tokens, chat.stop_list, chat.temperature) == (5, ["\n"], 0.5)
    assert chat.openai_params == {"seed": 3, "logit_bias": {"50256": -100.0}}
    assert chat.tool_choice is None  # the graph offers its tools as on the chat route


def test_a_suffix_makes_a_gap_to_fill_with_no_tools() -> None:
    chat = as_chat(request(suffix="\n}"), "fn main() {")
    assert [(m.role, m.content) for m in chat.messages] == [
        ("system", FILL_IN_THE_MIDDLE),
        ("user", f"fn main() {{{FILL_HERE}\n}}"),
    ]
    assert chat.tool_choice == "none"
    assert as_chat(request(suffix=""), "x").tool_choice == "none"  # an empty suffix too


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logprobs": 0}, "logprobs"),
        ({"best_of": 2}, "best_of"),
        ({"n": 2, "best_of": 1}, "best_of"),
        ({"n": 5}, "n"),
        ({"prompt": ["a", "b", "c"], "n": 2}, "n"),
        ({"prompt": ["a"] * 5}, "prompt"),
    ],
)
def test_what_cannot_be_honoured_is_refused_before_any_run(
    make_settings: SettingsFactory, fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(OpenAIHTTPError) as caught:
        validate(request(**fields), make_settings(max_completion_choices=4))
    assert (caught.value.status, caught.value.param) == (400, param)


def test_within_the_limits_nothing_is_refused(make_settings: SettingsFactory) -> None:
    validate(request(prompt=["a", "b"], n=2, best_of=2), make_settings(max_completion_choices=4))


def test_a_completion_ends_for_stop_length_or_content_filter_only() -> None:
    ended = [
        finish_reason(TurnResult.of({"finish_reason": r})) for r in ("length", "content_filter")
    ]
    assert ended == ["length", "content_filter"]
    assert finish_reason(TurnResult.of({"finish_reason": "tool_calls"})) == "stop"
    assert finish_reason(TurnResult.of({})) == "stop"


def test_usage_sums_every_run() -> None:
    one = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    results = [TurnResult.of({"usage": one}), TurnResult.of({"usage": one}), TurnResult.of({})]
    assert total_usage(results) == {
        "input_tokens": 6,
        "output_tokens": 4,
        "total_tokens": 10,
    }


@pytest.mark.parametrize(
    "prompt",
    [
        "<fim_prefix>def f(x):\n    return <fim_suffix>\n\nf(1)<fim_middle>",
        "<|fim_prefix|>def f(x):\n    return <|fim_suffix|>\n\nf(1)<|fim_middle|>",
        "<\uff5cfim\u2581begin\uff5c>def f(x):\n    return <\uff5cfim\u2581hole\uff5c>\n\nf(1)"
        "<\uff5cfim\u2581end\uff5c>",
        "<PRE> def f(x):\n    return  <SUF>\n\nf(1) <MID>",
    ],
)
def test_a_prompt_in_a_base_models_fim_template_is_a_gap_to_fill(prompt: str) -> None:
    chat = as_chat(request(), prompt)
    assert [(m.role, m.content) for m in chat.messages] == [
        ("system", FILL_IN_THE_MIDDLE),
        ("user", f"def f(x):\n    return {FILL_HERE}\n\nf(1)"),
    ]
    assert chat.tool_choice == "none"


@pytest.mark.parametrize(
    "prompt",
    [
        "What does <fim_prefix> mean?",
        "<fim_prefix>a<fim_suffix>b<fim_suffix>c<fim_middle>",  # which hole?
        "<fim_prefix>a<fim_suffix>b",  # not ended
    ],
)
def test_other_prompts_stay_prompts(prompt: str) -> None:
    chat = as_chat(request(), prompt)
    assert [(m.role, m.content) for m in chat.messages] == [("user", prompt)]
    assert gap_in(prompt, None) is None
