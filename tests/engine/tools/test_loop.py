"""The tool turn loop against the stand-in process streaming well-formed, malformed, parallel and unknown
tool calls."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from haystack.dataclasses import ChatMessage
from haystack.tools import Tool
from haystack.tools.errors import ToolInvocationError

from engine.chat.generator import GeneratorPool
from engine.chat.request import ChatTimeouts
from engine.endpoint import Endpoint
from engine.tools.approval import ApprovalPolicy, CallRequest, Decision
from engine.tools.loop import (
    TOOL_META,
    LoopEvent,
    LoopLimits,
    ToolChoiceInvalid,
    ToolLoop,
    refused_as_bad,
    strict_specs,
    truncate,
)
from tests.support.standin.launch import Standin, running_standin

ADD = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}


def _add(a: int, b: int) -> str:
    return str(a + b)


def add_tool(function=_add) -> Tool:  # type: ignore[no-untyped-def]
    return Tool(name="add", description="Add two numbers.", parameters=ADD, function=function)


@asynccontextmanager
async def generator_for(server: Standin | Endpoint) -> AsyncIterator[object]:
    """A chat generator leased for the stand-in's endpoint (or any endpoint), its pool closed after."""
    pool = GeneratorPool(ChatTimeouts().for_endpoint)
    try:
        async with pool.lease(server if isinstance(server, Endpoint) else server.endpoint()) as generator:
            yield generator
    finally:
        await pool.aclose()


@pytest.fixture
def well_formed() -> Iterator[Standin]:
    with running_standin("--tool-calls", "well-formed", "--tool-arguments", '{"a": 2, "b": 3}') as server:
        yield server


class Recorder:
    def __init__(self, decision: Decision = "allow_once") -> None:
        self.decision = decision
        self.asked: list[CallRequest] = []
        self.events: list[LoopEvent] = []
        self.saved: list[ChatMessage] = []

    async def ask(self, request: CallRequest) -> Decision:
        self.asked.append(request)
        return self.decision

    def policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(self.ask)

    async def save(self, message: ChatMessage) -> None:
        self.saved.append(message)


async def run_loop(server: Standin, tools: list[Tool], rec: Recorder, **options: object) -> list[ChatMessage]:
    rec.saved.clear()
    async with generator_for(server) as generator:
        loop = ToolLoop(
            generator,
            tools,
            approval=options.pop("approval", rec.policy()),  # type: ignore[arg-type]
            on_event=rec.events.append,
            on_message=rec.save,
            **options,  # type: ignore[arg-type]
        )
        outcome = await loop.run([ChatMessage.from_user("What is 2 + 3?")])
    assert outcome.messages == rec.saved  # every message was handed over for saving as it came
    return outcome.messages


@pytest.mark.asyncio
async def test_an_approved_call_runs_and_its_result_goes_back_to_the_model(well_formed: Standin) -> None:
    rec = Recorder("allow_once")
    messages = await run_loop(well_formed, [add_tool()], rec)
    assert [m.role.value for m in messages] == ["assistant", "tool", "assistant"]
    call = messages[0].tool_calls[0]
    assert call.tool_name == "add"
    assert call.arguments == {"a": 2, "b": 3}
    assert call.id
    assert call.id.startswith("chatcmpl-tool-")
    result = messages[1].tool_call_result
    assert result is not None
    assert result.result == "5"
    assert result.error is False
    assert result.origin == call
    assert messages[2].text == "The capital of France is Paris."
    assert [r.tool for r in rec.asked] == ["add"]
    assert rec.asked[0].arguments == {"a": 2, "b": 3}
    assert rec.asked[0].server == "built-in"
    kinds = [e.kind for e in rec.events]
    assert kinds.index("call") < kinds.index("decision") < kinds.index("result") < kinds.index("token")


@pytest.mark.asyncio
async def test_a_denied_call_never_runs_and_the_model_is_told(well_formed: Standin) -> None:
    ran: list[int] = []

    def spy(a: int, b: int) -> str:
        ran.append(a)
        return "x"

    rec = Recorder("deny")
    messages = await run_loop(well_formed, [add_tool(spy)], rec)
    assert ran == []
    result = messages[1].tool_call_result
    assert result is not None
    assert result.error is True
    assert "denied" in str(result.result)
    assert "not run" in str(result.result)


