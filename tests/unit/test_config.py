from __future__ import annotations

import re
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

from ecomctl.config import LOCAL_PORTS, Settings, cache_dir, local_stack_env, state_dir
from ecomctl.errors import ConfigError
from ecomctl.telemetry.sampling import sampler_from


def test_defaults_point_at_the_local_stack() -> None:
    settings = Settings.from_env({})
    assert settings.database_url.endswith(f"127.0.0.1:{LOCAL_PORTS.postgres}/ecomctl")
    assert settings.redis_url == f"redis://127.0.0.1:{LOCAL_PORTS.redis}/0"
    assert settings.kafka_bootstrap_servers == (f"127.0.0.1:{LOCAL_PORTS.kafka}",)
    assert settings.elasticsearch_url == f"http://127.0.0.1:{LOCAL_PORTS.elasticsearch}"
    assert settings.otlp_endpoint == f"http://127.0.0.1:{LOCAL_PORTS.otlp_grpc}"
    assert settings.otlp_protocol == "grpc"
    assert settings.trace_query_url == f"http://127.0.0.1:{LOCAL_PORTS.trace_query}"
    assert settings.service_name == "ecomctl"


def test_stack_env_and_settings_agree() -> None:
    env = local_stack_env()
    settings = Settings.from_env(env)
    assert settings.database_url == env["DATABASE_URL"]
    assert ",".join(settings.kafka_bootstrap_servers) == env["KAFKA_BOOTSTRAP_SERVERS"]
    assert settings.trace_query_url == env["ECOMCTL_TRACE_QUERY_URL"]


def test_environment_overrides_and_otel_variables() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgres://u:p@db.internal:5432/shop",
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9092, k2:9092",
            "OTEL_SERVICE_NAME": "shop",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=ci, team=sre",
            "OTEL_TRACES_SAMPLER": "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
        }
    )
    assert settings.database_url == "postgres://u:p@db.internal:5432/shop"
    assert settings.kafka_bootstrap_servers == ("k1:9092", "k2:9092")
    assert settings.service_name == "shop"
    assert settings.otlp_protocol == "http/protobuf"
    assert settings.resource_attributes == {"deployment.environment.name": "ci", "team": "sre"}
    assert (settings.traces_sampler, settings.traces_sampler_arg) == ("traceidratio", "0.25")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL"),
        ("DATABASE_URL", "postgresql://host:99999/db", "DATABASE_URL"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost", "KAFKA_BOOTSTRAP_SERVERS"),
        ("KAFKA_BOOTSTRAP_SERVERS", "host:0", "KAFKA_BOOTSTRAP_SERVERS"),
        ("ELASTICSEARCH_URL", "ftp://es", "ELASTICSEARCH_URL"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ("OTEL_RESOURCE_ATTRIBUTES", "novalue", "OTEL_RESOURCE_ATTRIBUTES"),
    ],
)
def test_invalid_values_are_named_in_the_error(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({name: value})


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.redis_url = "redis://elsewhere:1/0"  # type: ignore[misc]


def test_state_and_cache_dirs_follow_overrides(tmp_path: Path) -> None:
    env = {"ECOMCTL_HOME": str(tmp_path / "state"), "ECOMCTL_CACHE_DIR": str(tmp_path / "c")}
    assert state_dir(env) == tmp_path / "state"
    assert cache_dir(env) == tmp_path / "c"


def test_search_alias_is_read_and_validated() -> None:
    assert Settings.from_env({}).search_alias == "ecomctl-products"
    assert Settings.from_env({"ECOMCTL_SEARCH_ALIAS": "shop-a"}).search_alias == "shop-a"
    with pytest.raises(ConfigError, match="ECOMCTL_SEARCH_ALIAS"):
        Settings.from_env({"ECOMCTL_SEARCH_ALIAS": "Not Valid"})


def test_kafka_topic_prefix_is_read_and_validated() -> None:
    assert Settings.from_env({}).kafka_topic_prefix == ""
    assert Settings.from_env({"ECOMCTL_KAFKA_TOPIC_PREFIX": "bench."}).kafka_topic_prefix == (
        "bench.")
    for bad in ("has space", "slash/", "x" * 201):
        with pytest.raises(ConfigError, match="ECOMCTL_KAFKA_TOPIC_PREFIX"):
            Settings.from_env({"ECOMCTL_KAFKA_TOPIC_PREFIX": bad})


@pytest.mark.parametrize("env,message", [
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
     "OTEL_TRACES_SAMPLER_ARG='2'"),
    ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
     "OTEL_TRACES_SAMPLER_ARG='half'"),
    ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes'"),
])
def test_bad_sampler_settings_are_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env)


def test_sampler_names_ignore_case_and_only_ratio_samplers_read_the_argument() -> None:
    settings = Settings.from_env({"OTEL_TRACES_SAMPLER": "ParentBased_TraceIdRatio",
                                  "OTEL_TRACES_SAMPLER_ARG": " 0.5 "})
    assert (settings.traces_sampler, settings.traces_sampler_arg) == (
        "parentbased_traceidratio", "0.5")
    sampler = sampler_from(settings)
    description = sampler.get_description()  # as a Sampler: ParentBased's own is untyped
    assert isinstance(sampler, ParentBased) and "0.5" in description
    # The spec: a sampler that takes no argument ignores it (not an error).
    ignored = Settings.from_env({"OTEL_TRACES_SAMPLER": "always_off",
                                 "OTEL_TRACES_SAMPLER_ARG": "2"})
    assert ignored.traces_sampler_arg is None and sampler_from(ignored) is ALWAYS_OFF


def test_the_cache_redis_is_the_local_stacks_or_the_one_redis_a_deployment_names() -> None:
    local = Settings.from_env({})
    assert local.redis_cache_url == f"redis://127.0.0.1:{LOCAL_PORTS.redis_cache}/0"
    assert local.redis_cache_url != local.redis_url
    one = Settings.from_env({"REDIS_URL": "redis://cache.internal:6379/2"})
    assert one.redis_cache_url == one.redis_url == "redis://cache.internal:6379/2"
    two = Settings.from_env({"REDIS_URL": "redis://a:6379/0", "REDIS_CACHE_URL": "redis://b/0"})
    assert (two.redis_url, two.redis_cache_url) == ("redis://a:6379/0", "redis://b/0")
