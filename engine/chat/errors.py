"""What can go wrong in a chat turn, in words, and the mapping from the OpenAI client's exceptions to them.

Every problem keeps the partial reply (the chat engine stores it as ``failed``) and the turn can be retried.
"""

from __future__ import annotations

import json
import logging
import re
import sys

from engine.errors import DeskError, Fix

log = logging.getLogger(__name__)

_RETRY = Fix(action="retry_turn", label="Try again", hint="Send the message again (vllm-desk chat ...).")


class ChatError(DeskError):
    """Base of the problems of one chat turn."""

    title = "The reply failed"


class NoServer(ChatError):
    title = "No server is running"

    def __init__(self) -> None:
        super().__init__(
            "There is no model server to talk to yet.",
            fix=Fix(action="start_server", label="Start the server", hint="Start a server profile first."),
        )


class ServerUnreachable(ChatError):
    title = "The server does not answer"

    def __init__(self, base_url: str, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"Nothing answers at {base_url}{why}. The server may have stopped.",
            fix=Fix(
                action="start_server", label="Start the server", hint="Start the server, then try again."
            ),
        )
        self.base_url = base_url


class ModelNotFound(ChatError):
    title = "The server does not have this model"

    def __init__(self, model: str, server_message: str = "") -> None:
        super().__init__(
            f"The server does not serve a model called {model!r}.",
            fix=Fix(
                action="choose_model",
                label="Choose a model",
                hint="Pass the name the server lists at /v1/models (--model NAME).",
            ),
            details=server_message,
        )
        self.model = model


class ContextTooLong(ChatError):
    title = "The conversation is too long for the model"

    def __init__(
        self, server_message: str = "", *, used: int | None = None, limit: int | None = None
    ) -> None:
        numbers = f" ({used} tokens of {limit})" if used is not None and limit is not None else ""
        super().__init__(
            f"The conversation no longer fits in the model's context{numbers}.",
            fix=Fix(
                action="drop_oldest_turns",
                label="Leave out the oldest turns",
                hint="Start a new conversation, or send with fewer earlier turns.",
            ),
            details=server_message,
        )
        self.used = used
        self.limit = limit


class NoChatTemplate(ChatError):
    title = "This model has no chat template"

    def __init__(self, server_message: str = "") -> None:
        super().__init__(
            "This model is a base model without a chat template; it can only continue text.",
            fix=Fix(
                action="set_mode_completion",
                label="Use completion mode",
                hint="Switch the conversation to completion mode.",
            ),
            details=server_message,
        )


class NoToolParser(ChatError):
    title = "The server was started without tool calling"

    def __init__(self, server_message: str = "") -> None:
        super().__init__(
            "The model server was started without a tool-call parser, so it refuses to let the model call "
            "tools. Turn tool calling on in the server's profile: set its tool-call parser (hermes for "
            "Qwen2.5/Qwen3 and SmolLM2, llama3_json for Llama 3.x, mistral for Mistral, ...) and restart "
            "the server (vLLM: --enable-auto-tool-choice --tool-call-parser P), or set the tool choice to "
            "none.",
            fix=Fix(
                action="edit_profile",
                label="Edit the profile",
                hint="Set the profile's tool_call_parser (e.g. hermes), or pass --tool-choice none.",
            ),
            details=server_message,
        )


class AuthenticationFailed(ChatError):
    title = "The server refused the API key"

    def __init__(self, server_message: str = "") -> None:
        super().__init__(
            "The server refused the API key.",
            fix=Fix(
                action="edit_api_key", label="Change the key", hint="Pass the right key (--api-key-env VAR)."
            ),
            details=server_message,
        )


class RequestRejected(ChatError):
    title = "The server refused the request"

    def __init__(self, status: int, server_message: str) -> None:
        super().__init__(
            f"The server refused the request (HTTP {status}): {server_message}",
            fix=_RETRY,
            details=server_message,
        )
        self.status = status


