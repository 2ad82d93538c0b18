"""Schedule a Lightly selection run: the tutorial's selection config, checked offline, then sent
through the ``lightly`` package's own ``ApiWorkflowClient`` (lightly 1.5.26).

The token comes from ``LIGHTLY_TOKEN`` or a password field, is handed to the client only, and is
scrubbed from every message: the client sends it as a ``?token=`` query parameter, so URLs are
never logged or shown.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass, field, fields

from core.errors import ScheduleError, rules_line, validation_line, validation_problems
from core.secrets import mask, mask_structure
from core.lightly.config import validate_selection_config
from core.paths import environment_set

os.environ.setdefault("LIGHTLY_DID_VERSION_CHECK", "True")  # no background version check on import


class _ScrubTokens(logging.Filter):
    """urllib3 logs retried URLs, and the client puts the token in the URL: mask secrets in records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


CLIENT_LOGGERS = ("urllib3", "lightly.openapi_generated.swagger_client")  # a new client adds stderr handlers to these
_CLIENT_LOCK = threading.Lock()
API_TIMEOUT_S = (5, 30)  # (connect, read) seconds of each request to the Lightly API

for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager", "lightly"):
    logging.getLogger(_name).addFilter(_ScrubTokens())

# states after which a run changes no more (lightly's DockerRunState, plus "not found")
TERMINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "ABORTED", "CANCELED_OR_NOT_EXISTING"}


@dataclass(frozen=True)
class S3DelegatedAccess:
    region: str
    role_arn: str
    external_id: str


@dataclass(frozen=True)
class S3Keys:
    region: str
    access_key: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class GcsCredentials:
    project_id: str
    credentials: str = field(repr=False)  # the service account JSON, as a string


@dataclass(frozen=True)
class AzureCredentials:
    account_name: str
    sas_token: str = field(repr=False)


Credentials = S3DelegatedAccess | S3Keys | GcsCredentials | AzureCredentials


@dataclass(frozen=True)
class ScheduleRequest:
    dataset_name: str
    input_url: str  # where the videos are, e.g. s3://bucket/flicker_input/
    lightly_url: str  # where .lightly is, e.g. s3://bucket/flicker_lightly/
    credentials: Credentials
    selection_config: dict
    worker_config: dict = field(default_factory=dict)
    lightly_config: dict = field(default_factory=dict)


def _datasource_call(request: ScheduleRequest, purpose: str, url: str) -> tuple[str, dict]:
    c = request.credentials
    if isinstance(c, S3DelegatedAccess):
        return "set_s3_delegated_access_config", {"resource_path": url, "region": c.region, "role_arn": c.role_arn,
                                                  "external_id": c.external_id, "purpose": purpose}
    if isinstance(c, S3Keys):
        return "set_s3_config", {"resource_path": url, "region": c.region, "access_key": c.access_key,
                                 "secret_access_key": c.secret_access_key, "purpose": purpose}
    if isinstance(c, GcsCredentials):
        return "set_gcs_config", {"resource_path": url, "project_id": c.project_id, "credentials": c.credentials,
                                  "purpose": purpose}
    container = url.split("://", 1)[-1]
    return "set_azure_config", {"container_name": container, "account_name": c.account_name, "sas_token": c.sas_token,
                                "purpose": purpose}


SECRET_ARGUMENTS = ("secret_access_key", "credentials", "sas_token")

# The URL schemes each kind of access reads (Lightly's S3 and GCS datasources take s3:// and gs:// paths; Azure's takes the
# container and prefix, written here as push writes them), and what the user calls that access.
URL_SCHEMES = {S3DelegatedAccess: ("s3",), S3Keys: ("s3",), GcsCredentials: ("gs",), AzureCredentials: ("az", "abfs", "abfss")}
ACCESS_NAMES = {S3DelegatedAccess: "S3 delegated access", S3Keys: "S3 keys", GcsCredentials: "GCS credentials",
                AzureCredentials: "Azure access"}

# What the user calls each field of a request (the app's labels; messages name fields by these).
LABELS = {"dataset_name": "Dataset name", "input_url": "Input datasource URL", "lightly_url": "Lightly datasource URL",
          "region": "Bucket region", "role_arn": "Role ARN", "external_id": "External ID", "access_key": "S3 access key",
          "secret_access_key": "S3 secret key", "project_id": "GCS project", "credentials": "GCS credentials",
          "account_name": "Azure account", "sas_token": "Azure SAS token"}
