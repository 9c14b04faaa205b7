"""What can go wrong with a server: typed problems, each with a human sentence and a one-click fix.

:func:`engine.diagnosis.rules.diagnose` reads the lines of a failed start (or of a server that died) and
returns the most specific :class:`ServerProblem`; :func:`engine.diagnosis.rules.diagnose_response` does the
same for an HTTP error a running server gave (the missing chat template). GPU problems:
:mod:`engine.diagnosis.gpu`.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.errors import DeskError, Fix


class ServerProblem(DeskError):
    """Base of everything that keeps a server from starting or running."""

    title = "The server could not start"


class PortInUse(ServerProblem):
    title = "The port is taken"

    def __init__(self, port: int | None, *, details: str = "") -> None:
        where = f"Port {port}" if port else "The port"
        super().__init__(
            f"{where} is already used by another program, so vLLM cannot listen on it.",
            fix=Fix(
                "pick_free_port", "Use a free port", "Set the port to 0 (pick a free one) or use --port N."
            ),
            details=details,
        )
        self.port = port


class GpuMemoryBusy(ServerProblem):
    title = "Not enough free GPU memory"

    def __init__(self, free_gib: float, total_gib: float, requested: float, *, details: str = "") -> None:
        # Leave a small margin below what is free now; never suggest less than 5 %.
        suggested = max(0.05, round(free_gib / total_gib - 0.02, 2)) if total_gib else 0.5
        super().__init__(
            f"Only {free_gib:.1f} of {total_gib:.1f} GiB of GPU memory are free, but the profile asks "
            f"vLLM to use "
            f"{requested:.0%} of it. Another program is probably using the GPU.",
            fix=Fix(
                "lower_gpu_memory_utilization",
                f"Use {suggested:.0%} of the GPU",
                f"Lower gpu_memory_utilization to {suggested:g}, or stop the other program on the GPU.",
                {"gpu_memory_utilization": suggested},
            ),
            details=details,
        )
        self.free_gib, self.total_gib, self.requested, self.suggested = (
            free_gib,
            total_gib,
            requested,
            suggested,
        )


class KvCacheTooSmall(ServerProblem):
    title = "The context length does not fit in memory"

    def __init__(
        self, max_len: int, max_len_fits: int, needed_gib: float, available_gib: float, **kw: str
    ) -> None:
        super().__init__(
            f"A full {max_len:,}-token context needs {needed_gib:g} GiB of KV cache, but only "
            f"{available_gib:g} GiB "
            f"are available. Up to {max_len_fits:,} tokens fit.",
            fix=Fix(
                "set_option",
                f"Retry with {max_len_fits:,} tokens",
                f"Set max_model_len to {max_len_fits} (or give the KV cache more memory).",
                {"max_model_len": max_len_fits},
            ),
            details=kw.get("details", ""),
        )
        self.max_len, self.max_len_fits = max_len, max_len_fits
        self.needed_gib, self.available_gib = needed_gib, available_gib


class NoCacheMemory(ServerProblem):
    title = "No memory is left for the KV cache"

    def __init__(self, *, details: str = "") -> None:
        super().__init__(
            "The model's weights leave no memory for the KV cache, so vLLM cannot serve any request.",
            fix=Fix(
                "raise_gpu_memory_utilization",
                "Give vLLM more memory",
                "Raise gpu_memory_utilization (GPU) or VLLM_CPU_KVCACHE_SPACE (CPU), or pick a "
                "smaller model.",
            ),
            details=details,
        )


class MaxModelLenTooLong(ServerProblem):
    title = "The context length is above the model's limit"

    def __init__(self, requested: int, limit: int | None, *, details: str = "") -> None:
        fix = (
            Fix(
                "set_option",
                f"Use {limit:,} tokens",
                f"Set max_model_len to {limit} (or 'auto').",
                {"max_model_len": limit},
            )
            if limit
            else Fix("set_option", "Use 'auto'", "Set max_model_len to 'auto'.", {"max_model_len": "auto"})
        )
        most = f" (it supports at most {limit:,})" if limit else ""
        super().__init__(
            f"The profile asks for a {requested:,}-token context, more than the model was trained for{most}.",
            fix=fix,
            details=details,
        )
        self.requested, self.limit = requested, limit


class WeightsDoNotFit(ServerProblem):
    title = "The model is too large for the GPU"

    def __init__(self, *, details: str = "") -> None:
        super().__init__(
            "The model's weights do not fit in the GPU memory vLLM may use.",
            fix=Fix(
                "choose_quantized_model",
                "Use a quantized model or more GPUs",
                "Pick a quantized variant (AWQ/GPTQ/FP8), raise tensor_parallel_size, or lower "
                "gpu_memory_utilization if another program holds memory.",
            ),
            details=details,
        )


class ModelNotFound(ServerProblem):
    title = "The model was not found"

    def __init__(self, model: str, *, details: str = "") -> None:
        super().__init__(
            f"“{model}” is neither a Hugging Face repository id nor a folder with a model (config.json).",
            fix=Fix("choose_model", "Choose another model", "Check the repo id (owner/name) or the folder."),
            details=details,
        )
        self.model = model


class NoNetwork(ServerProblem):
    title = "The model cannot be downloaded"

    def __init__(self, *, details: str = "") -> None:
        super().__init__(
            "vLLM could not reach Hugging Face to download the model, and it is not in the local cache.",
            fix=Fix("retry", "Try again", "Check the network connection (or a proxy), then start again."),
            details=details,
        )


class GatedModel(ServerProblem):
    title = "The model needs a Hugging Face login"

    def __init__(self, *, details: str = "") -> None:
        super().__init__(
            "This model is gated on Hugging Face: it needs an access token from an account that "
            "accepted its terms.",
            fix=Fix("set_hf_token", "Enter a Hugging Face token", "Save a token with access to the model."),
            details=details,
        )


class UnsupportedArchitecture(ServerProblem):
    title = "vLLM does not support this model"

    def __init__(self, architectures: str, *, details: str = "") -> None:
        super().__init__(
            f"This vLLM cannot run the model's architecture ({architectures}).",
            fix=Fix("choose_model", "Choose another model", "Pick a supported model, or update vLLM."),
            details=details,
        )
        self.architectures = architectures


class ModelConfigUnrecognized(ServerProblem):
    title = "The model folder's config.json names no model"

    def __init__(self, where: str, config: str = "config.json", *, details: str = "") -> None:
        super().__init__(
            f"The model at {where} cannot be loaded: its {config} has no `model_type`, so neither vLLM nor "
            "transformers can tell what kind of model it is.",
            fix=Fix(
                "choose_model",
                "Edit the profile",
                f"Pick another model folder, or give its {config} the model_type it was saved with.",
            ),
            details=details,
        )
        self.where = where


class ChatTemplateMissing(ServerProblem):
    title = "The model has no chat template"

    def __init__(self, *, details: str = "") -> None:
        super().__init__(
            "The model has no chat template, so the server refuses chat requests.",
            fix=Fix(
                "use_completion_mode",
                "Use completion mode",
                "Use plain text completion, or set a chat template (chat_template) in the profile.",
            ),
            details=details,
        )


class ServerFailed(ServerProblem):
    """The generic fallback: quotes vLLM's root-cause lines."""

    def __init__(self, root_cause: str, exit_code: int | None, *, details: str = "") -> None:
        how = describe_exit(exit_code)
        cause = f": {root_cause}" if root_cause else "."
        super().__init__(
            f"vLLM stopped ({how}){cause}",
            fix=Fix("show_log", "Show the log", "See the server log for the full output."),
            details=details,
        )
        self.root_cause, self.exit_code = root_cause, exit_code