@pytest.mark.asyncio
async def test_nothing_is_approved_by_default(well_formed: Standin) -> None:
    ran: list[int] = []
    rec = Recorder()
    messages = await run_loop(
        well_formed, [add_tool(lambda a, b: ran.append(a) or "x")], rec, approval=ApprovalPolicy()
    )
    assert ran == []
    assert "denied" in str(messages[1].tool_call_result.result)  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_always_allow_asks_once_per_tool() -> None:
    with running_standin("--tool-calls", "parallel", "--tool-arguments", '{"a": 1, "b": 1}') as server:
        rec = Recorder("allow_always")
        messages = await run_loop(server, [add_tool()], rec)
    assert len(rec.asked) == 1  # the second of the two parallel calls was allowed by "always"
    results = [m.tool_call_result for m in messages if m.tool_call_result is not None]
    assert [r.result for r in results] == ["2", "2"]
    ids = [r.origin.id for r in results]
    assert len(set(ids)) == 2  # each result answers its own call


@pytest.mark.asyncio
async def test_each_message_keeps_the_server_and_the_users_decision_in_its_meta() -> None:
    # What the card showed is stored with the messages: the server of each call, and for each result
    # whether the user allowed it once or always (the second call ran on the first one's "always").
    with running_standin("--tool-calls", "parallel", "--tool-arguments", '{"a": 1, "b": 1}') as server:
        rec = Recorder("allow_always")
        messages = await run_loop(server, [add_tool()], rec, servers={"add": "desk"})
    first, second = messages[0].tool_calls
    assert messages[0].meta[TOOL_META] == {"servers": {first.id: "desk", second.id: "desk"}}
    assert [m.meta[TOOL_META] for m in messages[1:3]] == [{"server": "desk", "decision": "allow_always"}] * 2
    assert TOOL_META not in messages[-1].meta  # the answer called nothing
    with running_standin("--tool-calls", "well-formed", "--tool-arguments", '{"a": 1, "b": 1}') as server:
        once = await run_loop(server, [add_tool()], Recorder("allow_once"))
        denied = await run_loop(server, [add_tool()], Recorder("deny"))
    assert once[1].meta[TOOL_META] == {"server": "built-in", "decision": "allow_once"}
    assert denied[1].meta[TOOL_META] == {"server": "built-in", "decision": "deny"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("malformed", "not valid JSON"),
        ("string-args", "must be a JSON object, not str"),
        ("unknown", "There is no tool named “no_such_tool”; the tools are: add"),
        ("truncated", "the reply reached its token limit before the arguments were complete"),
    ],
)
async def test_bad_calls_become_error_results_without_asking_or_running(mode: str, expected: str) -> None:
    ran: list[int] = []
    with running_standin("--tool-calls", mode) as server:
        rec = Recorder("allow_once")
        messages = await run_loop(server, [add_tool(lambda a, b: ran.append(a) or "x")], rec)
    assert ran == []
    assert rec.asked == []
    shown = next(e.call for e in rec.events if e.kind == "call")
    assert shown is not None
    assert shown.raw_arguments == (messages[0].tool_calls[0].extra or {}).get("raw_arguments", "")
    result = messages[1].tool_call_result
    assert result is not None
    assert result.error is True
    assert expected in str(result.result)
    # The malformed call is kept (not dropped as Haystack's streaming conversion would), with what was sent.
    if mode != "unknown":
        assert messages[0].tool_calls[0].extra is not None
        assert messages[0].tool_calls[0].extra["raw_arguments"]
    assert messages[-1].text == "The capital of France is Paris."  # the conversation goes on
    assert messages[1].meta[TOOL_META] == {"server": "built-in"}  # refused before the user was asked


@pytest.mark.asyncio
async def test_arguments_that_do_not_match_the_schema_are_refused() -> None:
    with running_standin("--tool-calls", "well-formed", "--tool-arguments", '{"a": "two"}') as server:
        rec = Recorder("allow_once")
        messages = await run_loop(server, [add_tool()], rec)
    text = str(messages[1].tool_call_result.result)  # type: ignore[union-attr]
    assert "'b' is a required property" in text or "is not of type 'integer'" in text
    assert rec.asked == []


@pytest.mark.asyncio
async def test_a_tool_that_raises_hangs_or_floods_gives_a_clear_result(well_formed: Standin) -> None:
    def boom(a: int, b: int) -> str:
        raise ValueError("the disk is on fire")

    release = threading.Event()

    def hang(a: int, b: int) -> str:
        release.wait(30)
        return "late"

    rec = Recorder()
    raised = await run_loop(well_formed, [add_tool(boom)], rec)
    assert "failed: the disk is on fire" in str(raised[1].tool_call_result.result)  # type: ignore[union-attr]
    try:
        hung = await run_loop(well_formed, [add_tool(hang)], rec, limits=LoopLimits(call_timeout_s=0.5))
    finally:
        release.set()
    assert "did not answer within 0.5 s" in str(hung[1].tool_call_result.result)  # type: ignore[union-attr]
    flood = await run_loop(
        well_formed, [add_tool(lambda a, b: "y" * 3_000_000)], rec, limits=LoopLimits(max_result_chars=1000)
    )
    text = str(flood[1].tool_call_result.result)  # type: ignore[union-attr]
    assert len(text) < 1200
    assert "Truncated: the tool returned 3,000,000 characters" in text


