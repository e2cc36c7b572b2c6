"""No outside contact: onnxruntime's telemetry is off in every process (issue 10).

onnxruntime reads ORT_DISABLE_TELEMETRY from the C environment when it initialises, so each
test starts a fresh interpreter without the variable, loads the project the way one kind of
process does, then onnxruntime, and reads the variable back with getenv(3), as native
code does.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

CHECK = """
import ctypes, os
{load}
import onnxruntime
getenv = ctypes.CDLL(None).getenv
getenv.restype = ctypes.c_char_p
value = getenv(b"ORT_DISABLE_TELEMETRY")
print("native", value.decode() if value else None)
"""

ENTRY_POINTS = {
    "settings (manage.py, pytest, the benches)": "import moderation_site.settings",
    "the Celery worker and beat (-A moderation_site)": "from moderation_site.celery import app",
    "daphne (moderation_site.asgi)": "import moderation_site.asgi",
    "wsgi": "import moderation_site.wsgi",
}


def run(code: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    done = subprocess.run(
        [sys.executable, *args, *(["-c", code] if code else [])],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("load", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_every_entry_point_turns_telemetry_off_before_onnxruntime_loads(load):
    assert "native 1" in run(CHECK.format(load=load)).splitlines()


def test_without_the_project_the_variable_would_not_be_set():
    """The check is not vacuous: a bare onnxruntime import does not set it."""
    assert "native None" in run(CHECK.format(load="")).splitlines()


def test_manage_py_commands_run_with_telemetry_off():
    assert "native 1" in run("", "manage.py", "shell", "-c", CHECK.format(load="")).splitlines()


def test_the_model_is_loaded_with_telemetry_events_disabled(monkeypatch):
    from review.classifiers import nudenet

    calls = []
    real = nudenet.ort.disable_telemetry_events
    monkeypatch.setattr(nudenet, "_session", None)
    monkeypatch.setattr(nudenet.ort, "disable_telemetry_events", lambda: calls.append(1) or real())
    assert nudenet.get_session() is not None
    assert calls == [1]
