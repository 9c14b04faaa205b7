"""Generation settings for a conversation (sampling knobs, system prompt) and the presets that fill them.

The settings are stored as JSON with each conversation and turned into Haystack ``generation_kwargs`` at send
time. vLLM's own sampling parameters (``top_k``, ``min_p``, ``repetition_penalty``) are not part of the
OpenAI API, so they travel in ``extra_body``; :meth:`GenerationSettings.to_generation_kwargs` merges them
with any ``extra_body`` the caller already has, because a run-time ``extra_body`` replaces the generator's
whole one instead of merging.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.errors import DeskError, Fix

Mode = Literal["chat", "completion"]


class InvalidGenerationSettings(DeskError):
    title = "These generation settings cannot be used"

    def __init__(self, problems: str) -> None:
        super().__init__(
            f"Some generation settings are out of range: {problems}",
            fix=Fix(
                action="edit_generation_settings", label="Edit settings", hint="Correct the value(s) named."
            ),
        )


class GenerationSettings(BaseModel):
    """Sampling settings of one conversation; ``None`` means "the server's default"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "chat"
    system_prompt: str = ""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # vLLM extras (sent in extra_body).
    top_k: int | None = Field(default=None, ge=-1)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=2.0)
    # Document collections attached to the conversation (engine.documents.grounding puts their passages
    # into the request); never sent to the server as a setting.
    documents: tuple[str, ...] = ()
    # Tools the conversation lets the model call (built-in tool names and MCP server names) and the tool
    # choice (auto / required / none / a tool's name), for engine.tools.session; not sent as sampling.
    tools: tuple[str, ...] = ()
    tool_choice: str = "auto"

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> GenerationSettings:
        """Validate a dict (e.g. stored JSON or a form); raise :class:`InvalidGenerationSettings`."""
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
            )
            raise InvalidGenerationSettings(problems) from exc

    def updated(self, **changes: Any) -> GenerationSettings:
        """A validated copy with ``changes`` applied."""
        return GenerationSettings.parse({**self.model_dump(), **changes})

    def to_json_dict(self) -> dict[str, Any]:
        """Only the values that differ from the defaults (what the store keeps)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def to_generation_kwargs(self, extra_body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Haystack ``generation_kwargs`` for a streamed chat turn with usage numbers.

        ``extra_body`` (e.g. from the caller or a profile) is merged per top-level key with the vLLM extras;
        the extras set here win.
        """
        kwargs: dict[str, Any] = {"stream_options": {"include_usage": True}}
        for name in ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty", "seed"):
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        if self.stop:
            kwargs["stop"] = list(self.stop)
        body = dict(extra_body or {})
        for name in ("top_k", "min_p", "repetition_penalty"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if body:
            kwargs["extra_body"] = body
        return kwargs


class Preset(BaseModel):
    """A named starting point for a conversation's settings (and its system prompt)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    settings: GenerationSettings


PRESETS: tuple[Preset, ...] = (
    Preset(
        name="Precise",
        description="Deterministic answers (temperature 0); best for small models and facts.",
        settings=GenerationSettings(temperature=0.0, max_tokens=512),
    ),
    Preset(
        name="Balanced",
        description="Some variety without rambling.",
        settings=GenerationSettings(temperature=0.7, top_p=0.9, max_tokens=1024, repetition_penalty=1.05),
    ),
    Preset(
        name="Creative",
        description="More varied wording for drafting and brainstorming.",
        settings=GenerationSettings(temperature=1.0, top_p=0.95, min_p=0.05, max_tokens=2048),
    ),
    Preset(
        name="Code",
        description="Low temperature and a system prompt for programming help.",
        settings=GenerationSettings(
            temperature=0.2,
            max_tokens=2048,
            system_prompt="You are a careful programming assistant. Answer with working code.",
        ),
    ),
)


def preset(name: str) -> Preset:
    """The preset called ``name`` (case-insensitive); :class:`InvalidGenerationSettings` if unknown."""
    for candidate in PRESETS:
        if candidate.name.lower() == name.lower():
            return candidate
    known = ", ".join(p.name for p in PRESETS)
    raise InvalidGenerationSettings(f"there is no preset called {name!r} (known: {known})")
