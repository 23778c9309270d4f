"""Loading LiteLLM-style ``config.yaml``: ``model_list``, ``router_settings``, ``general_settings``.

``os.environ/NAME`` values resolve at load. Mistakes in the sidecar's own sections fail at
start-up with the YAML path and what was expected; LiteLLM sections and settings the sidecar
does not use are accepted with a warning that names them.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from sidecar.compat import DESCRIPTIVE_MODEL_INFO, Leniency, NearMiss, near_miss

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
"""A duration or size: zero or less is a start-up error naming its path."""
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
Duration = Annotated[str, msgspec.Meta(pattern=r"^\d+(mo|[smhdw])?$")] | NonNegativeInt
"""LiteLLM's duration: ``"30d"``, ``"12h"``, ``"60m"``, ``"3600s"``, ``"2w"``, ``"1mo"`` (30 days), or seconds."""

ENV_PREFIX = "os.environ/"


class ConfigError(Exception):
    """The config cannot be used; the message says where and what was expected.

    ``path`` is the YAML path at fault (``$.model_list[0].litellm_params.timeout``) and ``text``
    what is wrong there, when known; the API turns them into a 400's ``param`` and message.
    """

    def __init__(self, message: str, path: str | None = None, text: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.text = text


UPSTREAM_HTTP_CLIENTS = ("lean", "aiohttp")
"""``general_settings.upstream_http_client``'s values (and ``$SIDECAR_UPSTREAM_HTTP_CLIENT``'s)."""


class GeneralSettings(msgspec.Struct, forbid_unknown_fields=True):
    master_key: str | None = None
    database_url: str | None = None
    max_request_size_mb: PositiveFloat = 32.0
    graceful_shutdown_seconds: PositiveFloat = 10.0
    allow_client_side_credentials: bool = False
    allowed_api_base_hosts: list[str] | None = None
    """Host patterns (``*.openai.azure.com``, ``127.0.0.1:8000``) a client-sent ``api_base`` must
    match, in the body or in ``user_config``; unset: any host (when client credentials are allowed)."""
    request_head_timeout: PositiveFloat = 10.0
    """Seconds a new connection has to send a complete request head, else it is closed."""
    keepalive_timeout: PositiveFloat = 75.0
    """Seconds an idle keep-alive connection is kept (aiohttp's default)."""
    max_upstream_connections: PositiveInt = 1000
    """Upstream connections open at once, in total; more requests wait for one within their timeout."""
    max_pending_events: PositiveInt = 10_000
    """Finished-call events waiting for ``sidecar_call_finished`` hooks; beyond this they are dropped."""
    max_upstream_connections_per_host: PositiveInt = 500
    """Of those, to one host (a burst cannot open thousands of sockets to one provider)."""
    spend_log_retention: Duration | None = None
    """How long the spend log (the ``spendlog`` plugin) keeps a row; unset: 30 days; 0: for ever."""
    maximum_spend_logs_retention_period: Duration | None = None
    """LiteLLM's name for ``spend_log_retention`` (which wins when both are set)."""
    disable_spend_logs: bool = False
    """LiteLLM's switch: write no spend log rows."""
    upstream_http_client: Literal[UPSTREAM_HTTP_CLIENTS] | None = None  # type: ignore[valid-type]
    """The client for upstream calls: ``lean`` (the sidecar's own, on asyncio Protocols and llhttp)
    or ``aiohttp`` (aiohttp's ``ClientSession``); unset: ``$SIDECAR_UPSTREAM_HTTP_CLIENT``, else lean."""


ROUTING_STRATEGIES = ("simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing",
                      "usage-based-routing-v2", "cost-based-routing")


class RouterSettings(msgspec.Struct, forbid_unknown_fields=True):
    """LiteLLM's router settings (:mod:`sidecar.routing` acts on them; see :data:`UNUSED_ROUTER_KEYS`)."""

    routing_strategy: Literal[ROUTING_STRATEGIES] | None = None  # type: ignore[valid-type]
    routing_strategy_args: dict[str, Any] | None = None
    num_retries: NonNegativeInt | None = None
    timeout: PositiveFloat | None = None
    stream_timeout: PositiveFloat | None = None
    fallbacks: list[dict[str, list[str] | str]] | None = None
    context_window_fallbacks: list[dict[str, list[str] | str]] | None = None
    content_policy_fallbacks: list[dict[str, list[str] | str]] | None = None
    default_fallbacks: list[str] | None = None
    max_fallbacks: NonNegativeInt | None = None
    allowed_fails: NonNegativeInt | None = None
    allowed_fails_policy: dict[str, NonNegativeInt] | None = None
    cooldown_time: NonNegativeFloat | None = None
    disable_cooldowns: bool | None = None
    retry_after: NonNegativeFloat | None = None
    retry_policy: dict[str, NonNegativeInt] | None = None
    model_group_alias: dict[str, str | dict[str, Any]] | None = None
    enable_pre_call_checks: bool | None = None
    optional_pre_call_checks: list[str] | None = None
    enable_tag_filtering: bool | None = None
    default_max_parallel_requests: PositiveInt | None = None
    default_litellm_params: dict[str, Any] | None = None
    drop_params: bool | None = None
    cache_responses: bool | None = None
    redis_host: str | None = None
    redis_port: int | None = None
    redis_password: str | None = None


ROUTING_STRATEGY_ARGS = frozenset({"ttl", "lowest_latency_buffer", "max_latency_list_size"})
UNUSED_ROUTER_KEYS = frozenset({
    "optional_pre_call_checks", "enable_tag_filtering", "default_litellm_params", "cache_responses",
    "redis_host", "redis_port", "redis_password",
})
"""Router settings accepted for LiteLLM compatibility but not acted on: each is a start-up warning."""

LITELLM_ROUTER_KEYS = {
    "num_retries": "num_retries", "fallbacks": "fallbacks", "context_window_fallbacks": "context_window_fallbacks",
    "content_policy_fallbacks": "content_policy_fallbacks", "default_fallbacks": "default_fallbacks",
    "request_timeout": "timeout", "allowed_fails": "allowed_fails", "cooldown_time": "cooldown_time",
    "drop_params": "drop_params",
}
"""``litellm_settings`` keys that are router settings (as LiteLLM reads them), and their name in
``router_settings``; ``router_settings`` wins where both set one."""


class _KnownLitellmParams(msgspec.Struct):
    """Type checks for the ``litellm_params`` keys the sidecar reads; others go to the provider."""

    model: str
    api_key: str | None = None
    api_base: str | None = None
    api_version: str | None = None
    timeout: PositiveFloat | None = None
    stream_timeout: PositiveFloat | None = None
    max_retries: int | None = None
    tpm: NonNegativeInt | None = None
    rpm: NonNegativeInt | None = None
    drop_params: bool | None = None
    organization: str | None = None
    weight: NonNegativeFloat | None = None
    order: int | None = None
    max_parallel_requests: PositiveInt | None = None
    cooldown_time: NonNegativeFloat | None = None
    num_retries: NonNegativeInt | None = None


PARAMS_ACTED_ON = frozenset(_KnownLitellmParams.__struct_fields__) - {"max_retries"}
"""``litellm_params`` keys the core reads: a near-miss of one (``num_retires``, ``api_bse``) is a
typo that would otherwise go upstream as a body default, so it stops start-up (a 400 over the API)."""

DEPLOYMENT_KEYS_NOT_ACTED_ON = frozenset({
    # LiteLLM's per-deployment router and budget keys the sidecar accepts but does not act on:
    # named in the start-up warning, never sent upstream.
    "max_retries",  # (the router is the only retry loop: num_retries)
    "fallbacks", "context_window_fallback_dict", "retry_policy", "request_timeout", "tags",
    "region_name", "allowed_model_region", "max_budget", "budget_duration", "itpm", "otpm",
    "model_alias_map", "timeout_by_service_tier", "stream_timeout_by_service_tier",
})

SUPPORTS_FLAGS = (
    "supports_system_messages", "supports_response_schema", "supports_vision", "supports_function_calling",
    "supports_tool_choice", "supports_assistant_prefill", "supports_prompt_caching", "supports_audio_input",
    "supports_audio_output", "supports_pdf_input", "supports_embedding_image_input", "supports_native_streaming",
    "supports_web_search", "supports_reasoning", "supports_computer_use", "supports_parallel_function_calling",
)

_KnownModelInfo = msgspec.defstruct(
    "_KnownModelInfo",
    [
        ("id", str | int | None, None), ("mode", str | None, None),
        ("max_tokens", int | None, None), ("max_input_tokens", int | None, None),
        ("max_output_tokens", int | None, None),
        ("input_cost_per_token", float | None, None), ("output_cost_per_token", float | None, None),
        ("cache_creation_input_token_cost", float | None, None),
        ("cache_read_input_token_cost", float | None, None),
        ("input_cost_per_query", float | None, None),  # a rerank's price per search unit
        ("tpm", int | None, None), ("rpm", int | None, None),
        ("access_groups", list[str] | None, None), ("team_id", str | None, None),
        *((flag, bool | None, None) for flag in SUPPORTS_FLAGS),
    ],
)
"""Type checks for the ``model_info`` keys the sidecar reads; other keys are free-form."""


class _DeploymentEntry(msgspec.Struct, forbid_unknown_fields=True):
    model_name: str
    litellm_params: dict[str, Any] | None = None
    model_info: dict[str, Any] | None = None
    tpm: int | None = None
    rpm: int | None = None


_OWN_SECTIONS = ("model_list", "router_settings", "general_settings", "litellm_settings", "environment_variables")
"""Top-level sections the sidecar reads; any other (``guardrails``, ``sandbox_tools``...) is warned."""
CALLBACK_KEYS = ("callbacks", "success_callback", "failure_callback")
"""``litellm_settings`` lists naming LiteLLM callbacks (``prometheus``, ``otel``...): each name is
served by the plugin registered under it, and a name no plugin has is warned at start-up."""
PLUGIN_LITELLM_SETTINGS: dict[str, type] = {
    "require_auth_for_metrics_endpoint": bool,
    "enable_end_user_cost_tracking_prometheus_only": bool,
}
"""``litellm_settings`` keys a built-in plugin acts on (``prometheus``), with their types: checked
here, kept in :attr:`Config.litellm_settings`, read with ``sidecar.litellm_setting(app, name)``."""
LITELLM_SETTINGS_KEYS = frozenset({*LITELLM_ROUTER_KEYS, "set_verbose", "json_logs", *CALLBACK_KEYS,
                                   "callback_settings", *PLUGIN_LITELLM_SETTINGS})
"""``litellm_settings`` keys that take effect; every other one is warned (``cache``...)."""
_ENTRY_KEYS = frozenset(_DeploymentEntry.__struct_fields__)
_MODEL_INFO_KEYS = frozenset({*_KnownModelInfo.__struct_fields__, *DESCRIPTIVE_MODEL_INFO, "db_model"})


@dataclass(slots=True)
class DeploymentConfig:
    """One ``model_list`` entry; ``raw_params`` keep ``os.environ/`` references (for stable ids)."""

    model_name: str
    litellm_params: dict[str, Any]
    raw_params: dict[str, Any]
    model_info: dict[str, Any]
    tpm: int | None = None
    rpm: int | None = None


@dataclass(slots=True)
class Config:
    model_list: list[DeploymentConfig] = field(default_factory=list)
    general: GeneralSettings = field(default_factory=GeneralSettings)
    router: RouterSettings = field(default_factory=RouterSettings)
    warnings: list[str] = field(default_factory=list)
    source: str = "<dict>"
    set_verbose: bool = False
    """``litellm_settings.set_verbose``: the sidecar's logger at DEBUG unless ``--log-level`` is given."""
    json_logs: bool = False
    """``litellm_settings.json_logs``: one JSON object per log line unless ``--log-format`` is given."""
    callbacks: list[str] = field(default_factory=list)
    """The names in ``litellm_settings`` ``callbacks``, ``success_callback`` and ``failure_callback``."""
    callback_settings: dict[str, Any] = field(default_factory=dict)
    """``litellm_settings.callback_settings``: each callback's own settings, by its name."""
    litellm_settings: dict[str, Any] = field(default_factory=dict)
    """The :data:`PLUGIN_LITELLM_SETTINGS` keys the config sets (checked, env references resolved)."""
    ignored_keys: list[str] = field(default_factory=list)
    """Every key accepted but not acted on, as ``section.key`` (the one start-up warning names them)."""

    @property
    def database_path(self) -> str:
        """The SQLite file: env ``SIDECAR_DATABASE_URL`` wins over ``database_url``."""
        env = os.environ.get("SIDECAR_DATABASE_URL")
        try:
            return sqlite_path(env or self.general.database_url or "sqlite:///sidecar.db")
        except ConfigError as exc:
            raise ConfigError(f"$SIDECAR_DATABASE_URL: {exc}" if env else f"{self.source}: {exc}") from None

    @property
    def upstream_http_client(self) -> str:
        """``general_settings.upstream_http_client``, else ``$SIDECAR_UPSTREAM_HTTP_CLIENT``, else
        ``lean``; a bad value of the variable is a start-up error naming it."""
        if self.general.upstream_http_client is not None:
            return self.general.upstream_http_client
        env = os.environ.get("SIDECAR_UPSTREAM_HTTP_CLIENT") or "lean"
        if env not in UPSTREAM_HTTP_CLIENTS:
            raise ConfigError(f"$SIDECAR_UPSTREAM_HTTP_CLIENT: expected one of {', '.join(UPSTREAM_HTTP_CLIENTS)}, "
                              f"got {env[:40]!r}")
        return env


def sqlite_path(url: str) -> str:
    """``sqlite:///rel.db`` -> ``rel.db``; ``sqlite:////abs.db`` -> ``/abs.db``."""
    if not url.startswith("sqlite:///"):
        scheme = url.split(":", 1)[0]
        raise ConfigError(f"database_url: only sqlite:///PATH is supported, got a {scheme!r} URL; "
                          "set SIDECAR_DATABASE_URL=sqlite:///PATH to use SQLite with this config")
    return url[len("sqlite:///"):]


def load_config(path: str | Path) -> Config:
    """Read and check a YAML config file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    data = read_yaml(raw, str(path))
    if data is None:  # an empty file, or only comments: a missing or truncated config, not "no models"
        raise ConfigError(f"{path}: the file holds no YAML document (is it empty?); "
                          "a config without models says so: model_list: []")
    return parse_config(data, source=str(path))


BIG_CONFIG_BYTES = 256 * 1024


def read_yaml(raw: bytes, source: str) -> Any:
    """Parse YAML. PyYAML builds objects in Python (~1 s for 10,000 deployments), so a big
    file's parse is kept as msgpack under ``$SIDECAR_CACHE_DIR`` (default
    ``~/.cache/llm-sidecar``, mode 0600), keyed by the file's sha256; env references stay
    unresolved there, and any cache failure just means parsing again."""
    import yaml  # only needed at start-up

    cache = _cache_file(raw) if len(raw) >= BIG_CONFIG_BYTES else None
    if cache is not None:
        try:
            return msgspec.msgpack.decode(cache.read_bytes())
        except (OSError, msgspec.DecodeError):
            pass
    try:
        data = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None) or str(exc)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: invalid YAML{where}: {' '.join(problem.split())}") from None
    if cache is not None:
        _write_cache(cache, data)
    return data


def _cache_file(raw: bytes) -> Path:
    import hashlib

    folder = Path(os.environ.get("SIDECAR_CACHE_DIR") or Path.home() / ".cache" / "llm-sidecar")
    return folder / f"config-{hashlib.sha256(raw).hexdigest()}.msgpack"


def _write_cache(cache: Path, data: Any) -> None:
    try:
        encoded = msgspec.msgpack.encode(data)
        cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(encoded)
        os.replace(tmp, cache)
    except (OSError, TypeError, ValueError):
        pass  # an unwritable cache or a YAML value msgpack cannot hold: parse next time too


def parse_config(data: Any, source: str = "<dict>") -> Config:
    """Check a config already loaded into Python objects."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    config = Config(source=source)
    lenient = Leniency()
    data = _sorted(lenient, data, _OWN_SECTIONS, "", source)
    for key in ("general_settings", "router_settings", "environment_variables", "litellm_settings"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise ConfigError(f"{source}: $.{key}: expected a mapping, got {type(data[key]).__name__}")
    for name, value in (data.get("environment_variables") or {}).items():
        os.environ[str(name)] = str(resolve_env(value, f"$.environment_variables.{name}", source))

    general = _sorted(lenient, data.get("general_settings") or {}, GeneralSettings.__struct_fields__,
                      "general_settings", source)
    config.general = _convert(resolve_env(general, "$.general_settings", source), GeneralSettings,
                              "$.general_settings", source)
    if config.general.database_url is not None and not os.environ.get("SIDECAR_DATABASE_URL"):
        try:  # (the variable, when set, wins: the file's URL is then never used)
            sqlite_path(config.general.database_url)
        except ConfigError as exc:
            raise ConfigError(f"{source}: $.general_settings.{exc}") from None
    litellm = _sorted(lenient, data.get("litellm_settings") or {}, LITELLM_SETTINGS_KEYS, "litellm_settings", source)
    for flag in ("set_verbose", "json_logs"):
        if litellm.get(flag) is not None:
            where = f"$.litellm_settings.{flag}"
            setattr(config, flag, _convert(resolve_env(litellm[flag], where, source), bool, where, source))
    _read_callbacks(config, litellm, source)
    for key, type_ in PLUGIN_LITELLM_SETTINGS.items():
        if litellm.get(key) is not None:
            where = f"$.litellm_settings.{key}"
            config.litellm_settings[key] = _convert(resolve_env(litellm[key], where, source), type_, where, source)
    config.router = router_settings(data, litellm, source, lenient)
    model_list = data.get("model_list") or []
    if not isinstance(model_list, list):
        raise ConfigError(f"{source}: $.model_list: expected a list of deployments")
    for i, entry in enumerate(model_list):
        config.model_list.append(parse_deployment(entry, f"$.model_list[{i}]", source, lenient, config.warnings))
    config.ignored_keys = lenient.ignored
    warning = lenient.warning()
    if warning:
        config.warnings.insert(0, warning)
    return config


def _read_callbacks(config: Config, litellm: dict[str, Any], source: str) -> None:
    names: dict[str, None] = {}
    for key in CALLBACK_KEYS:
        value = litellm.get(key)
        if value is None:
            continue
        where = f"$.litellm_settings.{key}"
        value = resolve_env(value, where, source)
        if isinstance(value, str):
            value = [value]
        names.update(dict.fromkeys(_convert(value, list[str], where, source)))
    config.callbacks = list(names)
    if litellm.get("callback_settings") is not None:
        where = "$.litellm_settings.callback_settings"
        config.callback_settings = _convert(resolve_env(litellm["callback_settings"], where, source),
                                            dict[str, dict[str, Any]], where, source)


def _sorted(lenient: Leniency, mapping: Any, acted_on: Any, where: str, source: str,
            ignored: Any = (), path: str | None = None) -> dict[str, Any]:
    """:meth:`Leniency.sort`, with a near-miss as a start-up error naming its YAML ``path``."""
    if not isinstance(mapping, dict):
        return mapping
    try:
        return lenient.sort(mapping, acted_on, where, ignored)
    except NearMiss as miss:
        path = path or (f"$.{where}" if where else f"$.{miss.key}")
        noun = "key" if where else "section"
        text = (f"unknown {noun} {miss.key!r} (did you mean {miss.suggestion!r}?); llm-sidecar reads "
                f"{', '.join(sorted(acted_on))}; keys it does not read are accepted with a warning")
        raise ConfigError(f"{source}: {path}: {text}", path=path, text=text) from None


def router_settings(data: dict[str, Any], litellm: dict[str, Any], source: str,
                    lenient: Leniency | None = None) -> RouterSettings:
    """``router_settings``, over the router keys of ``litellm_settings`` (LiteLLM reads both)."""
    lenient = lenient or Leniency()
    merged: dict[str, Any] = {}
    types = {f.name: f.type for f in msgspec.structs.fields(RouterSettings)}
    for key, value in litellm.items():
        if key in LITELLM_ROUTER_KEYS and value is not None:
            where = f"$.litellm_settings.{key}"
            merged[LITELLM_ROUTER_KEYS[key]] = _convert(resolve_env(value, where, source),
                                                        types[LITELLM_ROUTER_KEYS[key]], where, source)
    acted = frozenset(RouterSettings.__struct_fields__) - UNUSED_ROUTER_KEYS
    own = _sorted(lenient, data.get("router_settings") or {}, acted, "router_settings", source,
                  ignored=UNUSED_ROUTER_KEYS)
    own = resolve_env(own, "$.router_settings", source)
    settings = _convert({**merged, **own}, RouterSettings, "$.router_settings", source)
    for key in settings.routing_strategy_args or {}:
        if key not in ROUTING_STRATEGY_ARGS:  # named in the one Leniency warning, like any other
            lenient.note(f"router_settings.routing_strategy_args.{key}")
    return settings


def parse_deployment(entry: Any, where: str, source: str, lenient: Leniency | None = None,
                     warnings: list[str] | None = None) -> DeploymentConfig:
    """One ``model_list`` entry. Without ``litellm_params`` (LiteLLM's own examples have such
    entries), ``model_name`` is the model, its provider inferred from the catalog."""
    lenient = lenient or Leniency()
    entry = _sorted(lenient, entry, _ENTRY_KEYS, "model_list[*]", source, path=where)
    if isinstance(entry, dict) and isinstance(entry.get("model_info"), dict):
        _sorted(lenient, entry["model_info"], _MODEL_INFO_KEYS, "model_list[*].model_info", source,
                path=f"{where}.model_info")
    checked = _convert(entry, _DeploymentEntry, where, source)
    raw = checked.litellm_params
    if raw is None:
        raw = {"model": checked.model_name}
        if warnings is not None:
            warnings.append(f"{where} has no litellm_params: serving model_name {checked.model_name!r} "
                            "as litellm_params.model")
    if isinstance(raw, dict):
        for key in raw:
            if key in DEPLOYMENT_KEYS_NOT_ACTED_ON:
                lenient.note(f"model_list[*].litellm_params.{key}")
    params = resolve_env(raw, f"{where}.litellm_params", source)
    model_info = check_deployment_fields(params, checked.model_info or {}, where, source)
    return DeploymentConfig(checked.model_name, params, raw, model_info, checked.tpm, checked.rpm)


def check_deployment_fields(params: dict[str, Any], model_info: dict[str, Any], where: str,
                            source: str) -> dict[str, Any]:
    """Type checks for the deployment fields the sidecar itself reads (config and API alike):
    a bad ``timeout`` or price fails here, not as a 500 on every later request. Returns
    ``model_info`` with those fields as numbers (PyYAML reads ``1e-06`` as a string; LiteLLM
    accepts it, so the sidecar does too)."""
    for key in params:
        if key not in PARAMS_ACTED_ON and key not in DEPLOYMENT_KEYS_NOT_ACTED_ON:
            suggestion = near_miss(str(key), PARAMS_ACTED_ON)
            if suggestion is not None:
                path = f"{where}.litellm_params.{key}"
                text = (f"unknown key {key!r} (did you mean {suggestion!r}?); a key llm-sidecar does not "
                        "read is sent to the provider as a request default")
                raise ConfigError(f"{source}: {path}: {text}", path=path, text=text)
    _convert(params, _KnownLitellmParams, f"{where}.litellm_params", source)
    known = _convert(model_info, _KnownModelInfo, f"{where}.model_info", source)
    converted = {f: getattr(known, f) for f in known.__struct_fields__ if f != "id" and f in model_info}
    return {**model_info, **converted}


def resolve_env(value: Any, where: str, source: str) -> Any:
    """Replace every ``os.environ/NAME`` string in ``value`` with the variable's value."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX):]
        if name not in os.environ:
            raise ConfigError(f"{source}: {where}: environment variable {name} is not set")
        return os.environ[name]
    if isinstance(value, dict):
        return {k: resolve_env(v, f"{where}.{k}", source) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, f"{where}[{i}]", source) for i, v in enumerate(value)]
    return value


def _convert(value: Any, type_: type, where: str, source: str, strict: bool = False) -> Any:
    try:
        return msgspec.convert(value, type_, strict=strict)
    except msgspec.ValidationError as exc:
        message = str(exc)
        text, _, at = message.partition(" - at `$")
        path = where + at.rstrip("`") if at else where
        hint = ""
        if text.startswith("Object contains unknown field"):
            bad = text.split("`")[1]
            hint = _suggest(bad, type_.__struct_fields__) + f"; expected one of {', '.join(type_.__struct_fields__)}"
        raise ConfigError(f"{source}: {path}: {text}{hint}", path=path, text=text + hint) from None


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
