"""The JSON answers of the sidecar's own routes (model info, management, health, routes) as msgspec
Structs: the shapes the OpenAPI document gives them (:mod:`sidecar.openapi`).

The handlers build these answers as dicts (most are encoded once and cached); the property-based
tests check every answer the app gives against the document, so a handler and its Struct here
cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import UNSET, Struct, UnsetType

__all__ = [
    "ApiModelList",
    "DeletedDeployment",
    "DeploymentHealth",
    "HealthReport",
    "ModelGroupList",
    "ModelInfoList",
    "ModelInfoRow",
    "Readiness",
    "RouteList",
]

Json = dict[str, Any]


class ModelInfoRow(Struct):
    """A deployment: its group, its ``litellm_params`` without credentials, its full ``model_info``."""

    model_name: str
    litellm_params: Json
    model_info: Json


class ModelInfoList(Struct):
    data: list[ModelInfoRow]


class ModelGroup(Struct):
    """A model group, its deployments combined (LiteLLM's ``/model_group/info`` row)."""

    model_group: str
    providers: list[str]
    max_input_tokens: float | None
    max_output_tokens: float | None
    input_cost_per_token: float
    output_cost_per_token: float
    mode: str | None
    tpm: int | None
    rpm: int | None
    supports_parallel_function_calling: bool
    supports_vision: bool
    supports_function_calling: bool
    supported_openai_params: list[str]


class ModelGroupList(Struct):
    data: list[ModelGroup]


class ApiModelPricing(Struct):
    """USD per million tokens."""

    input: float | None
    output: float | None


class ApiModel(Struct):
    """A model in vLLora's ``/api/models`` shape."""

    id: str
    provider: str
    capabilities: list[str]
    context_window: float | None
    max_output_tokens: float | None
    pricing: ApiModelPricing
    features: list[str]


class ApiModelList(Struct):
    models: list[ApiModel]


class DeletedDeployment(Struct):
    message: str
    id: str
    model_name: str


class RouteRow(Struct):
    path: str
    methods: list[str]
    name: str


class RouteList(Struct):
    """Every route the app serves, as LiteLLM's ``/routes`` lists them."""

    routes: list[RouteRow]


class Readiness(Struct):
    """LiteLLM's readiness fields, and the sidecar's own (``plugins``, ``deployments``, ``version``)."""

    status: Literal["connected", "starting"]
    db: Literal["connected", "not connected"]
    cache: None
    litellm_version: str
    success_callbacks: list[str]
    plugins: int
    deployments: int
    version: str
    warning: str | UnsetType = UNSET


class DeploymentHealth(Struct):
    """One deployment's health: from the router's state, or (``?probe=true``) from one real call."""

    model: str
    model_name: str
    model_id: str
    litellm_params: Json
    healthy: bool
    cooldown_seconds_left: float | UnsetType = UNSET
    last_error: str | None | UnsetType = UNSET
    last_error_at: float | None | UnsetType = UNSET
    in_flight: int | UnsetType = UNSET
    requests_this_minute: int | UnsetType = UNSET
    tokens_this_minute: int | UnsetType = UNSET
    rpm: int | None | UnsetType = UNSET
    tpm: int | None | UnsetType = UNSET
    max_parallel_requests: int | None | UnsetType = UNSET
    probe: str | UnsetType = UNSET
    error: str | UnsetType = UNSET
    error_kind: str | UnsetType = UNSET
    latency_ms: float | UnsetType = UNSET


class HealthReport(Struct):
    """LiteLLM's ``/health`` answer."""

    healthy_endpoints: list[DeploymentHealth]
    unhealthy_endpoints: list[DeploymentHealth]
    healthy_count: int
    unhealthy_count: int
