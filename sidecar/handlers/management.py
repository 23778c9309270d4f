"""Runtime model management: ``/model/new``, ``/model/update``, ``PATCH /model/{id}/update``,
``/model/delete``. Changes are committed to SQLite before they are acknowledged, and apply to
the next request; requests in flight finish on the deployment they started with."""

from __future__ import annotations

import asyncio
import functools
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from sidecar import keys
from sidecar.config import ConfigError, check_deployment_fields, resolve_env
from sidecar.errors import SidecarError
from sidecar.http import convert, json_response, read_json_object
from sidecar.info import model_info_row
from sidecar.registry import Deployment, build_deployment, new_deployment_id, own_model_info
from sidecar.secrets import is_secret_param
from sidecar.sync import changing


ModelName = Annotated[str, Meta(pattern=r"\S", description="The model group it serves (not blank).")]
LiteLLMParams = Annotated[dict[str, Any], Meta(extra_json_schema={
    "required": ["model"], "properties": {"model": {"type": "string", "minLength": 1}},
    "description": "LiteLLM's params: `model` is `<provider>/<upstream model>`; `os.environ/NAME` reads a variable."})]


class NewDeployment(msgspec.Struct):
    model_name: ModelName
    litellm_params: LiteLLMParams
    model_info: dict[str, Any] | None = None


class UpdateDeployment(msgspec.Struct):
    """The fields to change (``PATCH /model/{id}/update``)."""

    model_name: ModelName | None = None
    litellm_params: dict[str, Any] | None = None
    model_info: dict[str, Any] | None = None


class ReplaceDeployment(msgspec.Struct):
    """``POST /model/update``: ``model_info.id`` names the deployment."""

    model_info: Annotated[dict[str, Any], Meta(extra_json_schema={
        "required": ["id"], "properties": {"id": {"type": "string", "minLength": 1}}})]
    model_name: ModelName | None = None
    litellm_params: LiteLLMParams | None = None


class DeleteDeployment(msgspec.Struct):
    id: str


def _build(request: web.Request, model_name: str, params: dict[str, Any], info: dict[str, Any],
           id: str) -> Deployment:
    """A deployment from stored (unresolved) params; 400s name the field at fault."""
    if not model_name.strip():
        raise SidecarError(400, "model_name must not be empty", param="model_name", code="invalid_value")
    if not isinstance(params.get("model"), str) or not params["model"]:
        raise SidecarError(400, "litellm_params.model is required: a string such as 'openai/gpt-4o-mini'",
                           param="litellm_params.model", code="invalid_value")
    try:
        resolved = resolve_env(params, "litellm_params", "request")
        info = check_deployment_fields(resolved, info, "$", "request")
    except RecursionError:
        raise SidecarError(400, "litellm_params or model_info is nested too deeply", param="litellm_params",
                           code="invalid_value") from None
    except ConfigError as exc:
        path = (exc.path or "$.litellm_params").removeprefix("$.")
        raise SidecarError(400, f"{path}: {exc.text}" if exc.text else str(exc).removeprefix("request: "),
                           param=path, code="invalid_value") from None
    registry = request.app[keys.REGISTRY]
    return build_deployment(registry.providers, model_name=model_name, litellm_params=resolved,
                            model_info=info, id=id, db_model=True, stored_params=params)


def _editable(request: web.Request, deployment_id: str) -> Deployment:
    dep = request.app[keys.REGISTRY].get(deployment_id)
    if dep is None:
        raise SidecarError(404, f"no deployment with id {deployment_id!r}", param="id", code="model_not_found")
    if not dep.db_model:
        raise SidecarError(409, f"deployment {deployment_id!r} comes from the config file "
                                f"({request.app[keys.CONFIG].source}); edit the config file and restart to change it",
                           param="id", code="config_deployment")
    return dep


def _answer(request: web.Request, dep: Deployment) -> web.Response:
    return json_response(model_info_row(dep, request.app[keys.SYNCED_MODELS]))


