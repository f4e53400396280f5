"""Configuration from the environment and from configure(): values, warnings, secrecy."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import revenium
from revenium.attribution import Metadata
from revenium.config import Config, Secret, get_config, meter_url

KEY = "hak_0123456789abcdef0123456789abcdef"


def test_defaults_without_any_environment() -> None:
    config = Config.from_env({})
    assert config.api_key is None
    assert config.meter_url == "https://api.revenium.ai/meter"
    assert config.enforcement_url == "https://api.revenium.ai"
    assert config.capture_prompts is False
    assert config.max_prompt_size == 50_000
    assert config.print_summary == "off"
    assert config.defaults == Metadata()


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "Yes", "on", " ON "])
def test_flags_accept_every_yes_spelling(raw: str) -> None:
    assert Config.from_env({"REVENIUM_CAPTURE_PROMPTS": raw}).capture_prompts is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "NO", "off", "Off"])
def test_flags_accept_every_no_spelling(raw: str) -> None:
    assert Config.from_env({"REVENIUM_SELECTIVE_METERING": raw}).selective_metering is False


def test_an_unknown_flag_value_warns_once_naming_the_variable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    for _ in range(3):
        config = Config.from_env({"REVENIUM_CAPTURE_PROMPTS": "maybe"})
        assert config.capture_prompts is False
    assert [r.getMessage() for r in caplog.records] == [
        "revenium: REVENIUM_CAPTURE_PROMPTS='maybe' is not a yes/no value (use 1/true/yes/on or "
        "0/false/no/off); treating it as off"
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://api.revenium.ai", "https://api.revenium.ai/meter"),
        ("https://api.revenium.ai/", "https://api.revenium.ai/meter"),
        ("https://api.revenium.ai/meter/", "https://api.revenium.ai/meter"),
        ("http://127.0.0.1:8080/meter", "http://127.0.0.1:8080/meter"),
        ("https://gw.example.com/revenium", "https://gw.example.com/revenium/meter"),
        ("https://gw.example.com/meter/v2/ai", "https://gw.example.com/meter"),
    ],
)
def test_the_metering_base_url_gets_a_meter_segment_when_it_has_none(
    raw: str, expected: str
) -> None:
    assert meter_url(raw) == expected
    assert Config.from_env({"REVENIUM_METERING_BASE_URL": raw}).meter_url == expected


def test_a_bad_base_url_in_the_environment_warns_and_keeps_the_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    config = Config.from_env({"REVENIUM_METERING_BASE_URL": "ftp://example.com"})
    assert config.meter_url == "https://api.revenium.ai/meter"
    assert caplog.records[0].getMessage() == (
        "revenium: ignoring REVENIUM_METERING_BASE_URL: the metering base URL must be an "
        "http(s) URL with a host; got 'ftp://example.com'"
    )


def test_enforcement_url_override() -> None:
    config = Config.from_env(
        {
            "REVENIUM_METERING_BASE_URL": "https://m.example.com/meter",
            "REVENIUM_ENFORCEMENT_BASE_URL": "https://e.example.com/profitstream/",
        }
    )
    assert config.enforcement_url == "https://e.example.com/profitstream"
    assert Config.from_env(
        {"REVENIUM_METERING_BASE_URL": "http://h:9/x/meter"}
    ).enforcement_url == ("http://h:9")


def test_the_api_key_never_shows_in_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="revenium")
    config = Config.from_env({"REVENIUM_METERING_API_KEY": KEY, "REVENIUM_LOG_LEVEL": "DEBUG"})
    assert config.api_key is not None
    assert config.api_key.reveal() == KEY
    assert KEY not in repr(config)
    assert KEY not in str(config.api_key)
    assert repr(config.api_key) == "Secret('hak_***(36 chars)')"
    revenium.configure(api_key=KEY)
    assert KEY not in repr(get_config())
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_a_malformed_key_warns_without_showing_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    config = Config.from_env({"REVENIUM_METERING_API_KEY": "sk-not-a-revenium-key"})
    assert config.api_key == Secret("sk-not-a-revenium-key")  # still used: the server judges
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "revenium: REVENIUM_METERING_API_KEY does not look like a Revenium API key"
    )
    assert "sk-not-a-revenium-key" not in record.getMessage()


def test_numbers_paths_and_choices(tmp_path: Path) -> None:
    config = Config.from_env(
        {
            "REVENIUM_CB_POLL_INTERVAL_SECONDS": "15",
            "REVENIUM_METERING_TIMEOUT_SECONDS": "2.5",
            "REVENIUM_SPOOL_DIR": str(tmp_path / "spool"),
            "REVENIUM_LEDGER_PATH": str(tmp_path / "ledger.db"),
            "REVENIUM_CB_FAIL_MODE": "CLOSED",
            "REVENIUM_MAX_PROMPT_SIZE": "1000",
            "REVENIUM_TEAM_ID": "team-1",
        }
    )
    assert config.cb_poll_interval_seconds == 15.0
    assert config.timeout_seconds == 2.5
    assert config.spool_directory == tmp_path / "spool"
    assert config.ledger_file == tmp_path / "ledger.db"
    assert config.cb_fail_mode == "closed"
    assert config.max_prompt_size == 1000
    assert config.team_id == "team-1"


def test_bad_numbers_warn_and_keep_defaults(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    config = Config.from_env(
        {"REVENIUM_CB_POLL_INTERVAL_SECONDS": "soon", "REVENIUM_MAX_PROMPT_SIZE": "10"}
    )
    assert config.cb_poll_interval_seconds == 60.0
    assert config.max_prompt_size == 200
    assert sorted(r.getMessage() for r in caplog.records) == [
        "revenium: REVENIUM_MAX_PROMPT_SIZE=10 is below 200; using 200",
        "revenium: ignoring REVENIUM_CB_POLL_INTERVAL_SECONDS: 'soon' is not a float",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("human", "human"),
        ("true", "human"),
        ("1", "human"),
        ("on", "human"),
        ("json", "json"),
        ("JSON", "json"),
        ("off", "off"),
        ("false", "off"),
        ("", "off"),
    ],
)
def test_print_summary_values(raw: str, expected: str) -> None:
    assert Config.from_env({"REVENIUM_PRINT_SUMMARY": raw}).print_summary == expected


def test_ledger_is_the_default_destination_only_without_a_key(tmp_path: Path) -> None:
    assert Config.from_env({}).ledger_file == tmp_path / "data" / "revenium" / "ledger.sqlite3"
    assert Config.from_env({"REVENIUM_METERING_API_KEY": KEY}).ledger_file is None
    both = Config.from_env(
        {"REVENIUM_METERING_API_KEY": KEY, "REVENIUM_LEDGER_PATH": str(tmp_path / "l.db")}
    )
    assert both.ledger_file == tmp_path / "l.db"
    assert Config.from_env({}).spool_directory == tmp_path / "state" / "revenium"


def test_trace_fields_fall_back_through_their_variables_in_order() -> None:
    env = {
        "ENVIRONMENT": "staging",
        "DEPLOYMENT_ENV": "ignored",
        "GCP_REGION": "europe-west1",
        "AZURE_REGION": "westeurope",
        "REVENIUM_TRACE_TYPE": "batch-job",
        "REVENIUM_RETRY_NUMBER": "2",
        "REVENIUM_AGENTIC_JOB_ID": "job-7",
    }
    assert Config.from_env(env).defaults == Metadata(
        environment="staging",
        region="westeurope",
        trace_type="batch-job",
        retry_number=2,
        agentic_job_id="job-7",
    )
    env["REVENIUM_ENVIRONMENT"] = "prod"
    env["REVENIUM_REGION"] = "us-east-2"
    defaults = Config.from_env(env).defaults
    assert (defaults.environment, defaults.region) == ("prod", "us-east-2")


def test_an_invalid_trace_variable_is_dropped_with_a_warning_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    defaults = Config.from_env(
        {"REVENIUM_TRACE_TYPE": "has spaces", "REVENIUM_RETRY_NUMBER": "x"}
    ).defaults
    assert defaults == Metadata()
    assert sorted(r.getMessage() for r in caplog.records) == [
        "revenium: ignoring REVENIUM_RETRY_NUMBER: retry_number must be a whole number >= 0; "
        "got 'x'",
        "revenium: ignoring REVENIUM_TRACE_TYPE: trace_type must be 1 to 128 characters of "
        "letters, digits, '_' and '-'; got 'has spaces'",
    ]


def test_the_environment_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVENIUM_TEAM_ID", "first")
    assert get_config().team_id == "first"
    monkeypatch.setenv("REVENIUM_TEAM_ID", "second")
    assert get_config().team_id == "first"


def test_configure_swaps_the_whole_config_and_keeps_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REVENIUM_TEAM_ID", "team-env")
    before = get_config()
    after = revenium.configure(bypass=True, capture_prompts=True)
    assert get_config() is after
    assert before.bypass is False  # the old object is untouched: readers never see a mix
    assert (after.bypass, after.capture_prompts, after.team_id) == (True, True, "team-env")


def test_configure_converts_and_validates_where_it_is_called(tmp_path: Path) -> None:
    config = revenium.configure(
        api_key=f" {KEY} ",
        base_url="http://127.0.0.1:8080",
        spool_dir=str(tmp_path),
        defaults={"organizationName": "Acme"},
        print_summary="json",
    )
    assert config.api_key == Secret(KEY)
    assert config.meter_url == "http://127.0.0.1:8080/meter"
    assert config.spool_dir == tmp_path
    assert config.defaults == Metadata(organization_name="Acme")
    assert config.print_summary == "json"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"capture_prompt": True}, TypeError, "did you mean 'capture_prompts'"),
        ({"capture_prompts": "yes"}, TypeError, "capture_prompts must be True or False"),
        ({"timeout_seconds": -1}, ValueError, "timeout_seconds must be at least 0.1; got -1"),
        ({"timeout_seconds": "5"}, TypeError, "timeout_seconds must be a number; got str"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency must be at least 1; got 0"),
        ({"queue_size": 2.5}, TypeError, "queue_size must be a whole number; got 2.5"),
        (
            {"cb_poll_interval_seconds": 0},
            ValueError,
            "cb_poll_interval_seconds must be at least 1",
        ),
        ({"base_url": "not a url"}, ValueError, "must be an http\\(s\\) URL"),
        ({"api_key": 42}, TypeError, "api_key must be a string"),
        ({"on_error": "print"}, TypeError, "on_error must be callable"),
        ({"max_prompt_size": 10}, ValueError, "max_prompt_size must be at least 200; got 10"),
        ({"defaults": {"trace_type": "a b"}}, ValueError, "trace_type must be"),
        ({"bypass": None}, TypeError, "bypass cannot be None"),
    ],
)
def test_configure_rejects_mistakes(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        revenium.configure(**kwargs)


def test_nothing_is_read_or_written_at_import(tmp_path: Path) -> None:
    import importlib

    import revenium as module

    importlib.reload(module)
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "data").exists()


def test_configure_defaults_legacy_alias_warns_at_the_callers_line() -> None:
    with pytest.warns(DeprecationWarning, match="'organizationId' is deprecated") as record:
        revenium.configure(defaults={"organizationId": "Acme"})
    assert record[0].filename == __file__
    assert get_config().defaults.organization_name == "Acme"


def test_log_level_can_be_set_and_reset() -> None:
    logger = logging.getLogger("revenium")
    revenium.configure(log_level="debug")
    assert logger.level == logging.DEBUG
    revenium.configure(log_level=None)
    assert logger.level == logging.NOTSET


def test_a_secret_redacts_itself_from_error_texts_whole_or_in_pieces() -> None:
    key = Secret("hak_SECRETSECRETSECRET\nsecond-line")  # a key pasted from a two-line file
    error = "LocalProtocolError: Illegal header value b'hak_SECRETSECRETSECRET\\nsecond-line'"
    redacted = key.redact(error)
    assert "SECRETSECRET" not in redacted
    assert "second-line" not in redacted
    assert redacted.startswith("LocalProtocolError: Illegal header value b'hak_***(")
    assert Secret("hak_short").redact("nothing here") == "nothing here"