# The same fields as Lightly's API models name them, and what their regular expressions want.
API_LABELS = {"name": LABELS["dataset_name"], "fullPath": "Datasource URL", "s3Region": LABELS["region"],
              "s3ARN": LABELS["role_arn"], "s3ExternalId": LABELS["external_id"], "s3AccessKeyId": LABELS["access_key"],
              "s3SecretAccessKey": LABELS["secret_access_key"], "gcsProjectId": LABELS["project_id"],
              "gcsCredentials": LABELS["credentials"], "accountName": LABELS["account_name"],
              "accountKey": LABELS["sas_token"]}
API_HINTS = {"name": "must start with a letter or digit and hold only letters, digits, spaces, _ and -",
             "s3ARN": "must look like arn:aws:iam::123456789012:role/NAME",
             "s3ExternalId": "may hold only letters, digits and _+=,.@:/-"}
TOKEN_LABEL = "Lightly token"


def missing_fields(request: ScheduleRequest, token: str | None = None, token_needed: bool = False) -> list[str]:
    """Labels of the required fields left empty, in the order the app shows them (the token too when
    it is needed and neither given nor in ``LIGHTLY_TOKEN``)."""
    values = {"dataset_name": request.dataset_name, "input_url": request.input_url, "lightly_url": request.lightly_url}
    values.update({f.name: getattr(request.credentials, f.name) for f in fields(request.credentials)})
    missing = [LABELS[name] for name, value in values.items() if not str(value or "").strip()]
    if token_needed and not (token or os.environ.get("LIGHTLY_TOKEN")):
        missing.append(f"{TOKEN_LABEL} (or set LIGHTLY_TOKEN)")
    return missing


def _api_datasource(request: ScheduleRequest, purpose: str, url: str) -> dict:
    """The datasource body lightly's ``set_*_config`` builds (lightly 1.5.26), to check it with
    lightly's own model before anything is sent; a test holds it equal to the recorded request."""
    c = request.credentials
    if isinstance(c, S3DelegatedAccess):
        fields_ = {"type": "S3DelegatedAccess", "s3Region": c.region, "s3ARN": c.role_arn, "s3ExternalId": c.external_id}
    elif isinstance(c, S3Keys):
        fields_ = {"type": "S3", "s3Region": c.region, "s3AccessKeyId": c.access_key,
                   "s3SecretAccessKey": c.secret_access_key}
    elif isinstance(c, GcsCredentials):
        fields_ = {"type": "GCS", "gcsProjectId": c.project_id, "gcsCredentials": c.credentials}
    else:
        fields_ = {"type": "AZURE", "accountName": c.account_name, "accountKey": c.sas_token}
        url = url.split("://", 1)[-1]
    return {**fields_, "fullPath": url, "purpose": purpose}


def check_fields(request: ScheduleRequest, token: str | None = None, token_needed: bool = False) -> None:
    """Every field rule checked offline, before the client sends anything: required fields (all the
    missing ones named in one line), then Lightly's own field rules (its API models: dataset name,
    region, role ARN, external id, ...) in one line naming each field."""
    missing = missing_fields(request, token, token_needed)
    if missing:
        raise ScheduleError(f"Missing: {', '.join(missing)}")
    wrong = _url_problems(request)
    if wrong:
        raise ScheduleError(mask("; ".join(wrong), secret_values(request)))
    from lightly.openapi_generated.swagger_client.models import DatasetCreateRequest, DatasourceConfig

    problems = []
    for check in (lambda: DatasetCreateRequest(name=request.dataset_name, type="Videos"),
                  lambda: DatasourceConfig.from_dict(_api_datasource(request, "INPUT", request.input_url)),
                  lambda: DatasourceConfig.from_dict(_api_datasource(request, "LIGHTLY", request.lightly_url))):
        try:
            check()
        except ValueError as exc:  # pydantic's ValidationError
            problems += validation_problems(exc, API_LABELS, API_HINTS)
    if problems:
        raise ScheduleError(mask(rules_line(problems), secret_values(request)))


def _url_problems(request: ScheduleRequest) -> list[str]:
    """Each datasource URL that is not a bucket URL the request's access reads: a local path (or another cloud's URL)
    went out as the datasource's path, which Lightly cannot read."""
    from core.bounded import brief

    schemes = URL_SCHEMES[type(request.credentials)]
    example = f"{schemes[0]}://bucket/prefix/" if schemes[0] != "az" else "az://container/prefix/"
    problems = []
    for name in ("input_url", "lightly_url"):
        url = getattr(request, name).strip()
        scheme, _, rest = url.partition("://")
        if not rest and isinstance(request.credentials, AzureCredentials) and _lightly_azure_path(url):
            continue  # Lightly's own spelling of an Azure datasource: the container and prefix, no scheme
        if not rest.strip("/") or scheme.lower() not in schemes:
            starts = ", ".join(f"{s}://" for s in schemes).replace(", abfss", " or abfss")
            problems.append(f"{LABELS[name]} must start with {starts} for {ACCESS_NAMES[type(request.credentials)]} "
                            f"(such as {example}), got {brief(url, 80)}")
    return problems


