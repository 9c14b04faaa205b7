"""``vllm-desk chat [--profile NAME | --base-url URL [--model NAME]] [--mode chat|completion] "message"``.

``--mode completion`` continues plain text (a base model without a chat template); it is kept in the
conversation's settings, like the window's fix "Use completion mode".

Streams the reply to stdout (reasoning, if any, to stderr) and saves the turn in the history. Without
``--base-url`` the supervisor starts the profile's (default: the built-in model's) server and stops it after
the reply. Ctrl-C stops the reply; what arrived is saved as stopped. A failed reply exits 1 (it is saved too).

``--tools NAME[,NAME...]`` lets the model call tools (each call approved first); see :mod:`engine.cli.tools`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sqlite3
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from engine.chat.engine import ChatEngine, TurnEvent
from engine.chat.errors import redact_url
from engine.chat.generation import GenerationSettings, preset
from engine.cli import tools as tools_cli
from engine.cli.history import printable, say_waiting
from engine.cli.runner import interrupt_means, run_command
from engine.endpoint import Endpoint, is_loopback, uses_env_proxy
from engine.errors import DeskError, Fix
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.paths import AppPaths

if TYPE_CHECKING:
    from engine.server.profiles import ServerProfile


class ChatArgumentProblem(DeskError):
    title = "The chat command needs more"

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message, fix=Fix(action="edit_command", label="Fix the command", hint=hint))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="send one message and stream the reply (saved in the history)",
        description="Send a message to a server profile (default: the built-in model, started for the "
        "occasion) or to any OpenAI-compatible server (--base-url), stream the reply and save the turn.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--profile", metavar="NAME", help="a saved server profile to start")
    where.add_argument("--base-url", metavar="URL", help="an OpenAI-compatible server (…/v1)")
    parser.add_argument("--model", metavar="NAME", help="model name on --base-url (default: its first)")
    parser.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    parser.add_argument("--conversation", type=int, metavar="ID", help="continue this conversation")
    parser.add_argument("--system", metavar="TEXT", help="system prompt (replaces the conversation's)")
    parser.add_argument("--preset", metavar="NAME", help="generation preset for a new conversation")
    parser.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    parser.add_argument("--max-tokens", type=int, metavar="N", help="longest reply in tokens")
    parser.add_argument(
        "--mode",
        choices=("chat", "completion"),
        help="chat (default) or completion: the model continues plain text (base models without a chat "
        "template); kept in the conversation's settings",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per event instead of text")
    parser.add_argument(
        "message",
        nargs="?",
        help="what to say; '-' (or nothing, with input piped in) reads it from standard input",
    )
    parser.add_argument("--file", metavar="PATH", help="read the message from this file (for long prompts)")
    parser.add_argument(
        "--docs",
        action="append",
        metavar="COLLECTION",
        help="answer from this document collection (repeatable; see vllm-desk docs); prints the sources",
    )
    tools_cli.add_chat_options(parser)
    parser.set_defaults(func=run)


def _api_key(args: argparse.Namespace) -> str | None:
    if not args.api_key_env:
        return None
    key = os.environ.get(args.api_key_env)
    if not key:
        raise ChatArgumentProblem(
            f"The environment variable {args.api_key_env} is empty or not set.",
            f"export {args.api_key_env}=YOUR-KEY, then run the command again.",
        )
    return key


async def remote_endpoint(base_url: str, model: str | None, api_key: str | None) -> Endpoint:
    """An endpoint for ``--base-url``; without ``--model``, the first model the server lists."""
    url = base_url.rstrip("/")
    if not url.endswith("/v1"):
        url += "/v1"
    kind: Literal["local", "remote"] = "local" if is_loopback(url) else "remote"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    max_len: int | None = None
    if model is None:
        try:
            async with httpx.AsyncClient(timeout=10.0, trust_env=uses_env_proxy(url, kind)) as client:
                response = await client.get(f"{url}/models", headers=headers)
            response.raise_for_status()
            listed = response.json().get("data", [])
        except (httpx.HTTPError, ValueError) as exc:
            raise ChatArgumentProblem(
                redact_url(f"Could not ask {url} which models it serves ({exc})."),
                "Check the URL (and --api-key-env), or name the model with --model.",
            ) from exc
        if not listed:
            raise ChatArgumentProblem(f"{redact_url(url)} serves no models.", "Name the model with --model.")
        model = str(listed[0]["id"])
        raw_len = listed[0].get("max_model_len")
        max_len = raw_len if isinstance(raw_len, int) else None
    return Endpoint(base_url=url, model=model, api_key=api_key, max_model_len=max_len, kind=kind)


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    """The generation settings given on the command line (``None``: not given)."""
    given = {"temperature": args.temperature, "max_tokens": args.max_tokens, "mode": args.mode}
    return {name: value for name, value in given.items() if value is not None}


def _settings(args: argparse.Namespace) -> GenerationSettings:
    settings = preset(args.preset).settings if args.preset else GenerationSettings()
    changes = _changes(args)
    return settings.updated(**changes) if changes else settings


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.in_reasoning = False

    def event(self, event: TurnEvent) -> None:
        if self.as_json:
            print(json.dumps(_event_dict(event)), flush=True)
        elif event.kind == "reasoning":
            sys.stderr.write(printable(event.text))
            sys.stderr.flush()
            self.in_reasoning = True
        elif event.kind == "token":
            if self.in_reasoning:
                sys.stderr.write("\n")
                self.in_reasoning = False
            sys.stdout.write(printable(event.text))
            sys.stdout.flush()
        elif event.kind == "finished":
            sys.stdout.write("\n")
            print(f"({', '.join(_reply_facts(event))})", file=sys.stderr, flush=True)
            if event.error is not None:
                # The server's own words are part of some errors: never raw to the terminal.
                print(f"error: {printable(str(event.error))}", file=sys.stderr)
                if event.error.fix is not None and event.error.fix.hint:
                    print(f"fix: {event.error.fix.hint}", file=sys.stderr)


def _event_dict(event: TurnEvent) -> dict[str, Any]:
    """One line of ``chat --json``: the event with what it carries."""
    data: dict[str, Any] = {"event": event.kind, "conversation_id": event.conversation_id}
    data["reply_id"] = event.reply_id
    if event.text:
        data["text"] = event.text
    if event.state:
        data["state"] = event.state
    if event.error is not None:
        data["error"] = event.error.to_dict()
    if event.numbers is not None and event.kind == "finished":
        data["numbers"] = vars(event.numbers)
    return data


def _reply_facts(event: TurnEvent) -> list[str]:
    """What the closing line says of a finished reply: ids, a state other than complete, tokens, speed."""
    n = event.numbers
    facts = [f"conversation {event.conversation_id}", f"reply {event.reply_id}"]
    if event.state != "complete":
        facts.append(str(event.state))
    if n is not None and n.completion_tokens is not None:
        facts.append(f"{n.completion_tokens} tokens")
    if n is not None and n.tokens_per_s:
        facts.append(f"{n.tokens_per_s:.1f} tok/s")
    return facts


def read_message(args: argparse.Namespace) -> str:
    """The message: the argument, ``--file``, or standard input (``-``, or no argument with input piped)."""
    if args.file is not None:
        if args.message is not None:
            raise ChatArgumentProblem("Give the message or --file, not both.", "Drop one of them.")
        try:
            return Path(args.file).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ChatArgumentProblem(
                f"The message file {args.file} cannot be read ({exc}).", "Name a readable UTF-8 text file."
            ) from exc
    if args.message == "-" or (args.message is None and not sys.stdin.isatty()):
        return sys.stdin.read()
    if args.message is None:
        raise ChatArgumentProblem(
            "There is no message to send.", 'Add it to the command, use --file PATH, or pipe it in with "-".'
        )
    return str(args.message)


async def _drop_if_empty(store: AsyncHistoryStore, conversation_id: int) -> None:
    with contextlib.suppress(Exception):
        tree = await store.load(conversation_id)
        if not tree.messages:
            await store.call(HistoryStore.delete_conversation, conversation_id)


async def _conversation_for(args: argparse.Namespace, engine: ChatEngine, store: AsyncHistoryStore) -> int:
    """The conversation to send to: ``--conversation`` (with the options given now applied) or a new one."""
    if args.conversation is None:
        settings = _settings(args)
        return (await engine.new_conversation(system_prompt=args.system or "", settings=settings)).id
    conversation_id = (await store.conversation(args.conversation)).id
    if _changes(args):
        current = GenerationSettings.parse((await store.conversation(conversation_id)).settings)
        # Only what was given on the command line; to_json_dict() would drop mode="chat" (a default).
        merged = current.updated(**_changes(args))
        await store.update_conversation(conversation_id, settings=merged.to_json_dict())
    if args.system is not None:
        await store.update_conversation(conversation_id, system_prompt=args.system)
    return conversation_id


async def chat(args: argparse.Namespace, paths: AppPaths) -> int:
    message = read_message(args)
    if not message.strip():
        raise ChatArgumentProblem("The message is empty.", "Say something.")
    tools_cli.check_chat_options(args)
    hits = await _passages(args, paths, message) if args.docs else []
    async with AsyncExitStack() as stack:
        if args.base_url:
            endpoint = await remote_endpoint(args.base_url, args.model, _api_key(args))
        else:
            endpoint = await _start_local(args, paths, stack)
        store = await AsyncHistoryStore.open(paths.history_db, on_wait=say_waiting)
        stack.push_async_callback(store.close)
        engine = ChatEngine(store, lambda: endpoint)
        stack.push_async_callback(engine.shutdown)  # its kept connection, before the store and the server
        grounded = message
        if args.docs:
            grounded, hits = _grounded(args, endpoint, message, hits)
            if hits:
                # The history keeps the question as typed; the passages go in the request, their sources
                # with the reply, each with whether the reply used it (as in the window).
                engine.augment = _with_passages(grounded, hits, message)
        conversation_id = await _conversation_for(args, engine, store)
        if args.tools:
            return await tools_cli.chat_with_tools(
                args, paths, stack, store, endpoint, conversation_id, grounded
            )
        try:
            turn = await engine.send(conversation_id, message)
        except sqlite3.Error:
            # The history could not take the message (busy beyond waiting, disk full): say it was not sent.
            print("Your message was not sent; run the command again.", file=sys.stderr)
            raise
        except BaseException:
            # Refused before anything was stored (too long, no server...): a conversation made for this
            # message is not left behind empty.
            if args.conversation is None:
                await _drop_if_empty(store, conversation_id)
            raise
        stack.enter_context(interrupt_means(turn.stop))  # Ctrl-C stops the reply, not the command
        printer = _Printer(args.json)
        try:
            async for event in turn:
                printer.event(event)
            reply = await turn.wait()
        except asyncio.CancelledError:
            # Stopped by a signal (engine.cli.runner): what arrived is saved as stopped before the server
            # and the history close.
            turn.stop()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await turn.wait()
            raise
        if args.docs:
            _print_sources(reply.content.get("meta"), args.json)
        return 0 if reply.state in ("complete", "stopped") else 1
    # AsyncExitStack may swallow an exception in principle; ours never do.
    raise AssertionError("unreachable")


async def _start_local(args: argparse.Namespace, paths: AppPaths, stack: AsyncExitStack) -> Endpoint:
    # The supervisor owns the server for the length of this command and stops it afterwards.
    from engine.cli.serve import choose_profile
    from engine.server.supervisor import Supervisor
    from engine.settings.store import SettingsStore

    settings = SettingsStore.open(paths.settings_file)
    profile = choose_profile(argparse.Namespace(profile=args.profile, model=None, port=None), settings)
    _check_tool_calling(args, profile)
    runtime_path = settings.settings.general.vllm_path
    supervisor = Supervisor(paths, runtime_path=str(runtime_path) if runtime_path else None)
    stack.push_async_callback(supervisor.shutdown)
    print(f"Starting {profile.name} …", file=sys.stderr, flush=True)
    endpoint: Endpoint = await supervisor.start(profile)
    if args.model:
        endpoint = dataclasses.replace(endpoint, model=args.model)
    return endpoint


def _check_tool_calling(args: argparse.Namespace, profile: ServerProfile) -> None:
    """``--tools`` on a profile that starts vLLM without a tool-call parser: refused before the server starts
    (vLLM would refuse the turn with HTTP 400), with the parser to set."""
    from engine.tools.parsers import no_parser_warning

    if not args.tools or profile.kind != "local" or profile.tool_call_parser:
        return
    problem = no_parser_warning(profile.name, profile.model, args.tool_choice)
    if problem:
        raise tools_cli.ToolsArgumentProblem(
            problem,
            "Set the profile's tool_call_parser (Preferences > Profiles), or pass --tool-choice none.",
        )


async def _passages(args: argparse.Namespace, paths: AppPaths, message: str) -> list[Any]:
    # Before the chat model starts: the embedding server runs for the search only (documents/answer.py).
    from engine.documents.answer import find_passages
    from engine.settings.embedder import chosen_embedder
    from engine.settings.store import SettingsStore

    settings = SettingsStore.open(paths.settings_file).settings
    runtime_path = settings.general.vllm_path
    print("Searching the documents …", file=sys.stderr, flush=True)
    return await find_passages(
        paths,
        args.docs,
        message,
        runtime_path=str(runtime_path) if runtime_path else None,
        profile=chosen_embedder(settings, paths),  # Preferences > Documents (documents.embedder)
    )


def _grounded(
    args: argparse.Namespace, endpoint: Endpoint, message: str, hits: list[Any]
) -> tuple[str, list[Any]]:
    from engine.documents.answer import grounded_message

    return grounded_message(
        message,
        hits,
        system=args.system or "",
        max_model_len=endpoint.max_model_len,
        reply_tokens=args.max_tokens,
    )


def _with_passages(grounded: str, hits: list[Any], question: str) -> Any:
    """A ``ChatEngine.augment`` that sends ``grounded`` for the newest user message and stores the sources
    (each with whether the reply used it, once it is saved)."""
    from engine.chat.request import RequestAugment
    from engine.documents.grounding import finish_sources, source_record

    async def augment(_endpoint: Endpoint, _settings: Any, messages: list[tuple[str, str]]) -> RequestAugment:
        sources = [source_record(n, hit) for n, hit in enumerate(hits, start=1)]
        return RequestAugment(
            [*messages[:-1], ("user", grounded)],
            {"sources": sources},
            finish_meta=finish_sources(sources, question),
        )

    return augment


def _print_sources(meta: dict[str, Any] | None, as_json: bool) -> None:
    """The sources stored with the reply: the used ones first, marked cited or matched."""
    from engine.documents.answer import sources_json, sources_lines
    from engine.documents.grounding import sources_of

    sources = sources_of(meta)
    if as_json:
        print(sources_json(sources), flush=True)
    elif sources:
        print("\n" + "\n".join(sources_lines(sources)), flush=True)
    else:
        print("\n(No passage of the documents fitted or matched; the answer is the model's own.)", flush=True)


def run(args: argparse.Namespace) -> int:
    paths = AppPaths.resolve(args.data_dir).ensure()
    return run_command(chat(args, paths))
