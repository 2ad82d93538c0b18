"""Scheduling through lightly's own ApiWorkflowClient against a local fake of the Lightly API
(the only mock in the suite: the true network edge). The recorded requests are checked."""
import dataclasses
import json
import logging
import subprocess
import sys

import pytest

from core.paths import ROOT
from core.errors import ScheduleError, SelectionError, validation_line
from core.lightly.config import build_selection_config, validate_selection_config
from core.lightly.schedule import (S3DelegatedAccess, ScheduleRequest, check_fields, missing_fields, planned_calls,
                                   schedule)
from fake_lightly import CONFIG_ID, DATASET_ID, GOOD_TOKEN, RUN_ID, FakeLightly

ACCESS = S3DelegatedAccess("eu-central-1", "arn:aws:iam::123456789012:role/lightly-access", "flicker-external-id")


def request(config=None, name="flicker-demo"):
    return ScheduleRequest(name, "s3://bucket/flicker_input/", "s3://bucket/flicker_lightly/", ACCESS,
                           config or build_selection_config(100, "yolov8_detection", 1.0, 0.5, 2.0))


def test_config_builder_follows_the_tutorial():
    config = build_selection_config(100, "yolov8_detection", diversity=1.0, least_confidence=0.5, flicker_strength=2.0)
    assert config == {"n_samples": 100, "strategies": [
        {"input": {"type": "EMBEDDINGS", "task": "yolov8_detection"}, "strategy": {"type": "DIVERSITY", "strength": 1.0}},
        {"input": {"type": "SCORES", "task": "yolov8_detection", "score": "objectness_least_confidence"},
         "strategy": {"type": "WEIGHTS", "strength": 0.5}},
        {"input": {"type": "METADATA", "key": "flickering"}, "strategy": {"type": "WEIGHTS", "strength": 2.0}},
    ]}
    validate_selection_config(config)
    no_diversity = build_selection_config(10, "t", diversity=0, extra_strategies=[
        {"input": {"type": "RANDOM", "random_seed": 42}, "strategy": {"type": "WEIGHTS"}}])
    assert [s["input"]["type"] for s in no_diversity["strategies"]] == ["SCORES", "METADATA", "RANDOM"]
    validate_selection_config(no_diversity)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"n_samples": -1, "strategies": [{"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS"}}]}, "positive integer"),
        ({"strategies": [{"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS"}}]}, "needs n_samples"),
        ({"n_samples": 5, "strategies": []}, "at least one strategy"),
        ({"n_samples": 5, "strategies": [{"input": {"type": "SCORES", "task": "t"}, "strategy": {"type": "WEIGHTS"}}]},
         "needs a task and a score"),
        ({"n_samples": 5, "strategies": [{"input": {"type": "METADATA"}, "strategy": {"type": "WEIGHTS"}}]}, "needs a key"),
        ({"n_samples": 5, "strategies": [{"input": {"type": "SALIENCY"}, "strategy": {"type": "WEIGHTS"}}]},
         "Invalid selection config"),
        ({"n_samples": 5, "strategies": [{"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS"}}], "bogus": 1},
         "Invalid selection config"),
        ({"n_samples": 5, "strategies": [{"input": {"type": "RANDOM"}, "strategy": {"type": "WEIGHTS", "strength": "x"}}]},
         "strength must be a number"),
    ],
)
def test_bad_configs_are_rejected_offline(config, message):
    with pytest.raises(SelectionError, match=message):
        validate_selection_config(config)