def _lightly_azure_path(url: str) -> bool:
    """``my-container/path/to/data``, as Lightly's set_azure_config takes its container_name (the scheme, when given, is
    dropped before it is sent: _datasource_call): a container name (3-63 lowercase letters, digits and dashes) first,
    never a local path (/data/lightly, ./x, ~/x)."""
    return re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9](?:/.*)?", url) is not None


def check_request(request: ScheduleRequest, token: str | None = None, token_needed: bool = False) -> None:
    """:func:`check_fields`, then the selection config: all a run is checked against before it is sent."""
    check_fields(request, token, token_needed)
    validate_selection_config(request.selection_config)


def secret_values(request: ScheduleRequest) -> list[str]:
    """Every secret the client may send for this request (masked by value wherever it appears)."""
    return [str(getattr(request.credentials, name)) for name in SECRET_ARGUMENTS
            if getattr(request.credentials, name, None)]


def shown_config(request: ScheduleRequest, token: str | None = None) -> str:
    """The request's selection config as the dry run and the Export page show it: every secret of
    the request, the token and the environment's masked by value (a strategy may quote one)."""
    from core.lightly.config import describe

    return mask(describe(request.selection_config), [*secret_values(request), *([token] if token else [])])


def planned_calls(request: ScheduleRequest) -> list[tuple[str, dict]]:
    """The client calls a run makes, in order (what ``--dry-run`` prints, secrets masked). When a
    dataset of that name exists, ``set_dataset_id_by_name`` takes the place of ``create_dataset``."""
    calls: list[tuple[str, dict]] = [
        ("create_dataset", {"dataset_name": request.dataset_name, "dataset_type": "VIDEOS"}),
        _datasource_call(request, "INPUT", request.input_url),
        _datasource_call(request, "LIGHTLY", request.lightly_url),
        ("schedule_compute_worker_run", {"worker_config": request.worker_config,
                                         "selection_config": request.selection_config,
                                         "lightly_config": request.lightly_config}),
    ]
    masked = [(name, {k: ("***" if k in SECRET_ARGUMENTS else v) for k, v in args.items()}) for name, args in calls]
    return mask_structure(masked, secret_values(request))


def _explain(exc: BaseException, secrets: list[str]) -> ScheduleError:
    """One line for what went wrong. The client retries a failing call and then raises its own
    error, whose text repeats the call's arguments and ends in terminal colour codes: the HTTP
    answer it gave up on is found down the chain of causes instead."""
    from lightly.openapi_generated.swagger_client.rest import ApiException

    answer = next((cause for cause in _causes(exc) if isinstance(cause, ApiException)), None)
    if answer is not None:
        if answer.status in (401, 403):
            return ScheduleError("Lightly rejected the token (check LIGHTLY_TOKEN or the token field)")
        reason = _plain(mask(str(answer.body or answer.reason or ""), secrets))[:200]
        return ScheduleError(f"The Lightly API refused the request (HTTP {answer.status}){': ' + reason if reason else ''}")
    text = _plain(mask(str(exc), secrets))
    if "Max retries" in text or any("Connection" in type(cause).__name__ or isinstance(cause, (ConnectionError, TimeoutError))
                                    for cause in _causes(exc)):
        return ScheduleError("Cannot reach the Lightly API (check the network, or LIGHTLY_SERVER_LOCATION)")
    return ScheduleError(f"The Lightly client failed: {text.splitlines()[0] if text else type(exc).__name__}"[:300])


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was explicitly raised from (``raise ... from``, as the client's retries
    do), outermost first; at most 10, and a cycle ends the walk. Not what it merely happened
    during: an answer the client had caught and handled (a 404 while polling a run) is no cause."""
    chain = [exc]
    while len(chain) < 10 and (cause := chain[-1].__cause__) is not None and cause not in chain:
        chain.append(cause)
    return chain


def _plain(text: str) -> str:
    """``text`` without terminal escape sequences, on one line."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text).split())


