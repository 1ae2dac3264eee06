"""How a multi-host ``smspark-submit`` job lays out its Spark standalone cluster (no JVM started here)."""

import json
import os

import pytest

from containers.processing.spark_cluster import alive_workers, cluster_layout, daemon_environment
from containers.processing.spark_submit import build_spark_command


def _host(tmp_path, current, hosts, configuration=None):
    (tmp_path / "config").mkdir(parents=True)
    (tmp_path / "config" / "resourceconfig.json").write_text(json.dumps({"current_host": current, "hosts": hosts}))
    if configuration is not None:
        conf = tmp_path / "processing" / "input" / "conf"
        conf.mkdir(parents=True)
        (conf / "configuration.json").write_text(json.dumps(configuration))
    return tmp_path


@pytest.fixture
def local_hosts(monkeypatch):
    monkeypatch.setenv("SAGESTACK_LOCAL_HOSTS", "1")


def test_one_host_has_no_cluster(tmp_path, local_hosts):
    assert cluster_layout(_host(tmp_path, "algo-1", ["algo-1"])) is None


def test_hosts_share_the_machine_and_use_the_ports_the_runtime_gave(tmp_path, local_hosts):
    env = {"SAGESTACK_SPARK_MASTER_PORT": "41000", "SAGESTACK_SPARK_MASTER_UI_PORT": "41001"}
    layout = cluster_layout(_host(tmp_path, "algo-2", ["algo-2", "algo-1"]), env)
    assert layout is not None and not layout.is_primary
    assert layout.master_url == "spark://127.0.0.1:41000"
    assert layout.master_json_url == "http://127.0.0.1:41001/json/"
    assert layout.cores == max(1, (os.cpu_count() or 1) // 2)
    assert layout.memory_mb >= 512


def test_primary_submits_to_the_cluster_with_executor_env(tmp_path, local_hosts, monkeypatch):
    export = {"Classification": "export", "Properties": {"MARKER": "x"}}
    base = _host(
        tmp_path, "algo-1", ["algo-1", "algo-2"], [{"Classification": "spark-env", "Configurations": [export]}]
    )
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))
    (base / "app.py").write_text("")
    layout = cluster_layout(base, {})
    assert layout is not None and layout.is_primary
    command = build_spark_command(["smspark-submit", str(base / "app.py")], cluster=layout)
    argv = command.argv
    assert argv[argv.index("--master") + 1] == "spark://127.0.0.1:7077"
    assert "spark.executorEnv.MARKER=x" in argv
    assert "spark.driver.host=127.0.0.1" in argv
    assert command.environment["MARKER"] == "x"


def test_configured_master_wins_over_the_cluster(tmp_path, local_hosts, monkeypatch):
    defaults = {"Classification": "spark-defaults", "Properties": {"spark.master": "local[1]"}}
    base = _host(tmp_path, "algo-1", ["algo-1", "algo-2"], [defaults])
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))
    (base / "app.py").write_text("")
    argv = build_spark_command(["smspark-submit", str(base / "app.py")], cluster=cluster_layout(base, {})).argv
    assert argv[argv.index("--master") + 1] == "local[1]"


def test_only_alive_workers_count():
    state = {"workers": [{"state": "ALIVE"}, {"state": "DEAD"}, {"state": "ALIVE"}]}
    assert alive_workers(state) == 2
    assert alive_workers(None) == 0


def test_the_master_keeps_the_port_it_was_given_or_exits(tmp_path, local_hosts, monkeypatch):
    """Spark's default would move a master whose port is taken to the next port, where no host looks for it."""
    monkeypatch.setenv("SPARK_MASTER_OPTS", "-Dspark.deploy.recoveryMode=NONE")
    layout = cluster_layout(_host(tmp_path, "algo-1", ["algo-1", "algo-2"]), {})
    assert layout is not None
    env = daemon_environment(layout)
    assert env["SPARK_MASTER_OPTS"] == (
        "-Dspark.deploy.recoveryMode=NONE -Dspark.port.maxRetries=0 -Dspark.master.rest.enabled=false"
    )
    assert env["SPARK_NO_DAEMONIZE"] == "1"
