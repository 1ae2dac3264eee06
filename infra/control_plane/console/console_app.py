"""The console's WSGI app: werkzeug routing, Jinja2 templates, static files, and the CSRF token every POST carries.

The edge hands it every ``/console/`` request after its Host and Origin guards; a POST must also carry this stack's
token (embedded in each page), so no other page can act through a user's browser (docs/console.md).
"""

from __future__ import annotations

import hmac
import logging
import mimetypes
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from infra.control_plane.console.console_api import ConsoleApi, ConsoleApiError
from infra.control_plane.console.console_format import FILTERS
from infra.control_plane.console.deepracer_pages import DeepRacerPages
from infra.control_plane.console.experiment_pages import ExperimentPages
from infra.control_plane.console.job_pages import JobPages
from infra.control_plane.console.monitoring_pages import MonitoringPages
from infra.control_plane.console.pipeline_pages import PipelinePages
from infra.control_plane.console.resource_pages import ResourcePages

logger = logging.getLogger(__name__)

CONSOLE_PREFIX = "/console"
_HERE = Path(__file__).parent
_STATIC = {path.name: path for path in (_HERE / "static").iterdir() if path.is_file()}
Page = Callable[..., Response]


def is_console_path(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


class ConsoleApp:
    """Serves the pages for one account/region; ``api_for`` gives the SageMaker API the pages read and act through."""

    def __init__(self, api: ConsoleApi) -> None:
        self.token = secrets.token_urlsafe(32)  # per stack start: pages embed it, every POST must send it back
        self._templates = Environment(
            loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]), auto_reload=False
        )
        self._templates.filters.update(FILTERS)
        rooms = (PipelinePages, JobPages, ResourcePages, MonitoringPages, ExperimentPages, DeepRacerPages)
        self._pages: dict[str, Page] = {
            "home": lambda request: _redirect(f"{CONSOLE_PREFIX}/pipelines"),
            "static": self._static,
        }
        for room in rooms:
            self._pages.update(room(api, self.render).pages())
        self._map = Map([Rule(CONSOLE_PREFIX + rule, endpoint=name, methods=methods) for rule, name, methods in _RULES])

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, arguments = self._map.bind_to_environ(environ).match()
            if request.method == "POST" and not self._token_matches(request):
                response = self.render("error.html", 403, message="This action needs the console's token; reload.")
            else:
                response = self._pages[str(endpoint)](request, **arguments)
        except ConsoleApiError as error:
            status = 404 if error.code in ("ResourceNotFound", "ValidationException") else 400
            response = self.render("error.html", status, message=f"{error.code}: {error.message}")
        except HTTPException as error:
            response = self.render("error.html", error.code or 400, message=error.description or "")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "default-src 'self'; style-src 'self'; script-src 'self'"
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        body = self._templates.get_template(template).render(token=self.token, prefix=CONSOLE_PREFIX, **context)
        return Response(body, status=status, content_type="text/html; charset=utf-8")

    def _token_matches(self, request: Request) -> bool:
        sent = request.form.get("token") or request.headers.get("X-Console-Token") or ""
        return hmac.compare_digest(sent.encode(), self.token.encode())

    def _static(self, request: Request, name: str) -> Response:
        path = _STATIC.get(name)
        if path is None:
            raise NotFound(f"No console asset {name}.")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(path.read_bytes(), content_type=kind)


def _redirect(location: str) -> Response:
    return Response("", status=303, headers={"Location": location})


_GET, _POST = ["GET", "HEAD"], ["POST"]
_RULES = [
    ("/", "home", _GET),
    ("/static/<name>", "static", _GET),
    ("/pipelines", "pipelines", _GET),
    ("/pipelines/<pipeline>", "pipeline", _GET),
    ("/pipelines/<pipeline>/executions/<execution>", "execution", _GET),
    ("/pipelines/<pipeline>/executions/<execution>/status.json", "execution_status", _GET),
    ("/pipelines/<pipeline>/executions/<execution>/steps/<step>", "step", _GET),
    ("/pipelines/<pipeline>/executions/<execution>/stop", "stop_execution", _POST),
    ("/pipelines/<pipeline>/executions/<execution>/retry", "retry_execution", _POST),
    ("/pipelines/<pipeline>/start", "start_execution", _POST),
    ("/jobs", "jobs_home", _GET),
    ("/jobs/<kind>", "jobs", _GET),
    ("/jobs/<kind>/<name>", "job", _GET),
    ("/jobs/<kind>/<name>/logs.json", "job_logs", _GET),
    ("/jobs/<kind>/<name>/metrics", "job_metrics", _GET),
    ("/endpoints", "endpoints", _GET),
    ("/endpoints/<name>", "endpoint", _GET),
    ("/monitoring", "monitoring", _GET),
    ("/monitoring/<schedule>", "schedule", _GET),
    ("/monitoring/<schedule>/executions/<job>", "monitoring_execution", _GET),
    ("/experiments", "experiments", _GET),
    ("/experiments/<experiment>", "experiment", _GET),
    ("/features", "feature_groups", _GET),
    ("/features/<group>", "feature_group", _GET),
    ("/deepracer", "deepracer_runs", _GET),
    ("/deepracer/<name>", "deepracer_run", _GET),
    ("/deepracer/<name>/evaluation_lap.gif", "deepracer_lap_video", _GET),
    ("/models", "model_groups", _GET),
    ("/models/<group>", "model_group", _GET),
    ("/models/<group>/approval", "approval", _POST),
]
