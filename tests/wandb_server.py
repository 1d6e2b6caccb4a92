"""A stand-in for W&B's server on 127.0.0.1: enough of its API for runs to go online and for
``wandb sync``, recording what arrives so a test can compare it with the study.

W&B has no local server that runs without its own Docker image, so the online path (a worker
with a key, the study run, ``hpo sync``) would otherwise be tested only failing. This answers the
calls wandb 0.31 makes for a run: GraphQL (``UpsertBucket`` creates or updates a run,
``CreateRunFiles`` hands out upload URLs, ``Viewer`` says whose the key is, and the artifact
steps a logged table takes), the file stream (history rows, summary and exit code, each file's
lines sent from an offset), and the uploads (``PUT``). Anything else gets empty data: W&B's
telemetry, server-feature queries. It can also answer 429 Too Many Requests, as W&B does when
rate-limited, and refuse the key.

Run as a script (``python wandb_server.py PORT``) it serves on every address of a container, for
worker containers on a launch's network; ``GET /hpo-test/state`` hands its record to the test
(``RemoteStandIn``), which reaches the container at its address on that network.
"""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["KEY", "STATE_PATH", "RemoteStandIn", "ServerRun", "WandbStandIn", "wandb_stand_in"]

KEY = "hpostandin" + "k" * 35  # the W&B key tests give (W&B wants 40+ characters)

VIEWER = {
    "id": "VXNlcjox",
    "entity": "hpo",
    "username": "hpo",
    "email": "hpo@127.0.0.1",
    "flags": "{}",
    "teams": {"edges": []},
}
HISTORY = "wandb-history.jsonl"
SUMMARY = "wandb-summary.json"
STATE_PATH = "/hpo-test/state"  # where the record is read (not a W&B path)


@dataclass
class ServerRun:
    """One run as the server holds it: the last value of each field, files by line."""

    id: str
    project: str
    entity: str
    group: str | None = None
    name: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    upserts: int = 0
    lines: dict[str, list[str]] = field(default_factory=dict)
    uploaded: set[str] = field(default_factory=set)
    exit_code: int | None = None

    @property
    def history(self) -> list[dict[str, Any]]:
        """The run's history rows (``run.log`` calls), in order."""
        return [json.loads(line) for line in self.lines.get(HISTORY, [])]

    @property
    def summary(self) -> dict[str, Any]:
        """The run's latest summary."""
        latest = self.lines.get(SUMMARY, [])
        return json.loads(latest[-1]) if latest else {}

    def param(self, key: str) -> Any:
        """A config entry's value (W&B keeps each top-level key as ``{"value": ...}``)."""
        return self.config[key]["value"]


class WandbStandIn:
    """The recorded state of the stand-in: runs by id, and the API keys that reached it."""

    def __init__(self) -> None:
        self.runs: dict[str, ServerRun] = {}
        self.keys: set[str] = set()
        self.artifacts: list[str] = []  # collection names, in order (a logged table is one)
        self.limit_next = 0  # answer this many more posts with 429 Too Many Requests, as W&B may
        self.limited = 0  # posts answered so
        self.known_key = True  # False: `Viewer` finds no account for the key
        self.url = ""
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        """The record so far, as JSON for a test outside this process (``RemoteStandIn``)."""
        with self._lock:
            runs = {
                ident: {**asdict(run), "uploaded": sorted(run.uploaded)}
                for ident, run in self.runs.items()
            }
            return {"runs": runs, "keys": sorted(self.keys)}

    def graphql(self, request: dict[str, Any]) -> dict[str, Any]:
        """The ``data`` of the answer to one GraphQL request; empty for what it does not know."""
        operation = request.get("operationName") or _operation(request["query"])
        given = request.get("variables") or {}
        if operation == "Viewer":  # whose the key is
            return {"viewer": VIEWER if self.known_key else None}
        if operation == "ArtifactType":  # of an artifact not logged before: none
            return {"project": {"artifact": None}}
        if operation == "CommitArtifact":
            return {
                "commitArtifact": {"artifact": {"id": given["artifactID"], "state": "COMMITTED"}}
            }
        steps = {
            "UpsertBucket": self.upsert,
            "CreateRunFiles": self.run_files,
            "CreateArtifact": lambda given: self.create_artifact(given["input"]),
            "CreateArtifactFiles": self.artifact_files,
            "CreateArtifactManifest": self.artifact_manifest,
        }
        return steps[operation](given) if operation in steps else {}

    def rate_limited(self) -> bool:
        """Whether to refuse this post with 429 (one of the next ``limit_next``)."""
        with self._lock:
            if self.limit_next <= 0:
                return False
            self.limit_next -= 1
            self.limited += 1
            return True

    def upsert(self, variables: dict[str, Any]) -> dict[str, Any]:
        """``UpsertBucket``: create the run, or update the fields given."""
        with self._lock:
            run = self.runs.setdefault(
                variables["name"],
                ServerRun(variables["name"], variables["project"], variables["entity"] or "hpo"),
            )
            run.upserts += 1
            for attr, key in (("group", "groupName"), ("name", "displayName")):
                if variables.get(key) is not None:
                    setattr(run, attr, variables[key])
            if variables.get("jobType") is not None:
                run.job_type = variables["jobType"]
            if variables.get("tags") is not None:
                run.tags = list(variables["tags"])
            if variables.get("config"):
                run.config = json.loads(variables["config"])
        bucket = {
            "id": base64.b64encode(f"Run:{run.id}".encode()).decode(),
            "name": run.id,
            "displayName": run.name,
            "description": None,
            "config": json.dumps(run.config),
            "sweepName": None,
            "historyLineCount": len(run.lines.get(HISTORY, [])),
            "project": {
                "id": "UHJvamVjdDox",
                "name": run.project,
                "entity": {"id": "RW50aXR5OjE=", "name": run.entity},
            },
        }
        return {"upsertBucket": {"bucket": bucket, "inserted": run.upserts == 1}}

    def run_files(self, variables: dict[str, Any]) -> dict[str, Any]:
        """``CreateRunFiles``: an upload URL on this server for each file."""
        run = variables["run"]
        files = [
            {"name": name, "uploadUrl": f"{self.url}/upload/{run}/{name}"}
            for name in variables["files"]
        ]
        return {"createRunFiles": {"runID": run, "uploadHeaders": [], "files": files}}

    def create_artifact(self, given: dict[str, Any]) -> dict[str, Any]:
        """``CreateArtifact``: a new artifact (a logged table is one), waiting for its files."""
        with self._lock:
            self.artifacts.append(given["artifactCollectionName"])
            number = len(self.artifacts)
        artifact = {
            "id": base64.b64encode(f"Artifact:{number}".encode()).decode(),
            "state": "PENDING",
            "artifactSequence": {"latestArtifact": None},
        }
        return {"createArtifact": {"artifact": artifact}}

    def artifact_files(self, given: dict[str, Any]) -> dict[str, Any]:
        """``CreateArtifactFiles``: where to upload each file of an artifact."""
        files = [
            {"node": {**self._upload_target(f["name"]), "uploadMultipartUrls": None}}
            for f in given["input"]["artifactFiles"]
        ]
        return {"createArtifactFiles": {"files": {"edges": files}}}

    def artifact_manifest(self, given: dict[str, Any]) -> dict[str, Any]:
        """``CreateArtifactManifest``: where to upload an artifact's manifest."""
        manifest = {"id": "TWFuaWZlc3Q6MQ==", "file": self._upload_target(given["name"])}
        return {"createArtifactManifest": {"artifactManifest": manifest}}

    def _upload_target(self, name: str) -> dict[str, Any]:
        return {
            "id": "RmlsZTox",
            "name": name,
            "uploadUrl": f"{self.url}/upload/artifact/{name}",
            "uploadHeaders": [],
            "storagePath": name,
            "artifact": {"id": "QXJ0aWZhY3Q6MQ=="},
        }

    def stream(self, run_id: str, body: dict[str, Any]) -> None:
        """A file-stream post: each file's lines from its offset, and the exit code at the end."""
        with self._lock:
            run = self.runs[run_id]
            for name, chunk in body.get("files", {}).items():
                lines = run.lines.setdefault(name, [])
                offset = chunk["offset"]
                if name == SUMMARY:  # the whole summary each time, not appended lines
                    lines.extend(chunk["content"])
                    continue
                lines[offset : offset + len(chunk["content"])] = chunk["content"]
            if body.get("complete"):
                run.exit_code = body.get("exitcode")

    def upload(self, run_id: str, name: str) -> None:
        """A file uploaded (``PUT``) to the URL ``run_files`` gave."""
        with self._lock:
            if run_id in self.runs:
                self.runs[run_id].uploaded.add(name)


