"""The tool turn loop: the model asks for tools, the user approves each call, results go back, the answer
streams.

Why our own loop over Haystack's ``OpenAIChatGenerator`` (with ``tools=``) rather than an ``Agent``:

- **approval per call, awaited**: each call waits for the user's decision (a card in the window, a prompt on
  the terminal) on the asyncio loop, and a denied call becomes a tool result the model reads;
- **every message saved as it happens**: the assistant's tool calls and each tool's result are handed to the
  caller (``on_message``) before the next step, so a crash mid-turn keeps what already ran;
- **malformed calls are kept, not dropped**: Haystack's streaming conversion skips a tool call whose arguments
  are not JSON (with a log warning), and keeps arguments that parse to a string (SmolLM2 on real vLLM returns
  ``"lookup_coder_code"``) as they are; we gather the streamed call deltas ourselves and answer such a call
  with a clear error result, which the model and the user both see;
- it reuses the app's warmed generator (:class:`engine.chat.generator.ReasoningChatGenerator`, reasoning
  kept) and its streaming callback unchanged.

Tool choice ``auto`` / ``required`` / ``none`` / a tool's name applies to the first round; later rounds are
``auto`` (a forced choice repeated every round would loop to the cap). A forced choice (``required`` or a
name) marks the forced tools ``strict: true`` in that request: vLLM 0.32 serves a forced choice through the
model's tool parser (hermes for SmolLM2) with structural tags, which pin the arguments to the schema only for
strict tools; without it the built-in model's arguments came back as a JSON string (measured on issue 19).
The grammar honours a string's ``maxLength``, ``pattern`` or ``enum`` (xgrammar 0.2.8; not ``maxLength``
beside a ``pattern``), which is what keeps a small model from running a free-text string on to the token
limit: the built-in tools bound theirs (:mod:`engine.tools.builtin`), and other tools' unbounded strings get
a ``maxLength`` in the strict copy only where :attr:`LoopLimits.forced_string_chars` says so (the session
sets it for the built-in model; :func:`capped_strings`), because in that grammar a bounded string cannot
hold a quote, a backslash or a line break — too high a price for every model's MCP text. A strict request
that vLLM refuses as bad (a schema its grammar cannot take) is sent again without ``strict`` (and without
the caps). After ``max_rounds`` rounds with tool calls, one last request goes without tools, so the turn
always ends with the model's answer (calls in a reply to a request without tools are dropped, not run).
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from engine.errors import DeskError
from engine.tools.approval import ApprovalPolicy, CallRequest, Decision, denied_result

if TYPE_CHECKING:
    from haystack.dataclasses import ChatMessage, StreamingChunk, ToolCall
    from haystack.tools.tool import Tool

CHOICES = ("auto", "required", "none")
BUILTIN_SERVER = "built-in"
# The stored messages' meta key for what the approval card showed: on an assistant message that called tools
# ``{"servers": {call id: server}}``, on a tool result ``{"server": ..., "decision": ...}`` (no decision: the
# call was refused before the user was asked — bad arguments, an unknown tool, a stopped turn).
TOOL_META = "tool"


class ToolChoiceInvalid(DeskError):
    title = "This tool choice cannot be used"

    def __init__(self, choice: str, names: Sequence[str]) -> None:
        known = ", ".join(names) or "none are enabled"
        super().__init__(
            f"The tool choice “{choice}” is neither auto, required, none nor an enabled tool "
            f"(tools: {known})."
        )


@dataclass(frozen=True)
class LoopLimits:
    """Caps of one turn: tool rounds, seconds per call, characters of a result that reach the model."""

    max_rounds: int = 5
    call_timeout_s: float = 60.0
    max_result_chars: int = 16_000
    # A forced (strict) call's strings with no bound of their own get this maxLength (None: left free). For a
    # small model that runs a string on to the token limit; the cost is that a bounded string cannot hold a
    # quote, a backslash or a line break in vLLM 0.32's grammar.
    forced_string_chars: int | None = None


@dataclass(frozen=True)
class LoopEvent:
    """Something to show: streamed ``token``/``reasoning`` text, a ``call`` asked for, its ``decision``, its
    ``result`` (``error`` when it failed), or a ``notice`` (the round cap)."""

    kind: Literal["token", "reasoning", "call", "decision", "result", "notice"]
    text: str = ""
    call: CallRequest | None = None
    decision: Decision | None = None
    error: bool = False


@dataclass
class LoopOutcome:
    messages: list[ChatMessage] = field(default_factory=list)  # everything added, in order
    rounds: int = 0
    capped: bool = False

    @property
    def reply(self) -> ChatMessage | None:
        return self.messages[-1] if self.messages else None


OnEvent = Callable[[LoopEvent], None]
OnMessage = Callable[["ChatMessage"], Awaitable[None]]


def tool_choice_value(choice: str, names: Sequence[str]) -> str | dict[str, Any]:
    """The OpenAI ``tool_choice`` for auto / required / none or one tool's name."""
    if choice in CHOICES:
        return choice
    if choice in names:
        return {"type": "function", "function": {"name": choice}}
    raise ToolChoiceInvalid(choice, names)


