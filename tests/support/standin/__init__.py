"""A small OpenAI-compatible stand-in *process* that behaves like ``vllm serve``, for faults and speed.

It never replaces the real-vLLM tests; it makes every diagnosis and every fault quick to reproduce.

Run it as ``python -m tests.support.standin [serve MODEL] --port 0 [options]`` from the repository root (or
use :mod:`tests.support.standin.launch`). It prints vLLM's real startup lines (stdout: vLLM's logger, ending
with ``Starting vLLM server on http://127.0.0.1:PORT``; stderr: weight-loading bars and uvicorn's
``Application startup complete.``) and then answers ``/health``, ``/ping``, ``/version``, ``/v1/models``
(with ``max_model_len``), ``/metrics`` (``vllm:`` names), ``/tokenize``, ``/v1/chat/completions`` and
``/v1/completions`` (streamed as vLLM does: a first chunk with the role and empty content, one chunk per
token, ``finish_reason`` on the last one, a usage chunk with ``choices: []`` when
``stream_options.include_usage``, then ``data: [DONE]``). ``/v1/*`` needs ``Authorization: Bearer
$VLLM_API_KEY`` when that env var (or ``--api-key``) is set (401 otherwise). A wrong model name gives vLLM's
404. Connections are kept (HTTP/1.1) and, as uvicorn under vLLM does, one left idle for
``$VLLM_HTTP_TIMEOUT_KEEP_ALIVE`` seconds (default 5; fractions allowed here) is closed by the server.

Options of ``vllm serve`` that it understands: ``MODEL`` (positional) or ``--model``,
``--served-model-name``, ``--host`` (127.0.0.1), ``--port`` (0 picks a free one; a taken port prints vLLM's
``OSError: [Errno 98] Address already in use`` and exits 1), ``--max-model-len`` (``auto`` = 2048),
``--api-key``. Other vLLM options are accepted and ignored.

Stand-in options:

``--tokens-per-second N``   pace the tokens (0, the default: as fast as possible)
``--reply TEXT``            the answer (default "The capital of France is Paris."), one token per word
``--reply-tokens N``        instead, a deterministic answer of N tokens ("alpha beta gamma ...")
``--reasoning TEXT``        stream ``delta.reasoning`` tokens before the answer (chat only)
``--reasoning-field F``     ``reasoning`` (vLLM 0.33) or ``reasoning_content`` (older servers)
``--startup-delay S``       spread the startup phases over S seconds
``--download``              also print weight-download progress bars at startup
``--fail-with KIND``        print vLLM's real error lines for KIND on stderr and exit 1; KIND is one of
                            port-in-use, kv-cache-too-small, no-cache-memory, max-model-len-too-long,
                            free-memory-below-utilization, weights-do-not-fit, invalid-repo, no-network,
                            unsupported-architecture, generic
``--stall-after N``         after N tokens (counted over all requests) the stream stays open and silent
``--crash-after N``         after N tokens the server process dies at once (``os._exit``), mid-stream
``--engine-error-after N``  after N reply tokens, stream vLLM's error event (EngineCore died) and end
``--fork-child``            spawn a child named ``VLLM::EngineCore`` (argv[0] and the kernel's comm) that
                            outlives the leader when only the leader is killed (it exits by itself after
                            ``--child-lifetime`` seconds, default 120: a failed test cannot leave it forever)
``--no-chat-template``      chat requests fail with vLLM's HTTP 400 about the default chat template
``--ignore-sigterm``        ignore SIGTERM (to test the SIGKILL after the grace period)
``--version-string V``      what ``/version`` reports (default 0.32.0)
``--fault KIND``            a hostile server for chat/completion requests; KIND is one of
                            http-500 (500 with a JSON body), html-error (502 with an nginx HTML page),
                            close-stream (the stream ends cleanly without finish_reason or [DONE]),
                            drop-connection (the socket closes mid-chunk), keepalive (": keep-alive" comments
                            forever, no more text), malformed-sse (a data line that is not JSON),
                            json-not-stream (stream=true answered with one JSON body)
``--fault-after N``         reply tokens streamed before the fault (default 2)
``--tool-calls MODE``       requests that offer tools are answered with streamed tool calls until a tool
                            result comes back; MODE: well-formed, malformed, string-args, parallel, unknown,
                            loop, truncated, strict-only (see :mod:`tests.support.standin.tool_calls`);
                            ``--tool-name``, ``--tool-arguments JSON`` choose the call
``--refuse-strict``         a chat request with a ``strict: true`` tool is refused as vLLM refuses a schema
                            its grammar cannot take: HTTP 400, or streamed, a 200 whose first event is the
                            error
``--check-tool-parser``     tool choices are refused as vLLM refuses them when it was not started with
                            ``--enable-auto-tool-choice --tool-call-parser P`` (auto needs both; required
                            or a named tool needs the parser): HTTP 400 with vLLM's words
"""