def _handler(state: WandbStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads the recorded state, not a request log."""

        def do_POST(self) -> None:
            self._key()
            body = self._body()
            if state.rate_limited():
                self._reply({"error": "rate limit exceeded"}, status=429)
                return
            parts = self.path.split("?")[0].strip("/").split("/")
            data: dict[str, Any] = {}
            if parts == ["graphql"]:
                data = {"data": state.graphql(json.loads(body))}
            elif len(parts) == 5 and parts[0] == "files" and parts[4] == "file_stream":
                state.stream(parts[3], json.loads(body))
                data = {"exitcode": None, "limits": {}}
            self._reply(data)

        def do_PUT(self) -> None:
            self._body()
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) >= 3 and parts[0] == "upload":
                state.upload(parts[1], "/".join(parts[2:]))
            self._reply({})

        def do_GET(self) -> None:
            self._reply(state.snapshot() if self.path == STATE_PATH else {})

        def _key(self) -> None:
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                user_key = base64.b64decode(header.removeprefix("Basic ")).decode()
                state.keys.add(user_key.partition(":")[2])

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _reply(self, data: dict[str, Any], status: int = 200) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def _operation(query: str) -> str:
    """A GraphQL request's operation name, from its text (``query Name(...)``)."""
    words = query.replace("(", " ").replace("{", " ").split()
    return words[1] if len(words) > 1 and words[0] in ("query", "mutation") else ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that close their kept-alive connections (wandb-core does)."""


@contextmanager
def wandb_stand_in() -> Iterator[WandbStandIn]:
    """Serve a stand-in on a free port of 127.0.0.1 while the block runs (its ``url``)."""
    state = WandbStandIn()
    server = _Server(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class RemoteStandIn:
    """A stand-in served by another process (a container): its record, read when asked."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _snapshot(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + STATE_PATH, timeout=10) as answer:
            snapshot: dict[str, Any] = json.load(answer)
        return snapshot

    @property
    def runs(self) -> dict[str, ServerRun]:
        """The runs that reached it, by id."""
        return {
            ident: ServerRun(**{**run, "uploaded": set(run["uploaded"])})
            for ident, run in self._snapshot()["runs"].items()
        }

    @property
    def keys(self) -> set[str]:
        """The API keys that reached it."""
        return set(self._snapshot()["keys"])


def main(port: int) -> None:
    """Serve on every address until killed, naming this host's own address in upload URLs."""
    state = WandbStandIn()
    state.url = f"http://{socket.gethostbyname(socket.gethostname())}:{port}"
    print(f"serving at {state.url}", flush=True)
    _Server(("0.0.0.0", port), _handler(state)).serve_forever()  # every address: a container's


if __name__ == "__main__":
    main(int(sys.argv[1]))
