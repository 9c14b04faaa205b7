"""``vllm-desk tools list | add-mcp | edit-mcp | remove``, and the tool options of ``vllm-desk chat``.

``tools add-mcp NAME [--env KEY=VALUE]... -- COMMAND [ARGS...]`` adds a stdio server (with a warning: it runs
code on this machine), ``tools add-mcp NAME --url URL [--header NAME=VALUE]...`` a streamable HTTP one; a
name in use is refused. Environment values whose names look secret (``*KEY*``, ``*TOKEN*``, ...),
``--secret-env`` values and every header go to the keychain; the rest to ``tools.toml``.

``tools edit-mcp NAME [--name NEW] [--url URL] [--env|--secret-env KEY=VALUE]... [--header NAME=VALUE]...
[--unset NAME]... [-- COMMAND [ARGS...]]`` changes only what is given (the other values, secrets included,
stay), through the same engine call as Preferences > Tools (:func:`engine.tools.config.update_server`): a
new name carries over to the chats that used the old one.

``vllm-desk chat --tools NAME[,NAME...] [--tool-choice auto|required|none|TOOL] [--approve ask|all|deny]``
enables built-in tools (``current_time``, ``search_history``, ``search_documents``) and MCP servers by name.
``--approve ask`` (the default) asks on the terminal before each call and refuses to run without one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from engine.cli.history import printable, printable_json
from engine.cli.runner import run_command
from engine.errors import DeskError, Fix
from engine.paths import AppPaths
from engine.tools.approval import ApprovalPolicy, CallRequest, Decision
from engine.tools.builtin import BUILTIN_NAMES, DESCRIPTIONS, SEARCH_DOCUMENTS
from engine.tools.config import (
    STDIO_WARNING,
    McpServer,
    ServerNameTaken,
    ToolsSettings,
    builtin_clash,
    looks_secret,
    unused_reason,
    update_server,
)
from engine.tools.loop import LoopEvent
from engine.tools.parsers import FORCED_ONLY_WARNING

if TYPE_CHECKING:
    from haystack.tools.tool import Tool

    from engine.endpoint import Endpoint
    from engine.history.async_store import AsyncHistoryStore


class ToolsArgumentProblem(DeskError):
    title = "The tools command needs more"

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message, fix=Fix(action="edit_command", label="Fix the command", hint=hint))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tools",
        help="MCP servers and built-in tools for chat",
        description="List the built-in tools and MCP servers, add an MCP server (stdio: a command run on "
        "this machine; streamable HTTP: a URL), change one or remove one.",
    )
    sub = parser.add_subparsers(dest="tools_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="built-in tools and MCP servers")
    listing.add_argument("--json", action="store_true", help="JSON output")
    listing.add_argument("--check", action="store_true", help="start each server and list its tools")
    listing.set_defaults(func=run_list)
    add = sub.add_parser(
        "add-mcp",
        help="add an MCP server: NAME -- COMMAND [ARGS...] (stdio) or NAME --url URL (streamable HTTP)",
    )
    add.add_argument("name", metavar="NAME")
    _add_options(add)
    add.add_argument("rest", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...] for a stdio server")
    add.set_defaults(func=run_add)
    edit = sub.add_parser(
        "edit-mcp",
        help="change an MCP server: NAME [--name NEW] [--url URL] [--env ...] [--unset N] [-- COMMAND ...]",
        description="Change only what is given; the rest (secrets in the keychain too) stays. A new name "
        "carries over to the chats that used the old one.",
    )
    edit.add_argument("name", metavar="NAME")
    _add_options(edit)
    _edit_options(edit)
    edit.add_argument("rest", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]: a new command (stdio)")
    edit.set_defaults(func=run_edit)
    remove = sub.add_parser("remove", help="remove an MCP server (and its secrets)")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(func=run_remove)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="a streamable HTTP server (…/mcp)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment (stdio)")
    parser.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment kept in the keychain",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="HTTP header (kept in the keychain)",
    )


def _edit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", dest="new_name", metavar="NEW", help="rename it (chats follow)")
    parser.add_argument(
        "--unset",
        action="append",
        default=[],
        metavar="NAME",
        help="drop an environment variable or header (a secret one's keychain value too)",
    )


def _late_options(args: argparse.Namespace, *, edit: bool) -> tuple[argparse.Namespace, list[str]]:
    """The options given after NAME (in ``args.rest``, argparse's REMAINDER, read up to "--") and the
    command after "--". argparse drops a "--" that comes right after NAME: then ``rest`` is the command."""
    rest = list(args.rest)
    late = argparse.ArgumentParser(prog=f"vllm-desk tools {args.tools_command}", add_help=False)
    _add_options(late)
    if edit:
        _edit_options(late)
    if "--" in rest:
        cut = rest.index("--")
        extra, unknown = late.parse_known_args(rest[:cut])
        command = rest[cut + 1 :]
        if unknown:
            raise ToolsArgumentProblem(
                f"Unexpected {' '.join(unknown)!r}.",
                "Put the server's command after --: NAME -- COMMAND ARGS",
            )
    elif rest and not rest[0].startswith("-"):
        extra, command = late.parse_args([]), rest
    else:
        extra, command = late.parse_known_args(rest)
        if command and command[0].startswith("-"):  # an option this command does not have
            raise ToolsArgumentProblem(
                f"Unexpected {' '.join(command)!r}.",
                f"vllm-desk tools {args.tools_command} --help lists the options; a command goes after --.",
            )
    return extra, command


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise ToolsArgumentProblem(f"“{value}” is not {what}=VALUE.", f"Write it as {what}=VALUE.")
        out[name] = text
    return out


def _settings(args: argparse.Namespace) -> ToolsSettings:
    return ToolsSettings(AppPaths.resolve(args.data_dir).ensure().config)


def run_add(args: argparse.Namespace) -> int:
    extra, command = _late_options(args, edit=False)
    url = extra.url or args.url
    env = _pairs([*args.env, *extra.env], "KEY")
    secret_env = _pairs([*args.secret_env, *extra.secret_env], "KEY")
    headers = _pairs([*args.header, *extra.header], "NAME")
    if bool(url) == bool(command):
        raise ToolsArgumentProblem(
            "Give either a command (after --) or --url, not both and not neither.",
            "vllm-desk tools add-mcp NAME -- COMMAND [ARGS...]  or  vllm-desk tools add-mcp NAME --url URL",
        )
    for name in [n for n in env if looks_secret(n)]:
        secret_env[name] = env.pop(name)
    try:
        if url:
            if env or secret_env:
                raise ToolsArgumentProblem("--env is for stdio servers.", "Use --header for an HTTP server.")
            server = McpServer(name=args.name, transport="http", url=url)
        else:
            if headers:
                raise ToolsArgumentProblem("--header is for HTTP servers.", "Use --env for a stdio server.")
            server = McpServer(
                name=args.name, transport="stdio", command=command[0], args=command[1:], env=env
            )
    except ValueError as exc:  # pydantic's ValidationError
        raise ToolsArgumentProblem(
            f"The server cannot be added: {_first_error(exc)}.", "Fix the command."
        ) from exc
    _refuse_builtin_name(server.name, server.name, adding=True)
    settings = _settings(args)
    if any(s.name == server.name for s in settings.load().servers):  # said before the stdio warning
        raise _name_taken(server.name, f"change it with vllm-desk tools edit-mcp {server.name} …")
    if server.transport == "stdio":
        print(f"warning: {STDIO_WARNING}", file=sys.stderr)
    try:
        saved = settings.add(server, secret_env=secret_env, headers=headers)
    except ServerNameTaken as exc:  # added by another process meanwhile
        raise _name_taken(server.name, f"change it with vllm-desk tools edit-mcp {server.name} …") from exc
    kept = [*saved.secret_env, *saved.secret_headers]
    note = f" ({', '.join(kept)} in the keychain)" if kept else ""
    print(f"Added MCP server {saved.name}: {saved.describe()}{note}")
    return 0


def _name_taken(name: str, what_else: str) -> ToolsArgumentProblem:
    return ToolsArgumentProblem(
        f"There is already an MCP server named “{name}”; it was left as it is.",
        f"Pick another name, {what_else}, or remove it first: vllm-desk tools remove {name}.",
    )


def run_edit(args: argparse.Namespace) -> int:
    extra, command = _late_options(args, edit=True)
    paths = AppPaths.resolve(args.data_dir).ensure()
    settings = ToolsSettings(paths.config)
    old = settings.load().server(args.name)  # ServerNotFound says which names there are
    new_name = extra.new_name or args.new_name
    url = extra.url or args.url
    env = _pairs([*args.env, *extra.env], "KEY")
    secret_env = _pairs([*args.secret_env, *extra.secret_env], "KEY")
    headers = _pairs([*args.header, *extra.header], "NAME")
    unset = [*args.unset, *extra.unset]
    if not (new_name or url or command or env or secret_env or headers or unset):
        raise ToolsArgumentProblem(
            f"Nothing to change for {old.name}.",
            "Say what changes: --name NEW, --url URL, --env KEY=VALUE, --secret-env KEY=VALUE, "
            "--header NAME=VALUE, --unset NAME, or -- COMMAND [ARGS...].",
        )
    again = f"vllm-desk tools remove {old.name}, then vllm-desk tools add-mcp {old.name} …"
    if old.transport == "stdio" and (url or headers):
        raise ToolsArgumentProblem(
            f"{old.name} is a stdio server (it runs a command): --url and --header are for HTTP servers.",
            f"Give a new command after --, or make it an HTTP server: {again} --url URL.",
        )
    if old.transport == "http" and (command or env or secret_env):
        raise ToolsArgumentProblem(
            f"{old.name} is an HTTP server: a command and --env/--secret-env are for stdio servers.",
            f"Give a new --url, or make it a stdio server: {again} -- COMMAND.",
        )
    for name in [n for n in env if looks_secret(n)]:
        secret_env[name] = env.pop(name)
    known = [*old.env, *old.secret_env, *old.secret_headers]
    unknown = [n for n in unset if n not in known]
    if unknown:
        raise ToolsArgumentProblem(
            f"{old.name} has no environment variable or header named {', '.join(unknown)}.",
            f"It has: {', '.join(known)}." if known else "It has none to unset.",
        )
    plain = {k: v for k, v in old.env.items() if k not in unset and k not in secret_env}
    try:
        server = McpServer(
            name=new_name or old.name,
            transport=old.transport,
            command=command[0] if command else old.command,
            args=command[1:] if command else old.args,
            env={**plain, **env},
            url=url or old.url,
        )
    except ValueError as exc:  # pydantic's ValidationError
        raise ToolsArgumentProblem(
            f"The server cannot be changed: {_first_error(exc)}.", "Fix the command."
        ) from exc
    _refuse_builtin_name(old.name, server.name)
    if command and (server.command, server.args) != (old.command, old.args):
        print(f"warning: {STDIO_WARNING}", file=sys.stderr)  # another program: said as when it was added
    try:
        update = update_server(
            settings,
            paths.history_db,
            old.name,
            server,
            secret_env=secret_env,
            headers=headers,
            keep_env=[n for n in old.secret_env if n not in unset and n not in env and n not in secret_env],
            keep_headers=[n for n in old.secret_headers if n not in unset and n not in headers],
        )
    except ServerNameTaken as exc:
        raise _name_taken(server.name, "edit that one") from exc
    saved = update.server
    kept = [*saved.secret_env, *saved.secret_headers]
    note = f" ({', '.join(kept)} in the keychain)" if kept else ""
    print(f"Changed MCP server {saved.name}: {saved.describe()}{note}")
    if update.chats_problem is not None:
        print(f"error: {update.chats_problem}", file=sys.stderr)
        return 1
    if update.renamed:
        print(update.describe())
    return 0


def _refuse_builtin_name(old: str, new: str, *, adding: bool = False) -> None:
    """A built-in tool's name is refused before the stdio warning (the settings would refuse it too)."""
    clash = builtin_clash(new)
    if clash is None:
        return
    if new == old and not adding:  # from an older tools.toml: an edit keeps it only by a rename
        raise ToolsArgumentProblem(
            str(clash), f"Rename it as you change it: vllm-desk tools edit-mcp {old} --name NEW …"
        )
    raise ToolsArgumentProblem(str(clash), clash.hint)


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0].get("msg", exc)).removeprefix("Value error, ")
    return str(exc)