@pytest.mark.asyncio
async def test_a_huge_error_is_cut_with_a_notice_before_it_reaches_the_model(well_formed: Standin) -> None:
    # A failing tool (an MCP server's error too) can say megabytes: the error result is bounded as any result.
    def shout(a: int, b: int) -> str:
        raise ValueError("z" * 3_000_000)

    rec = Recorder()
    messages = await run_loop(well_formed, [add_tool(shout)], rec, limits=LoopLimits(max_result_chars=1000))
    result = messages[1].tool_call_result
    assert result is not None
    assert result.error is True
    text = str(result.result)
    assert text.startswith("The tool add failed: zzz")
    assert len(text) < 1200
    assert "[Truncated: the tool returned 3,000,0" in text
    shown = [e for e in rec.events if e.kind == "result"]
    assert [e.text for e in shown] == [text]  # the user sees what the model got


@pytest.mark.asyncio
async def test_a_model_that_keeps_calling_tools_is_stopped_at_the_cap() -> None:
    with running_standin("--tool-calls", "loop", "--tool-arguments", '{"a": 1, "b": 2}') as server:
        rec = Recorder("allow_always")
        messages = await run_loop(server, [add_tool()], rec, limits=LoopLimits(max_rounds=3))
    assert sum(1 for m in messages if m.tool_call_result is not None) == 3
    assert messages[-1].text == "The capital of France is Paris."  # the last request went without tools
    assert any(e.kind == "notice" and "3 rounds" in e.text for e in rec.events)