def _completes_if_the_client_leaves(handler):
    """The server cancels a handler whose client disconnects; a change to the database and
    the registry must still finish as a whole (or not start), so it runs shielded."""

    @functools.wraps(handler)
    async def shielded(request: web.Request) -> web.Response:
        return await asyncio.shield(handler(request))

    return shielded


@_completes_if_the_client_leaves
async def model_new(request: web.Request) -> web.Response:
    new = convert(await read_json_object(request), NewDeployment)
    info = dict(new.model_info or {})
    deployment_id = str(info.get("id") or new_deployment_id())
    async with changing(request.app):
        return await _insert(request, new, info, deployment_id)


async def _insert(request: web.Request, new: NewDeployment, info: dict[str, Any], deployment_id: str) -> web.Response:
    registry = request.app[keys.REGISTRY]
    if registry.get(deployment_id) is not None:
        raise SidecarError(409, f"a deployment with id {deployment_id!r} already exists", param="model_info.id",
                           code="duplicate_id")
    dep = _build(request, new.model_name, new.litellm_params, info, deployment_id)
    try:
        await request.app[keys.DATABASE].insert_deployment(deployment_id, dep.model_name, new.litellm_params,
                                                           own_model_info(dep.model_info))
    except Exception as exc:
        if "UNIQUE" in str(exc):
            raise SidecarError(409, f"a deployment with id {deployment_id!r} already exists",
                               param="model_info.id", code="duplicate_id") from None
        raise
    registry.put(dep)
    return _answer(request, dep)


@_completes_if_the_client_leaves
async def model_update(request: web.Request) -> web.Response:
    """Fields given replace the stored ones (credentials not sent are kept: info answers never
    show them, so a read-modify-write must not lose them)."""
    update = convert(await read_json_object(request), ReplaceDeployment)
    deployment_id = update.model_info.get("id")
    if not deployment_id:
        raise SidecarError(400, "model_info.id names the deployment to update", param="model_info.id",
                           code="invalid_value")
    async with changing(request.app):
        old = _editable(request, str(deployment_id))
        params = old.stored_params
        if update.litellm_params is not None:
            secret = old.provider.secret_params()
            kept = {k: v for k, v in params.items()
                    if (is_secret_param(k) or k in secret) and k not in update.litellm_params}
            params = {**update.litellm_params, **kept}
        # model_info must carry the id; holding nothing else, it only names the deployment
        given_info = own_model_info(update.model_info)
        info = given_info if given_info else own_model_info(old.model_info)
        return await _replace(request, old, update.model_name or old.model_name, params, info)


@_completes_if_the_client_leaves
async def model_patch(request: web.Request) -> web.Response:
    """Only the fields sent change; ``litellm_params`` and ``model_info`` merge key by key."""
    update = convert(await read_json_object(request), UpdateDeployment)
    async with changing(request.app):
        old = _editable(request, request.match_info["model_id"])
        params = {**old.stored_params, **(update.litellm_params or {})}
        info = {**own_model_info(old.model_info), **(update.model_info or {})}
        return await _replace(request, old, update.model_name or old.model_name, params, info)


async def _replace(request: web.Request, old: Deployment, model_name: str, params: dict[str, Any],
                   info: dict[str, Any]) -> web.Response:
    info = own_model_info(info)
    dep = _build(request, model_name, params, info, old.id)
    await request.app[keys.DATABASE].update_deployment(old.id, dep.model_name, params, own_model_info(dep.model_info))
    request.app[keys.REGISTRY].put(dep)
    return _answer(request, dep)


@_completes_if_the_client_leaves
async def model_delete(request: web.Request) -> web.Response:
    body = convert(await read_json_object(request), DeleteDeployment)
    async with changing(request.app):
        dep = _editable(request, body.id)
        await request.app[keys.DATABASE].delete_deployment(dep.id)
        request.app[keys.REGISTRY].remove(dep.id)
    return json_response({"message": f"deleted deployment {dep.id}", "id": dep.id, "model_name": dep.model_name})
