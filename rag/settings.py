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

from rag.errors import SettingsError
from rag.llm.models import BUNDLED
from rag.settings_check import check_env_files, env_files, unknown_variables

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWSBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        allow_inf_nan=False,  # NaN passes every bound check and inf every lower one (issue 17.10)
    )

    # --- storage -----------------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("newsbot"), description="Where the Chroma store, the keyword index and chat history live"
    )
    cache_dir: Path = Field(default_factory=lambda: platformdirs.user_cache_path("newsbot"), description="Where assembled model files and other caches live")
    seeds_dir: Path = Field(PROJECT_ROOT / "seeds", description="Articles ingested by default and on first start of chat/ask/discord")
    prompts_dir: Path = Field(PROJECT_ROOT / "prompts", description="Prompt files (the repo's prompts/ folder)")
    collection: str = Field("newsbot", description="Name prefix of the two Chroma collections (<name>_chunks, <name>_sources)")
    chroma_host: str | None = Field(None, description="Chroma server host; empty = the embedded store")
    chroma_port: int = Field(8000, ge=1, le=65535, description="Chroma server port")
    chroma_ssl: bool = Field(False, description="Talk TLS to the Chroma server")
    chroma_headers: dict[str, str] = Field(default_factory=dict, description="Extra headers for the Chroma server as JSON (e.g. auth for a proxy)")

    # --- models ------------------------------------------------------------------------------
    model: str = Field("qwen2.5-coder-1.5b", description="Chat model: a bundled name (qwen2.5-coder-1.5b, qwen2.5-coder-0.5b) or a path to any .gguf file")
    reader_model: str = Field(
        "",
        description="Model that reads the context for the answer decisions (its next-token probabilities of citing each "
        "sentence and of refusing): a bundled name or a .gguf path; empty = the chat model's bundled reader (the 0.5B "
        "for the bundled 1.5B: it reads ~2.3x faster, which pays for a 400-token context) or, for any other model, the "
        "chat model itself. The chat model still translates, rewrites follow-ups and writes English renderings. "
        "Ignored by the openai backend",
    )
    embedding_model: str = Field(
        "multilingual-e5-small",
        description="Embedding model: multilingual-e5-small (bundled, German+English), use-multilingual, "
        "all-MiniLM-L6-v2 (extra minilm), or any sentence-transformers name or path",
    )
    n_gpu_layers: int = Field(0, ge=-1, description="Layers to offload to a GPU (0 = CPU only, -1 = all)")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for llama.cpp (empty = all cores available to the process)")
    n_ctx: int = Field(4096, ge=512, description="Context window of the model in tokens")
    n_batch: int = Field(512, ge=8, description="Prompt-processing batch size")
    seed: int = Field(0, description="Sampling seed")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy, deterministic answers)")
    max_answer_tokens: int = Field(200, ge=16, le=4096, description="Most tokens an answer may have")
    llm_backend: Literal["llama", "openai"] = Field("llama", description="Model backend: llama (in-process llama.cpp) or openai (any OpenAI-compatible server)")
    openai_base_url: str = Field("http://127.0.0.1:8080/v1", description="Base URL of the OpenAI-compatible model server (usually ends in /v1)")
    openai_model: str = Field("local", description="Model name sent to the model server")
    openai_api_key: SecretStr = Field(SecretStr("not-needed"), description="API key for the model server (secret)")
    openai_timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for the model server")
    openai_max_retries: int = Field(3, ge=0, le=10, description="Retries of a failed model-server request before any token arrived")

    # --- retrieval and context ---------------------------------------------------------------
    chunk_chars: int = Field(700, ge=200, le=4000, description="Target chunk size in characters (sentence-aware); changing it needs `newsbot ingest --rebuild`")
    top_k: int = Field(8, ge=1, le=100, description="Chunks retrieved per question")
    bm25_weight: float = Field(1.0, ge=0.0, description="Weight of the keyword (BM25) ranking in the fusion")
    dense_weight: float = Field(0.6, ge=0.0, description="Weight of the dense ranking in the fusion (0.6 rescued one more dev question than 1.0)")
    rrf_k: int = Field(5, ge=0, le=1000, description="Reciprocal-rank-fusion constant")
    kv_cache_mb: int = Field(2048, ge=0, description="Memory for cached model states (system prompt + article chunk), in MB, in RAM and on disk each")
    block_states_mb: int = Field(
        0, ge=0,
        description="Disk for the model states `newsbot ingest` computes (system prompt + each possible first context block), "
        "in MB; 0 = none (ingest then needs no model)",
    )
    context_tokens: int = Field(
        400, ge=50, le=8000,
        description="Token budget of the context given to the model (tune evidence in context: 83/108 at 260, 88/108 at 400)",
    )
    skip_reading: bool = Field(
        True,
        description="Decide without the reader where the decisions fitted without its signals are sure (rag/answering/"
        "decisions.json `skip_reading`; the shipped fit decides all 209 tune questions unread, right/wrong 97/31 against "
        "87/20 always reading, so the reader is not loaded); false = the reader reads every context",
    )
    translate_queries: bool = Field(True, description="Translate non-German questions to German (with the local model) before searching")
    translation_hints: bool = Field(
        True,
        description="Show the translation prompt the articles' own German words nearest to each word of the question "
        "(12 -> 17 of 26 English questions with the evidence in context)",
    )
    min_retrieval_score: float = Field(
        0.0, ge=0.0, description="Refuse without asking the model when no context sentence covers at least this share of the question"
    )
    decisions_path: Path | None = Field(
        None,
        description="Fitted answer decisions (JSON from `newsbot fit`); empty = the ones shipped in rag/answering/decisions.json",
    )

    # --- chat --------------------------------------------------------------------------------
    history_turns: int = Field(4, ge=0, le=50, description="Earlier turns used to understand follow-up questions")
    max_question_chars: int = Field(2000, ge=10, description="Longest accepted question in characters")
    chat_history_lines: int = Field(500, ge=0, description="Questions kept in the console chat's input history file (owner-only); 0 = no history file")

    # --- discord -----------------------------------------------------------------------------
    discord_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("DISCORD_TOKEN", "NEWSBOT_DISCORD_TOKEN"),
        description="Bot token from the Discord developer portal (secret: never commit it)",
    )
    discord_api_base: str | None = Field(
        None, description="Alternative Discord API base including the version (tests use a loopback double); empty = discord.com"
    )
    discord_gateway_url: str | None = Field(None, description="Alternative Discord gateway URL; empty = from GET /gateway/bot")
    discord_guilds: list[int] = Field(default_factory=list, description="Only answer in these guilds (JSON list of ids; empty = everywhere)")
    discord_channels: list[int] = Field(default_factory=list, description="Only answer in these channels (JSON list of ids; empty = everywhere)")
    discord_queue_size: int = Field(20, ge=1, description="Questions waiting for the model at most; more get a polite busy message")
    discord_cooldown_s: float = Field(5.0, ge=0, description="Seconds a user waits between questions")
    discord_edit_interval_s: float = Field(1.0, ge=0.2, description="Seconds between edits of a streaming reply (Discord allows about 5 edits per 5 s)")
    discord_queue_edit_interval_s: float = Field(
        0.5, ge=0.0, description="One pace across all queue-position edits (they change for every waiting question at once)"
    )
    # Privileged intent (enable it in the developer portal first): lets plain messages in the
    # bot's threads continue a conversation; without it mentions, pinging replies, /ask in the
    # thread and the "Frage an newsbot" message command do.
    discord_message_content: bool = Field(
        False, description="Let plain messages in the bot's threads continue a conversation (needs the privileged Message Content Intent)"
    )

    # --- web sources and feeds (rag/index/web.py, feeds.py, dedupe.py) -------------------------
    feed_interval_min: float = Field(30.0, ge=0, description=(
        "Minutes between background refreshes of the registered feeds in `chat` and `discord` (0 = never)"))
    feed_max_items: int = Field(50, ge=1, le=1000, description="Articles taken from one feed per refresh (newest first)")
    fetch_timeout_s: float = Field(10.0, gt=0, le=300, description=(
        "Seconds one network operation (connect, each read) may take; a whole page at most 3x that"))
    fetch_max_bytes: int = Field(5 * 2**20, ge=1024, description="Largest page or feed fetched, in bytes (decoded)")
    fetch_max_redirects: int = Field(5, ge=0, le=20, description="Redirects followed per URL")
    fetch_allow_private: bool = Field(False, description=(
        "Allow fetching from private, loopback and link-local addresses (off: a feed must not reach into "
        "the operator's network; tests turn it on for their 127.0.0.1 server)"))
    dedupe_threshold: float = Field(0.5, gt=0, le=1, description=(
        "Jaccard similarity of word 4-gram shingles at which a web article counts as a copy of a stored one "
        "(distinct articles measured <= 0.01, one-sentence edits >= 0.70)"))

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("WARNING", description="Log level: DEBUG, INFO, WARNING or ERROR")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        # Chroma: 3-512 characters of [a-zA-Z0-9._-], starting and ending with a letter or digit
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)){0,400}", value):
            raise ValueError("a collection name is letters, digits, '_', '-' and single '.', starting with a letter or digit")
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir_is_a_folder(cls, value: Path) -> Path:
        value = value.expanduser()
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} is a file, not a folder; point it at a folder (it is created when missing)")
        blocking = next((p for p in value.parents if p.exists()), None)  # the folder would be created below this
        if blocking is not None and not blocking.is_dir():
            raise ValueError(f"{value} is inside {blocking}, which is a file; point it at a folder (it is created when missing)")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.llm_backend == "openai" and not self.openai_base_url.startswith(("http://", "https://")):
            raise ValueError("openai_base_url must start with http:// or https://")
        return self

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def keyword_dir(self) -> Path:
        """The BM25 index of this collection pair (the default collection keeps the old name)."""
        return self.data_dir / ("keyword" if self.collection == "newsbot" else f"keyword-{self.collection}")

    @property
    def model_cache_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def reading_model(self) -> str:
        """The model that reads the context (in-process models): NEWSBOT_READER_MODEL, else the chat model's
        bundled reader, else the chat model."""
        if self.llm_backend != "llama":
            return self.model
        bundled = BUNDLED.get(self.model)
        return self.reader_model or (bundled.reader if bundled and bundled.reader else self.model)

    @property
    def uses_chroma_server(self) -> bool:
        return bool(self.chroma_host)


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one actionable message."""
    from pydantic_settings import SettingsError as SourceError

    check_env_files(_env_files(overrides), str(overrides.get("_env_file_encoding") or Settings.model_config.get("env_file_encoding") or "utf-8"))
    try:
        return Settings(**overrides)
    except SourceError as exc:  # a value that is not valid JSON where JSON is expected (lists, dicts)
        match = re.search(r'field "(\w+)"', str(exc))
        field = match.group(1) if match else "settings"
        env = "DISCORD_TOKEN" if field == "discord_token" else f"NEWSBOT_{field.upper()}"
        raise SettingsError(
            f"Invalid settings:\n  {env}: not valid JSON (a list looks like [1, 2], a mapping like "
            f'{{"name": "value"}}); fix it in the environment or in .env (see .env.example)'
        ) from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err.get("loc") or ("settings",)
            field = str(loc[0])
            env = "DISCORD_TOKEN" if field == "discord_token" else f"NEWSBOT_{field.upper()}"
            lines.append(f"{env}: {err.get('msg')} (got {_shown(err.get('input'), field)!s}); fix it in the environment or in .env (see .env.example)")
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(lines)) from None


def unknown_setting_warnings(**overrides: object) -> list[str]:
    """Warnings for NEWSBOT_* variables that are no setting (typos), each naming the nearest real one."""
    return unknown_variables(Settings.model_fields, files=_env_files(overrides))


def _env_files(overrides: dict[str, object]) -> list[Path]:
    return env_files(overrides["_env_file"] if "_env_file" in overrides else Settings.model_config.get("env_file"))


def _shown(value: object, field: str) -> str:
    # "settings": a check across fields, whose input is every setting (the secrets included)
    if field == "settings" or any(word in field for word in ("token", "key", "headers", "secret", "password")):
        return "<hidden>"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