def test_schedule_creates_dataset_datasources_and_run(monkeypatch):
    with FakeLightly() as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        assert schedule(request(), GOOD_TOKEN) == (DATASET_ID, RUN_ID)
    calls = [(r["method"], r["path"]) for r in fake.requests]
    assert calls == [
        ("GET", "/v1/versions/pip/minimum"),
        ("GET", "/v1/datasets/query/name/flicker-demo"),
        ("GET", "/v1/datasets/query/name/flicker-demo"),
        ("POST", "/v1/datasets"),
        ("PUT", f"/v1/datasets/{DATASET_ID}/datasource"),
        ("PUT", f"/v1/datasets/{DATASET_ID}/datasource"),
        ("POST", "/v1/docker/worker/config/vX"),
        ("POST", f"/v1/datasets/{DATASET_ID}/docker/worker/schedule"),
    ]
    bodies = [r["body"] for r in fake.requests]
    assert bodies[3] == {"name": "flicker-demo", "type": "Videos", "creator": "USER_PIP"}
    input_source, lightly_source = bodies[4], bodies[5]
    assert (input_source["purpose"], input_source["type"], input_source["fullPath"]) == (
        "INPUT", "S3DelegatedAccess", "s3://bucket/flicker_input/")
    assert (lightly_source["purpose"], lightly_source["fullPath"]) == ("LIGHTLY", "s3://bucket/flicker_lightly/")
    assert lightly_source["s3ARN"] == ACCESS.role_arn and lightly_source["s3ExternalId"] == ACCESS.external_id
    selection = bodies[6]["config"]["selection"]
    assert selection["nSamples"] == 100
    assert [s["input"]["type"] for s in selection["strategies"]] == ["EMBEDDINGS", "SCORES", "METADATA"]
    assert selection["strategies"][2]["input"]["key"] == "flickering"
    assert selection["strategies"][2]["strategy"]["strength"] == 2.0
    assert bodies[7]["configId"] == CONFIG_ID
    assert all(r["token"] == GOOD_TOKEN for r in fake.requests[1:])  # the token travels as ?token=


def test_an_existing_dataset_is_reused(monkeypatch):
    with FakeLightly(existing_datasets=["flicker-demo"]) as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        assert schedule(request(), GOOD_TOKEN) == (DATASET_ID, RUN_ID)
    assert ("POST", "/v1/datasets") not in [(r["method"], r["path"]) for r in fake.requests]