class _StubbornServer:
    """An OpenAI-compatible server (its own thread, the loopback) whose every streamed reply calls ``add``,
    whether the request offered tools or not, up to ``limit`` replies (then plain text, so a loop that never
    stops still ends the test). ``offered`` records, per request, whether it offered tools."""

    def __init__(self, limit: int = 20) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.offered: list[bool] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.offered.append(bool(body.get("tools")))
                n = len(server.offered)
                call = {"index": 0, "id": f"call-{n}", "type": "function"}
                call["function"] = {"name": "add", "arguments": '{"a": 1, "b": 2}'}
                delta = {"role": "assistant", "tool_calls": [call]} if n <= limit else {"content": "Done."}
                finish = "tool_calls" if n <= limit else "stop"
                head = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
                events = [
                    {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                    {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
                ]
                data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data.encode())))
                self.end_headers()
                self.wfile.write(data.encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _StubbornServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def endpoint(self) -> object:
        from engine.endpoint import Endpoint

        return Endpoint(base_url=f"http://127.0.0.1:{self.httpd.server_address[1]}/v1", model="m")


@pytest.mark.asyncio
@pytest.mark.parametrize("choice", ["auto", "none"])
async def test_calls_in_a_reply_to_a_request_without_tools_are_not_run_and_the_turn_ends(choice: str) -> None:
    # Past the cap (or with choice none) the request offers no tools; a server that calls one anyway must not
    # keep the turn going: those calls are dropped unrun and the turn ends with that reply.
    ran: list[int] = []
    rec = Recorder("allow_always")
    with _StubbornServer() as server:
        async with generator_for(server) as generator:  # type: ignore[arg-type]
            loop = ToolLoop(
                generator,
                [add_tool(lambda a, b: ran.append(a) or "3")],
                approval=rec.policy(),
                choice=choice,
                limits=LoopLimits(max_rounds=2),
                on_event=rec.events.append,
            )
            outcome = await loop.run([ChatMessage.from_user("Go.")])
    rounds = 0 if choice == "none" else 2
    assert server.offered == [True] * rounds + [False]
    assert len(ran) == rounds
    assert [m.role.value for m in outcome.messages] == ["assistant", "tool"] * rounds + ["assistant"]
    last = outcome.messages[-1]
    assert not last.tool_calls
    assert TOOL_META not in last.meta
    assert any(e.kind == "notice" and "offered none; those calls were not run" in e.text for e in rec.events)


@pytest.mark.asyncio
async def test_tool_choice_none_sends_no_tools_and_a_named_choice_must_be_a_tool(
    well_formed: Standin,
) -> None:
    rec = Recorder()
    messages = await run_loop(well_formed, [add_tool()], rec, choice="none")
    assert [m.role.value for m in messages] == ["assistant"]
    assert not messages[0].tool_calls
    with pytest.raises(ToolChoiceInvalid, match="nope"):
        ToolLoop(object(), [add_tool()], approval=ApprovalPolicy(), choice="nope")


def echo_tool() -> Tool:
    parameters = {"type": "object", "properties": {"text": {"type": "string"}}}
    return Tool(name="echo", description="Echo.", parameters=parameters, function=lambda text="": text)


def test_only_forced_tools_are_sent_strict_with_their_schemas_unchanged() -> None:
    tools = [add_tool(), echo_tool()]
    assert strict_specs(tools, "auto") is None
    assert strict_specs(tools, "none") is None
    named = strict_specs(tools, "add")
    assert named is not None
    assert named[0].tool_spec == {**tools[0].tool_spec, "strict": True}
    assert named[1] is tools[1]  # not forced: sent as it is
    required = strict_specs(tools, "required")
    assert required is not None
    assert [t.tool_spec.get("strict") for t in required] == [True, True]
    assert required[1].tool_spec["parameters"] == tools[1].parameters  # no "all required" rewrite
    with pytest.raises(ToolInvocationError, match="request-only"):
        named[0].invoke(a=1, b=2)


@pytest.mark.asyncio
@pytest.mark.parametrize("choice", ["add", "required"])
async def test_a_forced_choice_gets_object_arguments_from_a_server_that_pins_only_strict_tools(
    choice: str,
) -> None:
    # What vLLM 0.32 does with the hermes parser: a forced call's arguments follow the schema only when the
    # tool is strict, else they come back as a JSON string (issue 19).
    with running_standin("--tool-calls", "strict-only", "--tool-arguments", '{"a": 2, "b": 3}') as server:
        rec = Recorder("allow_once")
        messages = await run_loop(server, [add_tool()], rec, choice=choice)
    assert messages[0].tool_calls[0].arguments == {"a": 2, "b": 3}
    assert messages[0].tool_calls[0].extra is None
    assert [r.tool for r in rec.asked] == ["add"]
    assert messages[1].tool_call_result is not None
    assert messages[1].tool_call_result.result == "5"
    assert messages[-1].text == "The capital of France is Paris."


@pytest.mark.asyncio
async def test_auto_sends_no_strict_so_such_a_server_gives_a_string_and_a_clear_error() -> None:
    with running_standin("--tool-calls", "strict-only", "--tool-arguments", '{"a": 2, "b": 3}') as server:
        rec = Recorder("allow_once")
        messages = await run_loop(server, [add_tool()], rec, choice="auto")
    assert rec.asked == []
    assert "must be a JSON object, not str" in str(messages[1].tool_call_result.result)  # type: ignore[union-attr]
    assert messages[-1].text == "The capital of France is Paris."


@pytest.mark.asyncio
async def test_a_strict_request_the_server_refuses_is_sent_again_without_strict() -> None:
    with running_standin(
        "--tool-calls", "strict-only", "--tool-arguments", '{"a": 2, "b": 3}', "--refuse-strict"
    ) as server:
        rec = Recorder("allow_once")
        messages = await run_loop(server, [add_tool()], rec, choice="add")
    # The turn did not fail: the retry without strict got what such a server gives then, a string.
    assert messages[0].tool_calls[0].tool_name == "add"
    assert "must be a JSON object, not str" in str(messages[1].tool_call_result.result)  # type: ignore[union-attr]
    assert messages[-1].text == "The capital of France is Paris."


def test_only_a_refusal_as_bad_is_retried_without_strict() -> None:
    import httpx
    from openai import APIConnectionError, APIError, BadRequestError

    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    bad = httpx.Response(400, request=request)
    assert refused_as_bad(BadRequestError("bad", response=bad, body=None))
    assert refused_as_bad(APIError("Invalid grammar", request, body={"code": 400}))  # vLLM's streamed 400
    assert not refused_as_bad(APIError("EngineCore died", request, body={"code": 500}))
    assert not refused_as_bad(APIConnectionError(request=request))
    assert not refused_as_bad(TimeoutError())


def test_truncate_keeps_short_text_whole() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcd", 3).startswith("abc\n[Truncated: the tool returned 4 characters")


def test_the_stand_in_streams_parallel_calls_as_vllm_does() -> None:
    from tests.support.standin.tool_calls import deltas

    body = {"tools": [{"type": "function", "function": {"name": "add"}}]}
    steps = deltas("parallel", body, None, json.dumps({"a": 1}))
    indexes = [s["tool_calls"][0]["index"] for s in steps]
    assert indexes[0] == 0
    assert indexes[-1] == 1
    joined = "".join(
        s["tool_calls"][0]["function"].get("arguments", "") for s in steps if s["tool_calls"][0]["index"] == 1
    )
    assert json.loads(joined) == {"a": 1}
