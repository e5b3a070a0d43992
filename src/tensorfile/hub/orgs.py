"""The model repos of a hub owner (a user or an organisation), asked of each hub's official client.

Hugging Face: `HfApi.list_models(author=OWNER)` (`GET /api/models?author=OWNER`, paginated by the
client through the `Link` header; endpoint from HF_ENDPOINT, token from HF_TOKEN or the stored
login). ModelScope: `modelscope_hub.HubApi.list_repos("model", owner=OWNER)` (`GET
/openapi/v1/models?owner=OWNER`, endpoint from MODELSCOPE_ENDPOINT), which pages at most 3,000
repos of one owner: an owner with more is an error that says so rather than a silent cut.
"""

from __future__ import annotations

from .http import HubError, HubNotFound
from .listing import _within_deadline, hf_failure, ms_failure
from .refs import HUGGINGFACE, SCHEMES

MS_PAGE = 50  # the largest page ModelScope's OpenAPI serves
MS_LIMIT = 3000  # page_number * page_size may not exceed this


def parse_owner(text: str) -> tuple[str, str] | None:
    """(hub, owner) when `text` names a whole owner (`hf://org`, `ms://org/`), else None."""
    scheme, sep, rest = text.partition("://")
    owner = rest.strip("/")
    if not sep or scheme.lower() not in SCHEMES or not owner or "/" in owner or "@" in owner:
        return None
    return SCHEMES[scheme.lower()], owner


def list_owner_repos(hub: str, owner: str, token: str | None = None) -> list[str]:
    """The repo ids (`owner/name`) of one owner, sorted; HubError when the hub cannot say,
    HubNotFound when the owner has no model repos."""
    ids = _huggingface(owner, token) if hub == HUGGINGFACE else _modelscope(owner, token)
    if not ids:
        scheme = "hf" if hub == HUGGINGFACE else "ms"
        raise HubNotFound("no model repos for this owner (or no such owner)", f"{scheme}://{owner}")
    return sorted(set(ids))


def _huggingface(owner: str, token: str | None) -> list[str]:
    import huggingface_hub
    from huggingface_hub import constants

    endpoint = constants.ENDPOINT.rstrip("/")
    token = token or huggingface_hub.get_token()
    api = huggingface_hub.HfApi(endpoint=endpoint, token=token or False)
    where = f"hf://{owner}"
    try:
        return _within_deadline(lambda: [m.id for m in api.list_models(author=owner)], where)
    except Exception as exc:
        raise hf_failure(exc, endpoint, where) from None


def _modelscope(owner: str, token: str | None) -> list[str]:
    from modelscope_hub import errors
    from modelscope_hub.api import HubApi

    api = HubApi(token=token) if token else HubApi()
    endpoint = str(getattr(getattr(api, "_config", None), "endpoint", "") or "the ModelScope hub")
    where = f"ms://{owner}"
    ids: list[str] = []
    try:
        for number in range(1, MS_LIMIT // MS_PAGE + 1):
            page = _within_deadline(
                lambda n=number: api.list_repos("model", owner=owner, page_number=n, page_size=MS_PAGE),
                where,
            )
            if page.total_count > MS_LIMIT:
                raise HubError(
                    f"ModelScope lists at most {MS_LIMIT:,} repos of an owner and this one has "
                    f"{page.total_count:,}: name them in a @repos.txt list",
                    where,
                )
            ids.extend(r.repo_id for r in page.items if r.repo_id)
            if len(page.items) < MS_PAGE or len(ids) >= page.total_count:
                break
    except errors.NotExistError:
        return []
    except Exception as exc:
        raise ms_failure(exc, endpoint, where) from None
    return ids
