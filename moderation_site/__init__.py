import os

# No outside contact: onnxruntime's builds send usage telemetry to Microsoft unless this is
# set before it initialises. Every process (manage.py, daphne/asgi, wsgi, the Celery
# worker and beat, the benches, the tests) imports this package before anything loads
# onnxruntime, so it is set here, for the process and the children it starts.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
# The text model's tokenizer comes with huggingface_hub, which never needs the hub here
# (the model ships in review/classifiers/models/): no lookups, no telemetry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from .celery import app as celery_app  # noqa: E402

__all__ = ("celery_app",)