def schedule(request: ScheduleRequest, token: str | None = None, server: str | None = None) -> tuple[str, str]:
    """Create (or reuse) the VIDEOS dataset, configure both datasources and schedule the run.
    Returns ``(dataset_id, scheduled_run_id)``. ``server``: the API's URL (default: LIGHTLY_SERVER_LOCATION or Lightly's)."""
    check_request(request, token, token_needed=True)
    client, token = _client(token, server=server)
    secrets = [token, *secret_values(request)]
    try:
        from lightly.openapi_generated.swagger_client import DatasetType, DatasourcePurpose

        if client.dataset_name_exists(dataset_name=request.dataset_name):
            client.set_dataset_id_by_name(request.dataset_name)
        else:
            client.create_dataset(dataset_name=request.dataset_name, dataset_type=DatasetType.VIDEOS)
        for purpose, url in ((DatasourcePurpose.INPUT, request.input_url), (DatasourcePurpose.LIGHTLY, request.lightly_url)):
            name, args = _datasource_call(request, purpose, url)
            getattr(client, name)(**args)
        run_id = client.schedule_compute_worker_run(
            worker_config=request.worker_config,
            selection_config=request.selection_config,
            lightly_config=request.lightly_config,
        )
        return client.dataset_id, run_id
    except ScheduleError:
        raise
    except ValueError as exc:  # the client's own checks (pydantic): one line naming the field
        raise ScheduleError(mask(validation_line(exc, API_LABELS, API_HINTS), secrets)) from None
    except Exception as exc:
        raise _explain(exc, secrets) from None


def _client(token: str | None, dataset_id: str | None = None, server: str | None = None):
    from lightly.api import ApiWorkflowClient

    token = token or os.environ.get("LIGHTLY_TOKEN", "")
    if not token:
        raise ScheduleError("No Lightly token: set LIGHTLY_TOKEN or enter it in the token field")
    loggers = [logging.getLogger(name) for name in CLIENT_LOGGERS]
    with _CLIENT_LOCK:  # two sessions building clients at once would each see, and keep, the other's handlers
        before = [(list(logger.handlers), logger.level) for logger in loggers]
        try:
            # the client reads its server from the environment once, while it is made: set here, under the lock, a
            # dry run's recorder is this client's alone (set for the whole dry run, it took another session's schedule)
            with environment_set("LIGHTLY_SERVER_LOCATION", server):
                client = ApiWorkflowClient(token=token, dataset_id=dataset_id)
            # Lightly waits 3 minutes a request by default, and tries again: a server that takes the
            # connection and never answers held `schedule` silent for over 4 minutes.
            client.api_client.rest_client.timeout = API_TIMEOUT_S
            return client, token
        finally:  # each client adds stderr handlers to these loggers and sets their level: put both back
            for logger, (handlers, level) in zip(loggers, before):
                for handler in logger.handlers[:]:
                    if handler not in handlers:
                        logger.removeHandler(handler)
                logger.setLevel(level)


def run_state(dataset_id: str, run_id: str, token: str | None = None) -> tuple[str, str]:
    """``(state, message)`` of a scheduled run: OPEN until a Lightly Worker picks it up, then the
    worker's states up to COMPLETED or FAILED."""
    client, token = _client(token, dataset_id)
    try:
        info = client.get_compute_worker_run_info(run_id)
    except Exception as exc:
        raise _explain(exc, [token]) from None
    state = getattr(info.state, "value", info.state)
    return str(state), info.message or ""


def selected_frames(dataset_id: str, tag_name: str = "initial-tag", token: str | None = None) -> list[dict]:
    """The selected frames of a finished run: ``[{"fileName", "readUrl", "datasourceUrl"}]``. The read
    URLs are signed: hand them to the labelling tool, do not log them."""
    client, token = _client(token, dataset_id)
    try:
        return client.export_filenames_and_read_urls_by_tag_name(tag_name=tag_name)
    except ValueError as exc:  # no such tag
        raise ScheduleError(mask(str(exc), [token]).splitlines()[0]) from None
    except Exception as exc:
        raise _explain(exc, [token]) from None


def dry_run(request: ScheduleRequest) -> list[dict]:
    """The exact HTTP requests a run would send, from the real client talking to a local recorder
    (nothing leaves this machine); the token and every secret the request holds are masked by value."""
    from core.lightly.recorder import LightlyRecorder

    with LightlyRecorder() as recorder:
        schedule(request, token="dry-run-token", server=recorder.url)
    secrets = ["dry-run-token", *secret_values(request)]
    return [mask_structure({"method": r["method"], "path": r["path"], "query": r["query"], "body": r["body"]}, secrets)
            for r in recorder.requests]