# The keywords whose schemas a value must match, where a narrower sub-schema only narrows the whole: capping
# inside ``not``, ``if`` or ``oneOf`` could let through what was refused, so those are left alone.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "prefixItems", "items")
_SCHEMA_ONE = ("items", "additionalProperties", "additionalItems", "then", "else")
# A string schema with one of these already has its shape (``format``: xgrammar's own rule for it is kept).
_STRING_SHAPES = ("maxLength", "pattern", "enum", "const", "format")


def capped_strings(schema: Any, limit: int) -> Any:
    """A copy of ``schema`` in which every string schema without a bound of its own (no ``maxLength``,
    ``pattern``, ``enum``, ``const`` or ``format``) has ``maxLength: limit``; nothing else changes, and
    ``schema`` is left as it was. Only places where narrowing narrows the whole are visited (properties,
    items, ``anyOf``/``allOf``, ``$defs`` …; not ``not``, ``if`` or ``oneOf``), so a value the capped schema
    accepts, the original accepts too."""
    if not isinstance(schema, dict):
        return copy.deepcopy(schema)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: capped_strings(sub, limit) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [capped_strings(sub, limit) for sub in value]
        elif key in _SCHEMA_ONE and isinstance(value, dict):
            out[key] = capped_strings(value, limit)
        else:
            out[key] = copy.deepcopy(value)  # data (default, enum, examples …) or a keyword left alone
    kind = schema.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    if is_string and not any(shape in schema for shape in _STRING_SHAPES):
        least = schema.get("minLength")
        # Never below the string's own minLength: that would leave no string at all.
        out["maxLength"] = max(limit, least) if type(least) is int else limit
    return out


def strict_specs(tools: Sequence[Tool], choice: str, *, string_cap: int | None = None) -> list[Tool] | None:
    """The tools as one forced request sends them: those the choice forces (all for ``required``, the named
    one for a name) marked ``strict: true``, their schemas unchanged or, with ``string_cap``, with
    :func:`capped_strings`; ``None`` when nothing is forced.

    Request-only copies: they are never run (the loop runs its own tools by name, and checks the arguments
    against the tool's own schema, which the capped one only narrows)."""
    if choice in CHOICES and choice != "required":
        return None
    from haystack.tools.tool import Tool as HaystackTool

    class StrictSpec(HaystackTool):
        @property
        def tool_spec(self) -> dict[str, Any]:
            return {**super().tool_spec, "strict": True}

    def never(**_: Any) -> None:  # a request-only copy is never run
        raise RuntimeError("a request-only tool spec was invoked")

    def spec(tool: Tool) -> Tool:
        parameters = tool.parameters if string_cap is None else capped_strings(tool.parameters, string_cap)
        return StrictSpec(name=tool.name, description=tool.description, parameters=parameters, function=never)

    return [spec(t) if choice in ("required", t.name) else t for t in tools]


