"""A profile's environment variables: checked names, no secrets, saved and read back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.server.profiles import ServerProfile


def test_environment_is_kept_and_round_trips() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "1,0", "NCCL_P2P_DISABLE": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    profile = ServerProfile(name="tp2", source="hf_repo", model="org/m", env=env)
    assert ServerProfile.model_validate(profile.to_dict()).env == env
    assert ServerProfile(name="plain").env == {}


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("1BAD", "not an environment variable name"),
        ("A-B", "not an environment variable name"),
        ("", "not an environment variable name"),
        ("VLLM_API_KEY", "key mode"),
        ("HF_TOKEN", "keychain"),
        ("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "keeps its idle connections"),
    ],
)
def test_bad_or_managed_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        ServerProfile(name="p", env={name: "x"})