class ChatUnavailable(ChatError):
    title = "The chat library could not be loaded"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The chat library (Haystack) could not be loaded, so nothing was sent: {reason}. "
            "Send again to retry; if it keeps failing, reinstall vLLM Desk.",
            fix=_RETRY,
        )


class ConnectionLost(ChatError):
    title = "The connection to the server was lost"

    def __init__(self, reason: str = "") -> None:
        super().__init__(
            "The connection to the server broke in the middle of the reply; what arrived is kept.",
            fix=_RETRY,
            details=reason,
        )


class ReplyUnreadable(ChatError):
    """The server's stream held data that is not JSON (a broken proxy, a server not OpenAI-compatible)."""

    title = "The server's reply could not be read"

    def __init__(self, reason: str = "") -> None:
        super().__init__(
            "The server sent part of the reply in a form that is not an OpenAI-compatible stream (data that "
            "is not JSON); what arrived is kept.",
            fix=_RETRY,
            details=reason,
        )


class InternalFailure(ChatError):
    """An exception of vLLM Desk's own code (or a library's) stopped the reply: a bug, not the network."""

    title = "An internal error stopped the reply"

    def __init__(self, kind: str, reason: str = "") -> None:
        said = f": {reason}" if reason else ""
        super().__init__(
            f"vLLM Desk hit an internal error ({kind}{said}) and stopped the reply; what arrived is kept. "
            "This is not a network problem; the details were written to the log.",
            fix=_RETRY,
            details=f"{kind}{said}",
        )
        self.kind = kind


class EngineDied(ChatError):
    title = "The model engine stopped"

    def __init__(self, server_message: str = "") -> None:
        super().__init__(
            "The server's model engine failed in the middle of the reply; what arrived is kept.",
            fix=Fix(
                action="restart_server", label="Restart the server", hint="Restart the server, then retry."
            ),
            details=server_message,
        )


class ReplyStalled(ChatError):
    title = "The server stopped sending"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The server sent no reply text for {seconds:g} s; the reply was abandoned and what arrived is "
            "kept.",
            fix=_RETRY,
        )
        self.seconds = seconds


class ReplyIncomplete(ChatError):
    """The stream ended without the server saying the reply was finished (no ``finish_reason``)."""

    title = "The reply was cut off"

    def __init__(self, streamed: bool = True) -> None:
        if streamed:
            text = (
                "The server ended the reply without saying it was finished (the connection closed early); "
                "what arrived is kept."
            )
        else:
            text = (
                "The server's answer was not a streamed reply (it may not be an OpenAI-compatible server, or "
                "a proxy changed the answer); nothing of a reply arrived."
            )
        super().__init__(text, fix=_RETRY)
        self.streamed = streamed


class ServerFailed(ChatError):
    """An HTTP 5xx that is not the model engine dying: the server's own words are the message."""

    title = "The server failed"

    def __init__(self, status: int, server_message: str) -> None:
        said = f": {server_message}" if server_message else ""
        super().__init__(
            f"The server could not answer (HTTP {status}){said}",
            fix=_RETRY,
            details=server_message,
        )
        self.status = status


class HistoryWriteFailed(ChatError):
    title = "The reply could not be saved"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The reply could not be saved in the history ({reason}).",
            fix=Fix(
                action="choose_data_dir",
                label="Choose another folder",
                hint="Free some disk space or move the app's data with --data-dir DIR.",
            ),
        )


_CONTEXT_WORDS = re.compile(r"maximum context length|input tokens|context length|too long", re.IGNORECASE)
_TEMPLATE_WORDS = re.compile(r"chat template", re.IGNORECASE)
_TOOL_PARSER_WORDS = re.compile(r"--tool-call-parser|--enable-auto-tool-choice", re.IGNORECASE)
_ENGINE_WORDS = re.compile(r"EngineCore|engine (?:core|loop|is dead|died)|EngineDeadError", re.IGNORECASE)
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_MAX_SERVER_MESSAGE = 500


