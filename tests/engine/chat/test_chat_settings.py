"""Generation settings and presets: validation, kwargs for Haystack, the extra_body merge."""

from __future__ import annotations

import pytest

from engine.chat.generation import PRESETS, GenerationSettings, InvalidGenerationSettings, preset
from engine.chat.request import completion_prompt, request_messages
from engine.history.records import Conversation, StoredMessage


def test_defaults_send_only_usage_streaming() -> None:
    assert GenerationSettings().to_generation_kwargs() == {"stream_options": {"include_usage": True}}


def test_openai_knobs_go_top_level_and_vllm_extras_into_extra_body() -> None:
    s = GenerationSettings(
        temperature=0.3,
        top_p=0.9,
        max_tokens=64,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        seed=7,
        stop=("###",),
        top_k=40,
        min_p=0.05,
        repetition_penalty=1.1,
    )
    kwargs = s.to_generation_kwargs()
    assert kwargs["temperature"] == 0.3
    assert kwargs["max_tokens"] == 64
    assert kwargs["seed"] == 7
    assert kwargs["stop"] == ["###"]
    assert kwargs["extra_body"] == {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1}
    assert "top_k" not in kwargs  # passing it top-level makes the OpenAI client raise TypeError


def test_a_callers_extra_body_is_merged_not_replaced() -> None:
    kwargs = GenerationSettings(top_k=5).to_generation_kwargs(
        {"chat_template_kwargs": {"enable_thinking": False}}
    )
    assert kwargs["extra_body"] == {"chat_template_kwargs": {"enable_thinking": False}, "top_k": 5}


def test_out_of_range_values_get_one_readable_error() -> None:
    with pytest.raises(InvalidGenerationSettings) as info:
        GenerationSettings.parse({"temperature": 5, "top_p": 0, "nonsense": 1})
    text = str(info.value)
    assert "temperature" in text
    assert "top_p" in text
    assert "nonsense" in text
    assert info.value.fix is not None


def test_stored_json_round_trips_and_updates_validate() -> None:
    s = GenerationSettings(temperature=0.0, system_prompt="Be brief.", stop=("a", "b"))
    assert GenerationSettings.parse(s.to_json_dict()) == s
    assert s.to_json_dict() == {"temperature": 0.0, "system_prompt": "Be brief.", "stop": ["a", "b"]}
    with pytest.raises(InvalidGenerationSettings):
        s.updated(max_tokens=0)


def test_presets_are_valid_and_found_by_name() -> None:
    assert preset("precise").settings.temperature == 0.0
    assert preset("Code").settings.system_prompt
    assert len({p.name for p in PRESETS}) == len(PRESETS)
    with pytest.raises(InvalidGenerationSettings, match="no preset called 'wild'"):
        preset("wild")


def _msg(mid: int, role: str, text: str, parent: int | None) -> StoredMessage:
    return StoredMessage(id=mid, conversation_id=1, parent_id=parent, role=role, text=text)  # type: ignore[arg-type]


def test_request_puts_the_system_prompt_first_and_skips_empty_failed_replies() -> None:
    conv = Conversation(id=1, uid="u", title="", created_at=0, updated_at=0, system_prompt="Conv prompt")
    branch = [_msg(1, "user", "hi", None), _msg(2, "assistant", "", 1), _msg(3, "user", "again", 2)]
    assert request_messages(conv, branch, GenerationSettings(system_prompt="Preset prompt")) == [
        ("system", "Conv prompt"),
        ("user", "hi"),
        ("user", "again"),
    ]
    no_prompt = Conversation(id=1, uid="u", title="", created_at=0, updated_at=0)
    assert request_messages(no_prompt, branch[:1], GenerationSettings(system_prompt="P"))[0] == (
        "system",
        "P",
    )


def test_completion_prompt_is_a_plain_transcript() -> None:
    prompt = completion_prompt(
        [("system", "A story."), ("user", "Once"), ("assistant", "upon"), ("user", "a")]
    )
    assert prompt == "A story.\nUser: Once\nAssistant: upon\nUser: a\nAssistant:"