def run_remove(args: argparse.Namespace) -> int:
    removed = _settings(args).remove(args.name)
    print(f"Removed MCP server {removed.name}.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    return run_command(_list(args))  # --check starts the MCP servers: a signal stops them


async def _list(args: argparse.Namespace) -> int:
    from engine.tools.mcp import McpManager, ServerState

    paths = AppPaths.resolve(args.data_dir).ensure()
    settings = ToolsSettings(paths.config)
    config = settings.load()
    states: dict[str, ServerState] = {}
    if args.check:
        manager = McpManager(settings, logs=paths.logs)
        try:
            for server in config.servers:
                states[server.name] = await manager.start(server.name)
        finally:
            await manager.aclose()
    for server in config.servers:  # a built-in tool's name (an older file): never started, said why
        if unused_reason(server.name):
            states[server.name] = ServerState(server.name, "failed", reason=unused_reason(server.name))
    servers = []
    for server in config.servers:
        entry: dict[str, Any] = {
            "name": server.name,
            "transport": server.transport,
            "target": server.describe(),
            "keychain": [*server.secret_env, *server.secret_headers],
        }
        state = states.get(server.name)
        if state is not None:
            entry.update(state=state.status, tools=list(state.tools), reason=state.reason)
        servers.append(entry)
    builtin = [{"name": name, "description": DESCRIPTIONS[name]} for name in BUILTIN_NAMES]
    if args.json:
        print(printable_json({"builtin": builtin, "servers": servers}, indent=2))
        return 0
    print("Built-in tools:")
    for tool in builtin:
        print(f"  {tool['name']:<18} {tool['description']}")
    print("MCP servers:" if servers else "MCP servers: none (vllm-desk tools add-mcp NAME -- COMMAND ...)")
    for entry in servers:
        line = f"  {entry['name']:<18} {entry['transport']:<5} {printable(entry['target'], lines=False)}"
        if "state" in entry:
            state = states[entry["name"]]
            line += f"\n  {'':<18} {printable(state.describe(), lines=False)}"  # an MCP server's words
            if state.tools:
                line += ": " + ", ".join(printable(tool, lines=False) for tool in state.tools)
        print(line)
    return 0


# -- vllm-desk chat --tools ----------------------------------------------------------------------------


def add_chat_options(parser: argparse.ArgumentParser) -> None:
    """``--tools``, ``--tool-choice`` and ``--approve`` for ``vllm-desk chat``."""
    parser.add_argument(
        "--tools",
        metavar="NAME[,NAME...]",
        help="let the model call these built-in tools (" + ", ".join(BUILTIN_NAMES) + ") and MCP servers",
    )
    parser.add_argument(
        "--tool-choice", default="auto", metavar="auto|required|none|TOOL", help="default: auto"
    )
    parser.add_argument(
        "--approve",
        choices=("ask", "all", "deny"),
        default="ask",
        help="each tool call: ask on the terminal (default), run all, or deny all",
    )


def check_chat_options(args: argparse.Namespace) -> None:
    """Refuse what cannot work before any server starts."""
    if not args.tools:
        if args.tool_choice != "auto":
            raise ToolsArgumentProblem(
                "--tool-choice needs --tools.", "Name the tools: --tools NAME[,NAME...]."
            )
        return
    if args.mode == "completion":
        raise ToolsArgumentProblem("Tools need chat mode, not completion.", "Leave out --mode completion.")
    _approval(args.approve)
    paths = AppPaths.resolve(args.data_dir)
    known = {s.name for s in ToolsSettings(paths.config).load().servers}
    unknown = [n for n in tool_names(args) if n not in BUILTIN_NAMES and n not in known]
    if unknown:
        raise ToolsArgumentProblem(
            f"No built-in tool or MCP server is named {', '.join(unknown)}.",
            "vllm-desk tools list shows them; add a server with vllm-desk tools add-mcp.",
        )


def tool_names(args: argparse.Namespace) -> list[str]:
    return [n.strip() for n in str(args.tools or "").split(",") if n.strip()]


def _approval(mode: str) -> ApprovalPolicy:
    if mode == "all":
        return ApprovalPolicy.allow_all()
    if mode == "deny":
        return ApprovalPolicy.deny_all()
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise ToolsArgumentProblem(
            "--approve ask asks before each tool call, and there is no terminal to ask on.",
            "Run it in a terminal, or say --approve all (every call runs) or --approve deny.",
        )

    async def ask(request: CallRequest) -> Decision:
        arguments = json.dumps(dict(request.arguments), ensure_ascii=False)
        question = (
            f"\nRun {printable(request.tool, lines=False)} ({printable(request.server, lines=False)})"
            f" with {printable(arguments, lines=False)}?"
            " [o]nce / [a]lways this tool / [d]eny: "
        )
        while True:
            sys.stderr.write(question)
            sys.stderr.flush()
            answer = (await asyncio.to_thread(sys.stdin.readline)).strip().lower()
            if answer in ("o", "once", "y", "yes"):
                return "allow_once"
            if answer in ("a", "always"):
                return "allow_always"
            if answer in ("d", "deny", "n", "no", ""):
                return "deny"

    return ApprovalPolicy(ask)


def _print_event(event: LoopEvent, as_json: bool) -> None:
    call = event.call
    if as_json:
        data: dict[str, Any] = {"event": f"tool_{event.kind}" if call else event.kind}
        if call is not None:
            data.update(
                tool=call.tool, server=call.server, call_id=call.call_id, arguments=dict(call.arguments)
            )
            if call.raw_arguments:
                data["raw_arguments"] = call.raw_arguments
        if event.text:
            data["text"] = event.text
        if event.decision:
            data["decision"] = event.decision
        if event.kind == "result":
            data["error"] = event.error
        print(printable_json(data), flush=True)
        return
    if event.kind == "token":
        sys.stdout.write(printable(event.text))
        sys.stdout.flush()
    elif event.kind == "reasoning":
        sys.stderr.write(printable(event.text))
    elif event.kind == "call" and call is not None:
        arguments = call.raw_arguments or json.dumps(dict(call.arguments), ensure_ascii=False)
        print(
            f"\n→ {printable(call.tool, lines=False)} ({printable(call.server, lines=False)})"
            f" {printable(arguments, lines=False)}",
            file=sys.stderr,
            flush=True,
        )
    elif event.kind == "result":
        shown = printable(event.text, lines=False)
        shown = shown if len(shown) <= 400 else shown[:400] + f"… ({len(event.text):,} characters)"
        print(f"{'✗' if event.error else '←'} {shown}", file=sys.stderr, flush=True)
    elif event.kind == "notice":
        print(f"note: {printable(event.text)}", file=sys.stderr, flush=True)


async def _tools_for(
    names: list[str], paths: AppPaths, stack: AsyncExitStack, store: AsyncHistoryStore
) -> tuple[list[Tool], dict[str, str]]:
    from engine.tools.builtin import current_time_tool, history_search_tool
    from engine.tools.mcp import McpManager

    tools: list[Tool] = []
    settings = ToolsSettings(paths.config)
    known = {s.name for s in settings.load().servers}
    if "current_time" in names:
        tools.append(current_time_tool())
    if "search_history" in names:
        tools.append(history_search_tool(store))
    if SEARCH_DOCUMENTS in names:
        tools.append(_documents_tool(paths, stack))
    for name in [n for n in names if n in known and unused_reason(n)]:  # the built-in is used
        print(f"note: {unused_reason(name)}.", file=sys.stderr, flush=True)
    servers = [n for n in names if n in known and not unused_reason(n)]
    owners: dict[str, str] = {}
    if servers:
        manager = McpManager(settings, logs=paths.logs)
        stack.push_async_callback(manager.aclose)
        for name in servers:
            print(f"Starting MCP server {name} …", file=sys.stderr, flush=True)
            state = await manager.start(name)
            if state.status != "ready":
                raise ToolsArgumentProblem(
                    f"The MCP server {name} {printable(state.describe(), lines=False)}.", "Check the server."
                )
        mcp_tools, owners = manager.tools(servers)
        tools.extend(mcp_tools)
    return tools, owners


def _documents_tool(paths: AppPaths, stack: AsyncExitStack) -> Tool:
    # Keyword search over every collection: the command line starts no embedding server for a tool.
    from engine.documents.store import DocumentStore, documents_db
    from engine.tools.builtin import documents_search_tool

    store = DocumentStore(documents_db(paths))
    stack.callback(store.close)
    collections = [c.name for c in store.collections()]
    if not collections:
        raise ToolsArgumentProblem(
            "There are no document collections to search.", "Add one first: vllm-desk docs add NAME PATH."
        )
    return documents_search_tool(store, collections)


def _template_warning(endpoint: Endpoint, paths: AppPaths, choice: str) -> str:
    """The built-in model's template does not describe tools: say so before a turn that does not force one."""
    from engine.models.builtin import BUILTIN_MODEL, builtin_model_path
    from engine.tools.parsers import ToolSupport, choice_warning, tool_support

    if endpoint.model != BUILTIN_MODEL.served_name:
        return ""
    support = tool_support(endpoint.model, model_dir=builtin_model_path(paths))
    if support.template_has_tools is None:  # not prepared here (a server elsewhere): its template is known
        support = ToolSupport(support.parser, False, FORCED_ONLY_WARNING)
    return choice_warning(support, choice)


async def chat_with_tools(
    args: argparse.Namespace,
    paths: AppPaths,
    stack: AsyncExitStack,
    store: AsyncHistoryStore,
    endpoint: Endpoint,
    conversation_id: int,
    message: str,
) -> int:
    """One turn of ``vllm-desk chat --tools``: the tools' calls approved as ``--approve`` says, every message
    saved; exits 1 when the reply failed."""
    from engine.chat.generator import GeneratorPool
    from engine.chat.request import ChatTimeouts
    from engine.tools.session import ToolTurnOptions, run_tool_turn

    approval = _approval(args.approve)
    tools, owners = await _tools_for(tool_names(args), paths, stack, store)
    warning = _template_warning(endpoint, paths, args.tool_choice)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    pool = GeneratorPool(ChatTimeouts().for_endpoint)
    stack.push_async_callback(pool.aclose)
    async with pool.lease(endpoint) as generator:
        turn = await run_tool_turn(
            store,
            generator,
            endpoint,
            conversation_id,
            message,
            ToolTurnOptions(
                tools=tools,
                approval=approval,
                choice=args.tool_choice,
                servers=owners,
                on_event=lambda event: _print_event(event, args.json),
            ),
        )
    reply = turn.reply
    if args.json:
        done: dict[str, Any] = {"event": "finished", "conversation_id": conversation_id}
        done.update(reply_id=reply.id if reply else None, state=reply.state if reply else "failed")
        if turn.error is not None:
            done["error"] = turn.error.to_dict()
        print(json.dumps(done), flush=True)
    else:
        sys.stdout.write("\n")
        state = reply.state if reply is not None else "failed"
        print(
            f"(conversation {conversation_id}, reply {reply.id if reply else '-'}, {state})", file=sys.stderr
        )
        if turn.error is not None:
            print(f"error: {printable(str(turn.error))}", file=sys.stderr)  # may quote the server
            if turn.error.fix is not None and turn.error.fix.hint:
                print(f"fix: {printable(turn.error.fix.hint)}", file=sys.stderr)
    return 0 if turn.error is None else 1