def refused_as_bad(exc: BaseException) -> bool:
    """Whether the server refused the request as bad: an HTTP 400, or a streamed error event with code 400."""
    from openai import APIConnectionError, APIError, BadRequestError

    if isinstance(exc, BadRequestError):
        return True
    body = exc.body if isinstance(exc, APIError) and not isinstance(exc, APIConnectionError) else None
    return isinstance(body, dict) and body.get("code") == 400


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a notice saying how much was left out."""
    if len(text) <= limit:
        return text
    return (
        text[:limit] + f"\n[Truncated: the tool returned {len(text):,} characters; only the first {limit:,} "
        "are shown.]"
    )


def tool_output_text(tool: Tool, value: Any) -> str:
    """A tool's output as the model reads it, through the tool's ``outputs_to_string`` (``source`` and
    ``handler``, as Haystack's ToolInvoker applies them; a ``PipelineTool`` returns its pipeline's dict)."""
    config = tool.outputs_to_string or {}
    source = config.get("source")
    if isinstance(source, str) and isinstance(value, dict):
        value = value.get(source)
    handler = config.get("handler")
    if callable(handler):
        value = handler(value)
    return result_text(value)


def result_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


@dataclass
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


def parse_arguments(raw: str) -> tuple[dict[str, Any] | None, str]:
    """Arguments as a dict, or ``None`` and the reason they cannot be used."""
    if not raw.strip():
        return {}, ""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"the arguments are not valid JSON ({exc.msg}, character {exc.pos})"
    if not isinstance(value, dict):
        return None, f"the arguments must be a JSON object, not {type(value).__name__} {raw[:80]}"
    return value, ""


class ToolLoop:
    """One turn with tools. ``servers`` names the MCP server of each tool (absent: built-in)."""

    def __init__(
        self,
        generator: Any,
        tools: Sequence[Tool],
        *,
        approval: ApprovalPolicy,
        choice: str = "auto",
        limits: LoopLimits | None = None,
        servers: Mapping[str, str] | None = None,
        on_event: OnEvent | None = None,
        on_message: OnMessage | None = None,
    ) -> None:
        self.generator = generator
        self.tools = {tool.name: tool for tool in tools}
        self.approval = approval
        self.choice = choice
        self.limits = limits or LoopLimits()
        self.servers = dict(servers or {})
        self._on_event = on_event
        self.on_message = on_message
        tool_choice_value(choice, list(self.tools))  # refuse a bad choice before anything is sent

    def _emit(self, event: LoopEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    async def _keep(self, outcome: LoopOutcome, message: ChatMessage) -> None:
        outcome.messages.append(message)
        if self.on_message is not None:
            await self.on_message(message)

    async def run(
        self, messages: Sequence[ChatMessage], *, generation_kwargs: Mapping[str, Any] | None = None
    ) -> LoopOutcome:
        """Run rounds until the model answers without tools (or the cap); returns every message added."""
        outcome = LoopOutcome()
        history = list(messages)
        while True:
            use_tools = bool(self.tools) and self.choice != "none" and outcome.rounds < self.limits.max_rounds
            choice = self.choice if outcome.rounds == 0 else "auto"
            reply = await self._ask_model(history, generation_kwargs, choice if use_tools else None)
            if reply.tool_calls and not use_tools:
                # Calls in a reply to a request that offered no tools (past the cap, or choice none) are not
                # run, or a server that answers with calls regardless would keep the turn going for ever.
                reply = _without_calls(reply)
                self._emit(
                    LoopEvent(
                        "notice",
                        "The model asked for tools in a reply to a request that offered none; those calls "
                        "were not run.",
                    )
                )
            await self._keep(outcome, reply)
            history.append(reply)
            if not reply.tool_calls:
                return outcome
            outcome.rounds += 1
            for call in reply.tool_calls:
                result = await self._run_call(call)
                await self._keep(outcome, result)
                history.append(result)
            if outcome.rounds >= self.limits.max_rounds:
                outcome.capped = True
                self._emit(
                    LoopEvent(
                        "notice",
                        f"The model asked for tools {outcome.rounds} rounds in a row, the most one turn "
                        "allows; it now answers without tools.",
                    )
                )

    async def _ask_model(
        self, history: list[ChatMessage], generation_kwargs: Mapping[str, Any] | None, choice: str | None
    ) -> ChatMessage:
        from haystack.dataclasses import ChatMessage, ToolCall

        pending: dict[int, _PendingCall] = {}

        async def on_chunk(chunk: StreamingChunk) -> None:
            if chunk.reasoning is not None and chunk.reasoning.reasoning_text:
                self._emit(LoopEvent("reasoning", chunk.reasoning.reasoning_text))
            if chunk.content:
                self._emit(LoopEvent("token", chunk.content))
            for delta in chunk.tool_calls or ():
                slot = pending.setdefault(delta.index, _PendingCall())
                slot.id = slot.id or (delta.id or "")
                slot.name += delta.tool_name or ""
                slot.arguments += delta.arguments or ""

        kwargs = dict(generation_kwargs or {})
        run_kwargs: dict[str, Any] = {}
        strict: list[Tool] | None = None
        if choice is not None:
            kwargs["tool_choice"] = tool_choice_value(choice, list(self.tools))
            run_kwargs["tools"] = list(self.tools.values())
            strict = strict_specs(run_kwargs["tools"], choice, string_cap=self.limits.forced_string_chars)
        result = await self._request(history, on_chunk, kwargs, run_kwargs, strict)
        reply: ChatMessage = result["replies"][0]
        if not pending:
            for index, known in enumerate(reply.tool_calls):
                pending[index] = _PendingCall(known.id or "", known.tool_name, json.dumps(known.arguments))
        calls: list[ToolCall] = []
        for index in sorted(pending):
            slot = pending[index]
            arguments, problem = parse_arguments(slot.arguments)
            if problem and reply.meta.get("finish_reason") == "length":
                problem = "the reply reached its token limit before the arguments were complete"
            extra = None if not problem else {"raw_arguments": slot.arguments, "problem": problem}
            call_id = slot.id or f"call-{uuid.uuid4().hex[:12]}"
            calls.append(ToolCall(tool_name=slot.name, arguments=arguments or {}, id=call_id, extra=extra))
        meta = dict(reply.meta)
        if calls:
            meta[TOOL_META] = {"servers": {call.id: self._server(call.tool_name) for call in calls}}
        return ChatMessage.from_assistant(
            text=reply.text or "",  # "" not None: templates that join content as text (SmolLM2) need it
            tool_calls=calls or None,
            reasoning=reply.reasoning,
            meta=meta,
        )

    async def _request(
        self,
        history: list[ChatMessage],
        on_chunk: Callable[[StreamingChunk], Awaitable[None]],
        kwargs: dict[str, Any],
        run_kwargs: dict[str, Any],
        strict: list[Tool] | None,
    ) -> dict[str, Any]:
        """One request; a strict one that vLLM refuses as bad before anything streamed is sent again without
        ``strict``. vLLM 0.32 refuses a schema its grammar cannot take with a 400, or, streamed, with a 200
        whose first event is the error (code 400; measured with a dangling ``$ref``)."""
        if strict is not None:
            streamed = False

            async def counted(chunk: StreamingChunk) -> None:
                nonlocal streamed
                streamed = streamed or bool(chunk.content or chunk.tool_calls or chunk.reasoning)
                await on_chunk(chunk)

            try:
                return await self.generator.run_async(  # type: ignore[no-any-return]
                    history,
                    streaming_callback=counted,
                    generation_kwargs=kwargs,
                    **{**run_kwargs, "tools": strict},
                )
            except Exception as exc:
                if streamed or not refused_as_bad(exc):
                    raise
        return await self.generator.run_async(  # type: ignore[no-any-return]
            history, streaming_callback=on_chunk, generation_kwargs=kwargs, **run_kwargs
        )

    def _server(self, tool: str) -> str:
        return self.servers.get(tool, BUILTIN_SERVER)

    async def _run_call(self, call: ToolCall) -> ChatMessage:
        from haystack.dataclasses import ChatMessage

        request = CallRequest(
            call_id=call.id or "",
            tool=call.tool_name,
            server=self._server(call.tool_name),
            arguments=dict(call.arguments),
            raw_arguments=str((call.extra or {}).get("raw_arguments", "")),
        )
        self._emit(LoopEvent("call", call=request))
        text, error, decision = await self._result_of(call, request)
        # Every result is bounded, an error too: a tool's (or an MCP server's) error message, or the unknown
        # name the model wrote, can be megabytes as well.
        text = truncate(text, self.limits.max_result_chars)
        self._emit(LoopEvent("result", text, call=request, error=error))
        return ChatMessage.from_tool(
            text, origin=call, error=error, meta={TOOL_META: result_meta(request.server, decision)}
        )

    async def _result_of(self, call: ToolCall, request: CallRequest) -> tuple[str, bool, Decision | None]:
        """The result text the model gets (before :func:`truncate`), whether it is an error, and the user's
        decision (``None``: the call was refused before the user was asked). Nothing runs before approval."""
        problem = (call.extra or {}).get("problem")
        if problem:
            return (
                f"The call of {call.tool_name} was not run: {problem}. Call it again with a JSON object.",
                True,
                None,
            )
        tool = self.tools.get(call.tool_name)
        if tool is None:
            names = ", ".join(self.tools) or "none"
            return f"There is no tool named “{call.tool_name}”; the tools are: {names}.", True, None
        import jsonschema  # here: ~90 ms to import, and only a turn with tools needs it

        try:
            jsonschema.validate(dict(call.arguments), tool.parameters)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "the arguments"
            return f"The call of {tool.name} was not run: {where}: {exc.message}.", True, None
        except jsonschema.SchemaError:
            pass  # a server's broken schema is not the model's fault: let the tool judge the arguments
        decision = await self.approval.decide(request)
        self._emit(LoopEvent("decision", call=request, decision=decision))
        if decision == "deny":
            return denied_result(request), True, decision
        timeout = self.limits.call_timeout_s
        try:
            value = await asyncio.wait_for(tool.invoke_async(**call.arguments), timeout)
        except TimeoutError:
            return (
                f"The tool {tool.name} did not answer within {timeout:g} s and was given up.",
                True,
                decision,
            )
        except Exception as exc:  # noqa: BLE001 - a tool's failure is a result the model and user see
            return f"The tool {tool.name} failed: {_reason(exc)}", True, decision
        try:
            text = tool_output_text(tool, value)
        except Exception as exc:  # noqa: BLE001 - a handler's failure is the tool's failure
            return f"The tool {tool.name} failed: {_reason(exc)}", True, decision
        return text, False, decision


def _without_calls(reply: ChatMessage) -> ChatMessage:
    from haystack.dataclasses import ChatMessage

    meta = {key: value for key, value in reply.meta.items() if key != TOOL_META}
    return ChatMessage.from_assistant(text=reply.text or "", reasoning=reply.reasoning, meta=meta)


def result_meta(server: str, decision: Decision | None = None) -> dict[str, str]:
    """A tool result's :data:`TOOL_META`: its server, and the user's decision when one was asked for."""
    return {"server": server, "decision": decision} if decision else {"server": server}


def _reason(exc: BaseException) -> str:
    # Haystack wraps the tool's own error as "Failed to invoke Tool `x` with parameters {...}. Error: <why>",
    # twice for an MCP tool (its MCPTool inside our text tool): every such wrapping is taken off.
    text = str(exc) or type(exc).__name__
    marker = ". Error: "
    while text.startswith("Failed to invoke Tool ") and marker in text:
        text = text.split(marker, 1)[1]
    return text