class StartTimedOut(ServerProblem):
    title = "The server took too long to start"

    def __init__(self, seconds: float, *, details: str = "", hint: str = "") -> None:
        # Downloading does not count against the limit (engine/server/watchdog.py); ``hint``: what the last
        # silence probably was (an NCCL hang, kernels being built).
        super().__init__(
            f"vLLM was not ready after {seconds:.0f} seconds (downloads not counted), so the start was "
            f"abandoned.{' ' + hint if hint else ''}",
            fix=Fix("show_log", "Show the log", "See the server log for its last lines."),
            details=details,
        )
        self.hint = hint


class StartCancelled(ServerProblem):
    title = "The start was cancelled"

    def __init__(self) -> None:
        super().__init__("The server was stopped before it was ready.")


class ServerDied(ServerProblem):
    title = "The server stopped unexpectedly"

    def __init__(self, what: str, *, details: str = "") -> None:
        super().__init__(
            f"{what}; the rest of the server was stopped.",
            fix=Fix("restart_server", "Start it again", "Start the server again; see the log for the cause."),
            details=details,
        )


class ProcessesLeft(ServerProblem):
    title = "Some server processes could not be stopped"

    def __init__(self, pids: Sequence[int]) -> None:
        super().__init__(
            f"Processes {', '.join(map(str, pids))} of the server survived SIGKILL (stuck in the kernel?).",
            fix=Fix(
                "show_processes", "Show the processes", f"Check them with: ps -o pid,stat,cmd -p {pids[0]}"
            ),
        )
        self.pids = tuple(pids)


def describe_exit(code: int | None) -> str:
    """``exit code 1`` or ``killed by SIGKILL`` (Popen's negative codes are signals)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            import signal

            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
