"""The stand-in process behaves like `vllm serve` where the app depends on it (it is a test tool; test it)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import httpx
import psutil
import pytest

from tests.support.standin import logs
from tests.support.standin.launch import REPO_ROOT, running_standin, standin_command, standin_env


def sse_events(resp: httpx.Response) -> list[dict[str, object] | str]:
    events: list[dict[str, object] | str] = []
    for line in resp.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_answers_health_version_models_metrics_tokenize() -> None:
    with running_standin("--max-model-len", "4096", model="m1") as srv:
        assert httpx.get(f"{srv.root_url}/health").status_code == 200
        assert httpx.get(f"{srv.root_url}/version").json() == {"version": "0.32.0"}
        models = httpx.get(f"{srv.base_url}/models").json()
        assert models["data"][0]["id"] == "m1"
        assert models["data"][0]["max_model_len"] == 4096
        metrics = httpx.get(f"{srv.root_url}/metrics").text
        assert 'vllm:num_requests_running{engine="0",model_name="m1"} 0.0' in metrics
        assert "vllm:generation_tokens_total" in metrics
        tok = httpx.post(f"{srv.root_url}/tokenize", json={"prompt": "one two three"}).json()
        assert tok["count"] == 3
        assert tok["max_model_len"] == 4096
    assert any("Application startup complete." in line for line in srv.lines)


def test_chat_stream_is_shaped_like_vllm() -> None:
    with running_standin("--reply", "Hello big world") as srv:
        body = {
            "model": "standin",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        with httpx.stream("POST", f"{srv.base_url}/chat/completions", json=body) as resp:
            events = sse_events(resp)
    first, *tokens, usage, done = events
    assert isinstance(first, dict)
    assert first["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    texts = [e["choices"][0]["delta"]["content"] for e in tokens if isinstance(e, dict)]  # type: ignore[index]
    assert texts == ["Hello", " big", " world"]
    assert [e["choices"][0]["finish_reason"] for e in tokens if isinstance(e, dict)] == [None, None, "stop"]  # type: ignore[index]
    assert isinstance(usage, dict)
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 1, "total_tokens": 4, "completion_tokens": 3}
    assert done == "[DONE]"


def test_reasoning_streams_before_the_answer_in_either_field() -> None:
    for field in ("reasoning", "reasoning_content"):
        with running_standin("--reasoning", "think hard", "--reasoning-field", field, "--reply", "ok") as srv:
            body = {"model": "standin", "messages": [{"role": "user", "content": "q"}], "stream": True}
            with httpx.stream("POST", f"{srv.base_url}/chat/completions", json=body) as resp:
                deltas = [e["choices"][0]["delta"] for e in sse_events(resp) if isinstance(e, dict)]  # type: ignore[index]
        assert deltas[1:] == [{field: "think"}, {field: " hard"}, {"content": "ok"}]


def test_whole_answer_max_tokens_and_completions() -> None:
    with running_standin("--reply-tokens", "5") as srv:
        chat = httpx.post(
            f"{srv.base_url}/chat/completions",
            json={"model": "standin", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2},
        ).json()
        assert chat["choices"][0]["message"]["content"] == "alpha beta"
        assert chat["choices"][0]["finish_reason"] == "length"
        comp = httpx.post(f"{srv.base_url}/completions", json={"model": "standin", "prompt": "x"}).json()
        assert comp["choices"][0]["text"] == "alpha beta gamma delta epsilon"
        wrong = httpx.post(f"{srv.base_url}/completions", json={"model": "nope", "prompt": "x"})
        assert wrong.status_code == 404
        assert wrong.json()["error"]["message"] == "The model `nope` does not exist."


def test_api_key_guards_v1_only() -> None:
    with running_standin(api_key="s3cret") as srv:
        assert httpx.get(f"{srv.base_url}/models").status_code == 401
        bad = {"Authorization": "Bearer wrong"}
        assert httpx.get(f"{srv.base_url}/models", headers=bad).status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert httpx.get(f"{srv.base_url}/models", headers=good).status_code == 200
        assert httpx.get(f"{srv.root_url}/health").status_code == 200


def test_no_chat_template_gives_vllms_400() -> None:
    with running_standin("--no-chat-template") as srv:
        resp = httpx.post(
            f"{srv.base_url}/chat/completions",
            json={"model": "standin", "messages": [{"role": "user", "content": "x"}]},
        )
    assert resp.status_code == 400
    assert "default chat template is no longer allowed" in resp.json()["error"]["message"]


def run_to_exit(*options: str) -> subprocess.CompletedProcess[str]:
    """Run the stand-in in the foreground (for the ways it exits by itself) and capture what it prints."""
    return subprocess.run(
        standin_command(*options),
        cwd=REPO_ROOT,
        env=standin_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("kind", logs.FAILURE_KINDS)
def test_fail_with_prints_the_error_and_exits_1(kind: str) -> None:
    done = run_to_exit("serve", "org/model", "--port", "0", "--fail-with", kind)
    assert done.returncode == 1
    expected = logs.failure_lines(kind, "org/model", 2048)
    assert all(line in done.stderr for line in expected if "pid=" not in line)
    assert "Starting vLLM server" not in done.stdout


def test_taken_port_prints_address_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = run_to_exit("serve", "m", "--port", str(port))
    assert done.returncode == 1
    assert "OSError: [Errno 98] Address already in use" in done.stderr


def test_crash_after_kills_the_server_mid_stream() -> None:
    with running_standin("--reply-tokens", "50", "--crash-after", "3") as srv:
        body = {"model": "standin", "messages": [{"role": "user", "content": "x"}], "stream": True}
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream("POST", f"{srv.base_url}/chat/completions", json=body) as resp,
        ):
            sse_events(resp)
        assert srv.proc.wait(10) == 139


def test_stall_after_keeps_the_stream_open_and_silent() -> None:
    with running_standin("--reply-tokens", "50", "--stall-after", "2") as srv:
        body = {"model": "standin", "messages": [{"role": "user", "content": "x"}], "stream": True}
        got: list[str] = []

        def read() -> None:
            with httpx.stream("POST", f"{srv.base_url}/chat/completions", json=body, timeout=1.0) as resp:
                got.extend(line for line in resp.iter_lines() if line.startswith("data: "))

        with pytest.raises(httpx.ReadTimeout):
            read()
        assert len(got) == 3  # role chunk + 2 tokens


def test_fork_child_outlives_a_killed_leader() -> None:
    with running_standin("--fork-child") as srv:
        leader = psutil.Process(srv.proc.pid)
        children = leader.children()
        assert len(children) == 1
        child = children[0]
        assert child.cmdline()[0] == "VLLM::EngineCore"
        deadline = time.monotonic() + 5
        while not child.name().startswith("VLLM::") and time.monotonic() < deadline:
            time.sleep(0.05)  # the child renames itself (prctl) right after it starts
        assert child.name().startswith("VLLM::EngineCor")  # comm keeps 15 characters, as for real vLLM
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(10)
        time.sleep(0.3)
        assert child.is_running()
        assert os.getpgid(child.pid) == srv.proc.pid
    # running_standin's stop() signals the whole group: the orphan is gone too.
    psutil.wait_procs([child], timeout=5)
    assert not child.is_running()
