"""A profile made or changed in Preferences gets tool calling from its model's family, as `vllm-desk serve
--model` does: the family's tool-call parser, said on the page with the warning when the chat template does
not describe tools or no parser is known; the parser stays the user's to change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop.preferences import PreferencesDialog
from engine.paths import AppPaths
from engine.secrets import SecretStore
from engine.server.profiles import ServerProfile
from engine.settings.store import Settings, SettingsStore
from tests.desktop.preferences.test_preferences_pages import type_into
from tests.support.hf_cache import SMOLLM2_CONFIG
from tests.support.memory_keyring import MemoryKeyring

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]

TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n# Tools\n{% for tool in tools %}{{ tool | tojson }}{% endfor %}"
    "<|im_end|>\n{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% endfor %}"
)
PLAIN_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


def model_folder(root: Path, name: str, architecture: str, template: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**SMOLLM2_CONFIG, "architectures": [architecture]}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    return folder


def make_dialog(qtbot, app_paths: AppPaths) -> PreferencesDialog:  # type: ignore[no-untyped-def]
    dialog = PreferencesDialog(
        SettingsStore.open(app_paths.settings_file),
        paths=app_paths,
        gpus=[],
        secrets=SecretStore(MemoryKeyring()),
    )
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def saved_profile(app_paths: AppPaths, name: str) -> ServerProfile:
    profile = SettingsStore.open(app_paths.settings_file).settings.profile(name)
    assert profile is not None
    return profile


def test_use_for_profile_turns_tool_calling_on_with_the_familys_parser(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths, tmp_path: Path
) -> None:
    SettingsStore.open(app_paths.settings_file).update(Settings(profiles=[ServerProfile(name="mine")]))
    dialog = make_dialog(qtbot, app_paths)
    page = dialog.models_page
    qwen = model_folder(tmp_path, "Qwen2.5-0.5B-Instruct", "Qwen2ForCausalLM", TOOLS_TEMPLATE)
    assert page.add_folder(qwen)
    page.use_button.click()
    assert page.tool_note.isVisible()
    assert page.tool_note.text() == "Tool calling: on, with the hermes parser."
    assert dialog.profiles_page.form.rows["tool_call_parser"].value() == "hermes"
    assert dialog.apply()
    assert saved_profile(app_paths, "mine").tool_call_parser == "hermes"

    # A template that never renders the tools: still on (a forced choice works), with the warning.
    plain = model_folder(tmp_path, "Qwen2.5-0.5B-plain", "Qwen2ForCausalLM", PLAIN_TEMPLATE)
    assert page.add_folder(plain)
    page.use_button.click()
    assert page.tool_note.text().startswith("Tool calling: on, with the hermes parser. ")
    assert "chat template does not describe tools" in page.tool_note.text()
    assert "only when the tool choice forces it" in page.tool_note.text()

    # No parser known for the family: off, and said so with what to do.
    unknown = model_folder(tmp_path, "house-model", "HouseForCausalLM", TOOLS_TEMPLATE)
    assert page.add_folder(unknown)
    page.use_button.click()
    assert page.tool_note.text().startswith("Tool calling: off, so vLLM will refuse a tool choice. ")
    assert "No tool-call parser is known for this model family" in page.tool_note.text()
    assert dialog.apply()
    assert saved_profile(app_paths, "mine").tool_call_parser == ""


def test_a_model_typed_on_the_profiles_page_gets_its_familys_parser_and_the_users_parser_is_kept(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths, tmp_path: Path
) -> None:
    qwen = model_folder(tmp_path, "Qwen2.5-0.5B-Instruct", "Qwen2ForCausalLM", TOOLS_TEMPLATE)
    llama = model_folder(tmp_path, "Llama-3.2-1B-Instruct", "LlamaForCausalLM", TOOLS_TEMPLATE)
    dialog = make_dialog(qtbot, app_paths)
    page = dialog.profiles_page
    page.new_button.click()
    form = page.form
    # A new profile runs the built-in model, whose tool calling is on as the built-in profile's.
    assert form.rows["tool_call_parser"].value() == "hermes"
    assert "Tool calling: on, with the hermes parser." in page.tool_note.text()
    type_into(qtbot, form, "source", "folder")
    type_into(qtbot, form, "model", str(qwen))
    assert form.rows["tool_call_parser"].value() == "hermes"
    type_into(qtbot, form, "model", str(llama))
    assert form.rows["tool_call_parser"].value() == "llama3_json"
    assert "Tool calling: on, with the llama3_json parser." in page.tool_note.text()
    assert dialog.apply()
    assert saved_profile(app_paths, "New profile").tool_call_parser == "llama3_json"

    # The user's own parser is theirs: another model keeps it; emptied, the page says to set the family's.
    type_into(qtbot, form, "tool_call_parser", "pythonic")
    type_into(qtbot, form, "model", str(qwen))
    assert form.rows["tool_call_parser"].value() == "pythonic"
    type_into(qtbot, form, "tool_call_parser", "")
    hint = page.tool_note.text()
    assert "Tool calling: off, so vLLM will refuse a tool choice." in hint
    assert "Set the tool-call parser to hermes (this model family's) to turn it on." in hint
    assert dialog.apply()
    assert saved_profile(app_paths, "New profile").tool_call_parser == ""
