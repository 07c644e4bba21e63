"""One typed settings object, read from the environment and `.env`.

Built once in `main()` and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """Invalid configuration, with a message that names the setting and the fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWSBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- storage -----------------------------------------------------------------------------
    data_dir: Path = Field(default_factory=lambda: platformdirs.user_data_path("newsbot"))
    cache_dir: Path = Field(default_factory=lambda: platformdirs.user_cache_path("newsbot"))
    seeds_dir: Path = PROJECT_ROOT / "seeds"
    prompts_dir: Path = PROJECT_ROOT / "prompts"
    collection: str = "newsbot"
    chroma_host: str | None = None
    chroma_port: int = Field(8000, ge=1, le=65535)
    chroma_ssl: bool = False
    chroma_headers: dict[str, str] = Field(default_factory=dict)

    # --- models ------------------------------------------------------------------------------
    model: str = "qwen2.5-coder-1.5b"
    embedding_model: str = "all-MiniLM-L6-v2"
    n_gpu_layers: int = Field(0, ge=-1)
    n_threads: int | None = Field(None, ge=1)
    n_ctx: int = Field(4096, ge=512)
    n_batch: int = Field(512, ge=8)
    seed: int = 0
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_answer_tokens: int = Field(200, ge=16, le=4096)
    llm_backend: Literal["llama", "openai"] = "llama"
    openai_base_url: str = "http://127.0.0.1:8080/v1"
    openai_model: str = "local"
    openai_api_key: SecretStr = SecretStr("not-needed")
    openai_timeout_s: float = Field(120.0, gt=0)
    openai_max_retries: int = Field(3, ge=0, le=10)

    # --- retrieval and context ---------------------------------------------------------------
    chunk_chars: int = Field(700, ge=200, le=4000)
    top_k: int = Field(8, ge=1, le=100)
    bm25_weight: float = Field(1.0, ge=0.0)
    dense_weight: float = Field(0.6, ge=0.0)
    rrf_k: int = Field(5, ge=0, le=1000)
    kv_cache_mb: int = Field(2048, ge=0)
    context_tokens: int = Field(260, ge=50, le=8000)
    translate_queries: bool = True
    translation_hints: bool = True
    min_retrieval_score: float = Field(0.0, ge=0.0)
    force_answer_coverage: float = Field(0.4, ge=0.0, le=1.01)
    selection_lexical_weight: float = Field(4.0, ge=0.0)
    refusal_margin: float = Field(1.0)

    # --- chat --------------------------------------------------------------------------------
    history_turns: int = Field(4, ge=0, le=50)
    max_question_chars: int = Field(2000, ge=10)

    # --- discord -----------------------------------------------------------------------------
    discord_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DISCORD_TOKEN", "NEWSBOT_DISCORD_TOKEN")
    )
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    discord_guilds: list[int] = Field(default_factory=list)
    discord_channels: list[int] = Field(default_factory=list)
    discord_queue_size: int = Field(20, ge=1)
    discord_cooldown_s: float = Field(5.0, ge=0)
    discord_edit_interval_s: float = Field(1.0, ge=0.2)  # per message; Discord allows about 5 edits per 5 s
    # One pace across all queue-position edits (they change for every waiting question at once).
    discord_queue_edit_interval_s: float = Field(0.5, ge=0.0)
    # Privileged intent (enable it in the developer portal first): lets plain messages in the
    # bot's threads continue a conversation; without it mentions, pinging replies, /ask in the
    # thread and the "Frage an newsbot" message command do.
    discord_message_content: bool = False

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.llm_backend == "openai" and not self.openai_base_url.startswith(("http://", "https://")):
            raise ValueError("openai_base_url must start with http:// or https://")
        return self

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def keyword_dir(self) -> Path:
        return self.data_dir / "keyword"

    @property
    def model_cache_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def uses_chroma_server(self) -> bool:
        return bool(self.chroma_host)


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one actionable message."""
    from pydantic_settings import SettingsError as SourceError

    try:
        return Settings(**overrides)
    except SourceError as exc:  # a value that is not valid JSON where JSON is expected (lists, dicts)
        match = re.search(r'field "(\w+)"', str(exc))
        field = match.group(1) if match else "settings"
        env = "DISCORD_TOKEN" if field == "discord_token" else f"NEWSBOT_{field.upper()}"
        raise SettingsError(f"Invalid settings:\n  {env}: not valid JSON (a list looks like [1, 2], a mapping like "
                            f'{{"name": "value"}}); fix it in the environment or in .env (see .env.example)') from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err.get("loc") or ("settings",)
            field = str(loc[0])
            env = "DISCORD_TOKEN" if field == "discord_token" else f"NEWSBOT_{field.upper()}"
            lines.append(f"{env}: {err.get('msg')} (got {_shown(err.get('input'), field)!s}); "
                         f"fix it in the environment or in .env (see .env.example)")
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(lines)) from None


def _shown(value: object, field: str) -> str:
    # "settings": a check across fields, whose input is every setting (the secrets included)
    if field == "settings" or any(word in field for word in ("token", "key", "headers", "secret", "password")):
        return "<hidden>"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