def from_openai_error(
    exc: BaseException, *, base_url: str, model: str, read_timeout: float, started: bool
) -> ChatError:
    """Translate an exception of a turn into its problem; ``started`` says whether any token had arrived.

    Haystack's wrapping (``ComponentError`` and the like, raised *from* the real exception) is looked through.
    Only transport failures (the connection refused, reset or cut mid-reply) read as the connection; any
    other exception is vLLM Desk's own failure (:class:`InternalFailure`), logged with its traceback."""
    import openai

    exc = _unwrapped(exc)
    base_url = redact_url(base_url)
    message = redact_url(_server_message(exc))
    if isinstance(exc, openai.APITimeoutError):
        return ReplyStalled(read_timeout) if started else ServerUnreachable(base_url, "timed out")
    if isinstance(exc, openai.APIConnectionError):
        return (
            ConnectionLost(redact_url(str(exc.__cause__ or exc)))
            if started
            else ServerUnreachable(base_url, "refused")
        )
    if isinstance(exc, openai.NotFoundError):
        return ModelNotFound(model, message)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthenticationFailed(message)
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc.status_code, model, message)
    if isinstance(exc, openai.APIError):
        # A mid-stream error event, e.g. vLLM's "EngineCore encountered an issue".
        return EngineDied(message)
    if _is_transport_failure(exc):
        return ConnectionLost(redact_url(f"{type(exc).__name__}: {exc}"))
    if isinstance(exc, json.JSONDecodeError):  # the stream's data (openai decodes each event), not our code
        return ReplyUnreadable(redact_url(_shorten(f"{exc}: {exc.doc}")))
    log.error("a chat turn failed on an internal error", exc_info=(type(exc), exc, exc.__traceback__))
    return InternalFailure(type(exc).__name__, redact_url(_shorten(str(exc))))


def _from_status(status: int, model: str, message: str) -> ChatError:
    """The problem an HTTP error answer says, in the server's own words (``message``)."""
    if status == 400 and _TOOL_PARSER_WORDS.search(message):
        return NoToolParser(message)
    if status == 400 and _TEMPLATE_WORDS.search(message):
        return NoChatTemplate(message)
    if status == 400 and _CONTEXT_WORDS.search(message):
        return ContextTooLong(message)
    if status >= 500:
        # vLLM's words when its engine is gone; any other 5xx keeps the server's own message.
        if _ENGINE_WORDS.search(message):
            return EngineDied(message)
        return ServerFailed(status, message)
    return RequestRejected(status, message)


def _unwrapped(exc: BaseException) -> BaseException:
    """``exc`` without Haystack's wrappers: a component's or pipeline's error raised from another one."""
    haystack_errors = sys.modules.get("haystack.core.errors")  # not loaded: nothing can be wrapped by it
    if haystack_errors is None:
        return exc
    wrappers = (
        haystack_errors.ComponentError,
        haystack_errors.PipelineError,
        haystack_errors.PipelineRuntimeError,
    )
    seen = {id(exc)}
    while isinstance(exc, wrappers) and exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def _is_transport_failure(exc: BaseException) -> bool:
    """The connection itself failed (refused, reset, closed mid-reply, a read that broke or timed out)."""
    import httpcore
    import httpx

    return isinstance(
        exc,
        httpx.TransportError
        | httpcore.NetworkError
        | httpcore.ProtocolError
        | httpcore.TimeoutException
        | ConnectionError,
    )


_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)


def redact_url(text: str) -> str:
    """``text`` with credentials in URLs (``http://user:pass@host``) replaced by ``***``, so they never reach
    the history's error text or the screen."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def _server_message(exc: BaseException) -> str:
    """The server's own explanation: the JSON error's message, or an HTML error page as its text, short."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return _shorten(str(inner["message"]))
        if isinstance(body.get("message"), str):
            return _shorten(str(body["message"]))
        if isinstance(inner, str):
            return _shorten(inner)
    if isinstance(body, str) and body.strip():
        return _shorten(body)
    return _shorten(str(getattr(exc, "message", "") or exc))


def _shorten(text: str) -> str:
    if "<" in text and ">" in text:
        text = _TAGS.sub(" ", text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_SERVER_MESSAGE else text[: _MAX_SERVER_MESSAGE - 1] + "…"