def test_bad_token_is_a_clear_message_without_the_token(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeLightly() as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        with pytest.raises(ScheduleError, match="rejected the token") as info:
            schedule(request(), "wrong-token-never-shown")
    assert "wrong-token-never-shown" not in str(info.value)
    assert "wrong-token-never-shown" not in caplog.text


@pytest.mark.parametrize("status", [500, 400])
def test_an_http_error_after_the_clients_retries_is_one_plain_line(monkeypatch, status):
    """The client retries, then raises its own error (the call's arguments, terminal colour codes):
    the message gives the status and the server's answer once, with no escape sequence."""
    from lightly.api import retry_utils

    monkeypatch.setattr(retry_utils.Retry, "calculate_backoff", lambda self, retries, ex: 0.0)  # the retries, not their waits
    with FakeLightly(failing=status) as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        with pytest.raises(ScheduleError) as info:
            schedule(request(), GOOD_TOKEN)
    message = str(info.value)
    assert message.startswith(f"The Lightly API refused the request (HTTP {status})"), message
    assert "the database is down for maintenance" in message
    assert "\x1b" not in message and "\n" not in message and GOOD_TOKEN not in message and "Scheduling failed" not in message


def test_a_network_failure_after_a_handled_answer_is_not_blamed_on_that_answer():
    """Polling a run the worker has not picked up: the client catches a 404 and asks elsewhere; when
    that second call loses the connection, the 404 is only the context, not the cause."""
    from lightly.openapi_generated.swagger_client.rest import ApiException

    from core.lightly.schedule import _explain

    try:
        try:
            raise ApiException(status=404, reason="Not Found")
        except ApiException:
            raise ConnectionResetError("Connection reset by peer")
    except ConnectionResetError as exc:
        assert str(_explain(exc, [])) == "Cannot reach the Lightly API (check the network, or LIGHTLY_SERVER_LOCATION)"


def test_clients_leave_the_loggers_as_they_found_them(monkeypatch):
    """Each lightly client adds stderr handlers to urllib3's logger: a server would print every
    retried request once more per click."""
    from core.lightly.schedule import CLIENT_LOGGERS, _client

    monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", "http://127.0.0.1:9")
    logging.getLogger("urllib3").setLevel(logging.DEBUG)  # as a user debugging a proxy would
    try:
        before = [(len(logging.getLogger(name).handlers), logging.getLogger(name).level) for name in CLIENT_LOGGERS]
        for _ in range(3):
            _client(GOOD_TOKEN)
        assert [(len(logging.getLogger(name).handlers), logging.getLogger(name).level) for name in CLIENT_LOGGERS] == before
    finally:
        logging.getLogger("urllib3").setLevel(logging.NOTSET)


def test_unreachable_server_is_a_clear_message_and_logs_no_token(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", "http://127.0.0.1:9")
    with pytest.raises(ScheduleError, match="Cannot reach the Lightly API") as info:
        schedule(request(), "secret-token-123")
    assert "secret-token-123" not in str(info.value) and "secret-token-123" not in caplog.text
    assert "token=***" in caplog.text  # urllib3 logged the retried URL, scrubbed


def test_a_server_that_never_answers_is_a_clear_message_not_a_silent_wait(monkeypatch):
    """A server that takes the connection and never answers held `schedule` silent for over four
    minutes (Lightly waits 3 minutes a request, then tries again); now API_TIMEOUT_S a request."""
    import socket
    import time

    monkeypatch.setattr("core.lightly.schedule.API_TIMEOUT_S", (1, 1))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)  # taken by the kernel, never answered
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", f"http://127.0.0.1:{server.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(ScheduleError, match="Cannot reach the Lightly API"):
            schedule(request(), "secret-token-123")
    assert time.monotonic() - started < 60


def test_lightly_field_rules_are_checked_before_anything_is_sent(monkeypatch):
    with FakeLightly() as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        with pytest.raises(ScheduleError) as info:
            schedule(request(name="d"), GOOD_TOKEN)
    assert str(info.value) == "Dataset name must be at least 3 characters (Lightly's rule)"
    assert fake.requests == []


@pytest.mark.parametrize("access, message", [
    (S3DelegatedAccess("eu-central-1", ACCESS.role_arn, "short"),
     "External ID must be at least 10 characters (Lightly's rule)"),
    (S3DelegatedAccess("eu-central-1", "arn:aws:iam::12:role/x", ACCESS.external_id),
     "Role ARN must look like arn:aws:iam::123456789012:role/NAME (Lightly's rule)"),
    (S3DelegatedAccess("eu-central-1", ACCESS.role_arn, "flicker external id"),
     "External ID may hold only letters, digits and _+=,.@:/- (Lightly's rule)"),
    (S3DelegatedAccess("mars-north-1", "not-an-arn", "short"),
     "Bucket region must be one of 30 values such as us-east-2, us-east-1, us-west-1; External ID must be at least "
     "10 characters; Role ARN must be at least 12 characters (Lightly's rules)"),
])
def test_field_rules_are_one_line_naming_the_field(access, message):
    bad = ScheduleRequest("flicker-d", "s3://b/i/", "s3://b/l/", access, build_selection_config(10, "t"))
    with pytest.raises(ScheduleError) as info:
        check_fields(bad)
    assert str(info.value) == message


def test_missing_fields_are_named_in_one_line(monkeypatch):
    monkeypatch.delenv("LIGHTLY_TOKEN", raising=False)
    empty = ScheduleRequest("flicker-d", "", " ", S3DelegatedAccess("eu-central-1", "", ""), build_selection_config(10, "t"))
    assert missing_fields(empty) == ["Input datasource URL", "Lightly datasource URL", "Role ARN", "External ID"]
    assert missing_fields(request(), token_needed=True) == ["Lightly token (or set LIGHTLY_TOKEN)"]
    assert missing_fields(request(), token="t", token_needed=True) == []
    monkeypatch.setenv("LIGHTLY_TOKEN", "from-the-environment")
    assert missing_fields(request(), token_needed=True) == []
    with pytest.raises(ScheduleError, match="^Missing: Input datasource URL, Lightly datasource URL, Role ARN, External ID$"):
        check_fields(empty)


def test_the_client_own_checks_would_have_said_the_same(monkeypatch):
    """Offline checks build the body lightly's client sends: equal to what it records in a dry run."""
    from core.lightly.schedule import _api_datasource, dry_run

    sent = [r["body"] for r in dry_run(request()) if r["method"] == "PUT"]
    assert [{k: v for k, v in body.items() if k != "thumbSuffix"} for body in sent] == [
        _api_datasource(request(), purpose, url) for purpose, url in
        (("INPUT", "s3://bucket/flicker_input/"), ("LIGHTLY", "s3://bucket/flicker_lightly/"))]


def test_a_pydantic_error_from_the_client_is_one_line_naming_the_field():
    from lightly.openapi_generated.swagger_client.models import DatasourceConfigS3DelegatedAccess

    with pytest.raises(ValueError) as info:
        DatasourceConfigS3DelegatedAccess(purpose="INPUT", type="S3DelegatedAccess", fullPath="s3://b/", s3Region="eu-central-1",
                                          s3ExternalId="short", s3ARN=ACCESS.role_arn)
    line = validation_line(info.value, {"s3ExternalId": "External ID"})
    assert line == "External ID must be at least 10 characters (Lightly's rule)"
    with pytest.raises(SelectionError) as info:
        validate_selection_config({"n_samples": 3, "strategies": [{"input": {"type": "FOO"}, "strategy": {"type": "WEIGHTS"}}]})
    assert str(info.value) == ("Invalid selection config: type must be one of EMBEDDINGS, SCORES, METADATA, PREDICTIONS, "
                               "RANDOM (Lightly's rule)")


def test_missing_token(monkeypatch):
    monkeypatch.delenv("LIGHTLY_TOKEN", raising=False)
    with pytest.raises(ScheduleError, match="Missing: Lightly token"):
        schedule(request())


def test_dry_run_lists_calls_and_sends_nothing(monkeypatch):
    calls = planned_calls(request())
    assert [name for name, _ in calls][1:] == ["set_s3_delegated_access_config"] * 2 + ["schedule_compute_worker_run"]
    # a strategy that quotes a secret (pasted in the wrong field) is shown masked, as the requests are
    quoting_the_token = {"input": {"type": "METADATA", "key": GOOD_TOKEN}, "strategy": {"type": "WEIGHTS", "strength": 1}}
    with FakeLightly() as fake:
        env = {"LIGHTLY_SERVER_LOCATION": fake.url, "LIGHTLY_TOKEN": GOOD_TOKEN}
        result = subprocess.run(
            [sys.executable, "-m", "core", "schedule", "--dataset", "flicker-d", "--input-url", "s3://b/i/", "--lightly-url",
             "s3://b/l/", "--region", "eu-central-1", "--s3-role-arn", ACCESS.role_arn, "--s3-external-id",
             ACCESS.external_id, "--flickering", "3", "--dry-run", "--extra-strategy", json.dumps(quoting_the_token)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env={**__import__("os").environ, **env})
    assert result.returncode == 0, result.stderr
    assert '"key": "***"' in result.stdout, "the config printed above the requests is masked too"
    assert "would call schedule_compute_worker_run" in result.stdout and '"strength": 3.0' in result.stdout
    assert "POST /v1/docker/worker/config/vX" in result.stdout  # the exact requests, recorded locally
    assert fake.requests == [] and GOOD_TOKEN not in result.stdout and "token" not in result.stdout.lower()
    assert "selection_config=<the selection config above>" in result.stdout
    # a field Lightly would refuse is one line before any of the plan is printed
    bad = subprocess.run([sys.executable, "-m", "core", "schedule", "--dataset", "flicker-d", "--input-url", "s3://b/i/",
                          "--lightly-url", "s3://b/l/", "--region", "eu-central-1", "--s3-role-arn", ACCESS.role_arn,
                          "--s3-external-id", "ext", "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == "" and "External ID" in bad.stderr, (bad.stdout, bad.stderr)


def test_dry_run_records_exact_requests_and_masks_secrets(monkeypatch):
    from core.lightly.schedule import S3Keys, dry_run

    monkeypatch.delenv("LIGHTLY_SERVER_LOCATION", raising=False)
    keys = ScheduleRequest("flicker-d", "s3://b/i/", "s3://b/l/", S3Keys("eu-central-1", "AKIAEXAMPLE", "very-secret-key"),
                           build_selection_config(10, "t"))
    sent = dry_run(keys)
    assert [r["method"] + " " + r["path"].split("/")[-1] for r in sent][-2:] == ["POST vX", "POST schedule"]
    datasource = [r["body"] for r in sent if r["method"] == "PUT"]
    assert datasource[0]["s3AccessKeyId"] == "AKIAEXAMPLE" and datasource[0]["s3SecretAccessKey"] == "***"
    assert "very-secret-key" not in str(sent)
    assert "LIGHTLY_SERVER_LOCATION" not in __import__("os").environ  # restored


def test_cli_schedules_with_the_token_from_the_environment(monkeypatch):
    with FakeLightly() as fake:
        env = {**__import__("os").environ, "LIGHTLY_SERVER_LOCATION": fake.url, "LIGHTLY_TOKEN": GOOD_TOKEN}
        result = subprocess.run(
            [sys.executable, "-m", "core", "schedule", "--dataset", "flicker-demo", "--input-url", "s3://b/i/",
             "--lightly-url", "s3://b/l/", "--region", "eu-central-1", "--s3-role-arn", ACCESS.role_arn,
             "--s3-external-id", ACCESS.external_id, "--n-samples", "50"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert RUN_ID in result.stdout and GOOD_TOKEN not in result.stdout + result.stderr
    assert fake.requests[-2]["body"]["config"]["selection"]["nSamples"] == 50


def test_cli_without_a_token_says_where_it_comes_from():
    """The CLI has no token field: the message names the environment variable alone."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "LIGHTLY_TOKEN"} | {"LIGHTLY_SERVER_LOCATION": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "core", "schedule", "--dataset", "flicker-demo", "--input-url", "s3://b/i/",
         "--lightly-url", "s3://b/l/", "--region", "eu-central-1", "--s3-role-arn", ACCESS.role_arn,
         "--s3-external-id", ACCESS.external_id], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and result.stderr.strip() == "error: No Lightly token: set LIGHTLY_TOKEN in the environment"


def test_run_state_and_selected_frames(monkeypatch):
    from core.lightly.schedule import run_state, selected_frames

    dataset_id = DATASET_ID

    with FakeLightly() as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        state, message = run_state(dataset_id, RUN_ID, GOOD_TOKEN)
    assert state == "OPEN" and "Lightly Worker" in message
    names = ["vtest-016-avi.png", "vtest-233-avi.png"]
    with FakeLightly(worker_state="COMPLETED", selected=names) as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        assert run_state(dataset_id, RUN_ID, GOOD_TOKEN)[0] == "COMPLETED"
        frames = selected_frames(dataset_id, token=GOOD_TOKEN)
    assert [f["fileName"] for f in frames] == names
    assert all(f["readUrl"].startswith("https://") for f in frames)


def test_cli_waits_for_the_run_and_writes_the_selection(tmp_path):
    out = tmp_path / "selected.json"
    with FakeLightly(worker_state="COMPLETED", selected=["vtest-016-avi.png"]) as fake:
        env = {**__import__("os").environ, "LIGHTLY_SERVER_LOCATION": fake.url, "LIGHTLY_TOKEN": GOOD_TOKEN}
        result = subprocess.run(
            [sys.executable, "-m", "core", "schedule", "--dataset", "flicker-demo", "--input-url", "s3://b/i/",
             "--lightly-url", "s3://b/l/", "--region", "eu-central-1", "--s3-role-arn", ACCESS.role_arn,
             "--s3-external-id", ACCESS.external_id, "--wait", "--poll-seconds", "0.1", "--selected-out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "COMPLETED" in result.stdout and "1 frame selected" in result.stdout
    assert __import__("json").loads(out.read_text())[0]["fileName"] == "vtest-016-avi.png"
    assert GOOD_TOKEN not in out.read_text()


def test_the_config_the_export_page_shows_masks_the_token_typed_there():
    from core.lightly.schedule import S3Keys, shown_config

    typed = "tok-typed-in-the-password-field"
    config = build_selection_config(10, "t", extra_strategies=[{"input": {"type": "METADATA", "key": typed},
                                                     "strategy": {"type": "WEIGHTS", "strength": 1}}])
    keys = ScheduleRequest("flicker-d", "s3://b/i/", "s3://b/l/", S3Keys("eu-central-1", "AKIAEXAMPLE", "very-secret-key"),
                           config)
    shown = shown_config(keys, typed)
    assert typed not in shown and '"key": "***"' in shown
    assert "very-secret-key" not in shown_config(dataclasses.replace(keys, selection_config=build_selection_config(
        10, "t", extra_strategies=[{"input": {"type": "METADATA", "key": "very-secret-key"}, "strategy": {"type": "WEIGHTS", "strength": 1}}])))


def test_a_dry_run_never_sends_a_real_schedule_beside_it_to_its_recorder(monkeypatch):
    """The dry run pointed the client at its recorder through LIGHTLY_SERVER_LOCATION, process-wide: a real schedule
    from another session meanwhile went to the recorder, which answered with made-up ids (nothing was scheduled)."""
    import threading

    from core.lightly import recorder
    from core.lightly.schedule import dry_run

    paused, resume, route = threading.Event(), threading.Event(), recorder.LightlyRecorder.route

    def pausing(self, method, path, query):  # the dry run stops at its dataset, its client made
        if (method, path) == ("POST", "/v1/datasets") and not paused.is_set():
            paused.set()
            resume.wait(10)
        return route(self, method, path, query)

    monkeypatch.setattr(recorder.LightlyRecorder, "route", pausing)
    beside = threading.Thread(target=dry_run, args=(request(),))
    with FakeLightly() as fake:
        monkeypatch.setenv("LIGHTLY_SERVER_LOCATION", fake.url)
        beside.start()
        try:
            assert paused.wait(10)
            schedule(request(), GOOD_TOKEN)
        finally:
            resume.set()
            beside.join()
    assert ("POST", f"/v1/datasets/{DATASET_ID}/docker/worker/schedule") in [(r["method"], r["path"]) for r in fake.requests]


def test_a_datasource_url_the_access_cannot_read_is_refused_before_the_plan():
    """`schedule --s3-role-arn ... --input-url /tmp/local --dry-run` printed the validated config and a delegated-access call
    with resource_path='/tmp/local' and exited 0. Now the URL must start with the scheme its access reads, in one line."""
    result = subprocess.run([sys.executable, "-m", "core", "schedule", "--dataset", "ddd", "--input-url", "/tmp/local",
                             "--lightly-url", "s3://b/l/", "--region", "eu-central-1", "--s3-role-arn", ACCESS.role_arn,
                             "--s3-external-id", ACCESS.external_id, "--dry-run"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("error: Input datasource URL must start with s3:// for S3 delegated access (such as "
                             "s3://bucket/prefix/), got '/tmp/local'\n")


@pytest.mark.parametrize("access, input_url, lightly_url, message", [
    (ACCESS, "s3://b/i/", "gs://b/l/", "Lightly datasource URL must start with s3:// for S3 delegated access (such as "
     "s3://bucket/prefix/), got 'gs://b/l/'"),
    (ACCESS, "s3://", "s3://b/l/", "Input datasource URL must start with s3:// for S3 delegated access (such as "
     "s3://bucket/prefix/), got 's3://'"),
    ("gcs", "s3://b/i/", "b/l", "Input datasource URL must start with gs:// for GCS credentials (such as gs://bucket/prefix/), "
     "got 's3://b/i/'; Lightly datasource URL must start with gs:// for GCS credentials (such as gs://bucket/prefix/), "
     "got 'b/l'"),
    ("azure", "az://c/i/", "/data/lightly", "Lightly datasource URL must start with az://, abfs:// or abfss:// for Azure "
     "access (such as az://container/prefix/), got '/data/lightly'"),
    ("gcs", "gs://b/i/", "gs://b/l/", None),
    ("azure", "abfs://c/i/", "az://c/l/", None),
    ("azure", "my-container/input/", "my-container/lightly/", None),  # Lightly's own spelling (set_azure_config)
    ("azure", "my-container/input/", "~/lightly", "Lightly datasource URL must start with az://, abfs:// or abfss:// for "
     "Azure access (such as az://container/prefix/), got '~/lightly'"),
])
def test_each_access_reads_its_own_clouds_urls(access, input_url, lightly_url, message):
    from core.lightly.schedule import AzureCredentials, GcsCredentials

    access = {"gcs": GcsCredentials("my-project", '{"type": "service_account"}'),
              "azure": AzureCredentials("account", "sv=2024&sig=x")}.get(access, access)
    bad = ScheduleRequest("flicker-d", input_url, lightly_url, access, build_selection_config(10, "t"))
    if message is None:
        check_fields(bad)
        return
    with pytest.raises(ScheduleError) as info:
        check_fields(bad)
    assert str(info.value) == message


def test_n_samples_0_names_the_option_the_user_gave():
    """`schedule --n-samples 0` said "n_samples must be a positive integer": the config's key, which the user never typed
    (a config file's n_samples is still named as its key)."""
    result = subprocess.run([sys.executable, "-m", "core", "schedule", "--dataset", "flicker-d", "--input-url", "s3://b/i/",
                             "--lightly-url", "s3://b/l/", "--region", "eu-central-1", "--s3-role-arn", ACCESS.role_arn,
                             "--s3-external-id", ACCESS.external_id, "--n-samples", "0", "--dry-run"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: The number of frames to select (--n-samples) must be a positive integer, got 0\n"
    with pytest.raises(SelectionError, match="^n_samples must be a positive integer, got 0$"):
        validate_selection_config({"n_samples": 0, "strategies": build_selection_config(1, "t")["strategies"]})


def test_selected_out_without_wait_is_refused_before_anything_is_sent(tmp_path, capsys):
    """--selected-out without --wait was accepted and never written: the frames are known only once the run ends."""
    from core.cli import main

    written = tmp_path / "picked.json"
    with FakeLightly() as fake:
        code = main(["schedule", "--dataset", "flicker-d", "--input-url", "s3://b/i/", "--lightly-url", "s3://b/l/",
                     "--selected-out", str(written), "--dry-run"])
    assert code == 2 and fake.requests == [] and not written.exists()
    assert capsys.readouterr().err.strip() == ("error: --selected-out needs --wait: the selected frames are known only once "
                                               "the run ends")


def test_an_azure_container_path_as_lightly_spells_it_goes_out_as_it_is():
    """Lightly's set_azure_config takes container_name="my-container/path/to/my/data", no scheme, and the request passed
    it through (the scheme, when given, is dropped): the URL scheme check refused it as not starting with az://."""
    from core.lightly.schedule import AzureCredentials, _datasource_call

    request = ScheduleRequest("flicker-d", "my-container/input/", "my-container/lightly/",
                              AzureCredentials("account", "sv=2024&sig=x"), build_selection_config(10, "t"))
    check_fields(request)
    assert _datasource_call(request, "INPUT", request.input_url)[1]["container_name"] == "my-container/input/"
