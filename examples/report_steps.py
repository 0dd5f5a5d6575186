#!/usr/bin/env python3
"""Report a pipeline that runs outside pipescope to pipescope, with no SDK: the standard
library's urllib and json and pipescope's ingest API (POST /api/v1/ingest/events).

The pipeline here is three steps whose "model" is a small local function, so the example runs
anywhere; replace `call_model` with a real call (OpenAI, a local model, anything) and report
the prompt, the response and the token counts you get back. The run appears on pipescope's
dashboard like one of its own, live, and is kept with its steps in the history.

    python3 examples/report_steps.py --url http://127.0.0.1:3000 --topic "event sourcing"

With a token set on the server, pass --token or set PIPESCOPE_TOKEN. The last line printed is
`execution <id>`; read the run back with GET /api/v1/executions/<id>.

Every event carries an id of its own (`<execution>/<n>`), so a batch sent again after a lost
answer is stored once: pipescope skips the ids it already holds and counts them as duplicates.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

# Statuses worth sending the same batch again for: the limits (429) and a database that is
# briefly away (503). Anything else is a mistake in what was sent, and says what to fix.
RETRY_STATUSES = {429, 503}
ATTEMPTS = 5


def now():
    """An RFC 3339 time with microseconds, as pipescope stores it."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class IngestError(Exception):
    """pipescope refused a batch; the message is its answer, which says what to change."""


class Pipescope:
    """The ingest API of one pipescope server."""

    def __init__(self, url, token=None, timeout=10.0):
        self.endpoint = url.rstrip("/") + "/api/v1/ingest/events"
        self.token = token
        self.timeout = timeout

    def send(self, events):
        """Sends one batch (all-or-nothing) and returns pipescope's receipt."""
        body = json.dumps(events).encode("utf-8")
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = "Bearer " + self.token
        for attempt in range(1, ATTEMPTS + 1):
            request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.load(response)
            except urllib.error.HTTPError as error:
                answer = error.read().decode("utf-8", "replace")
                if error.code not in RETRY_STATUSES or attempt == ATTEMPTS:
                    raise IngestError(f"pipescope answered {error.code}: {answer}") from None
                wait = float(error.headers.get("retry-after") or attempt)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                # The batch may have been stored before the answer was lost: the event ids make
                # sending it again safe.
                if attempt == ATTEMPTS:
                    raise IngestError(f"cannot reach pipescope at {self.endpoint}: {error}") from None
                wait = attempt
            time.sleep(wait)
        raise IngestError("unreachable")


class Run:
    """One run of a pipeline, reported as it goes: each step as one batch of events."""

    def __init__(self, pipescope, pipeline, inputs):
        self.pipescope = pipescope
        self.execution_id = str(uuid.uuid4())
        self.pipeline = pipeline
        self.started = time.monotonic()
        self.sent = 0
        self.tokens = 0
        self.outputs = {}
        self._report([event("pipeline:started", {
            "execution_id": self.execution_id,
            "pipeline": pipeline,
            "inputs": inputs,
            "started_at": now(),
        })])

    def _report(self, events):
        for item in events:
            item["id"] = f"{self.execution_id}/{self.sent}"
            self.sent += 1
        return self.pipescope.send(events)

    def step(self, name, prompt, call, provider="local", model="rules-v1"):
        """Runs `call(prompt)` as the step `name` and reports it: started, the prompt sent, the
        response received and the step completed (or failed). Returns the response."""
        started = time.monotonic()
        base = {"execution_id": self.execution_id, "step": name}
        prompt_tokens = count_tokens(prompt)
        begin = [
            event("step:started", {**base, "provider": provider, "model": model, "attempt": 1}),
            event("prompt:sent", {**base, "prompt": prompt, "template": prompt, "token_count": prompt_tokens}),
        ]
        try:
            response = call(prompt)
        except Exception as error:  # the step failed: say so, then let the caller decide
            self._report(begin + [event("step:completed", {
                **base, "duration_ms": elapsed_ms(started), "tokens": prompt_tokens,
                "cost_usd": 0.0, "status": "failed", "error": str(error),
            })])
            raise
        completion_tokens = count_tokens(response)
        tokens = prompt_tokens + completion_tokens
        self.tokens += tokens
        self.outputs[name] = response
        self._report(begin + [
            event("response:received", {**base, "response": response, "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": tokens,
            }}),
            event("step:completed", {
                **base, "duration_ms": elapsed_ms(started), "tokens": tokens,
                "cost_usd": 0.0, "status": "completed",
            }),
            event("log:entry", {
                "level": "info", "message": f"step {name} answered {completion_tokens} tokens",
                "timestamp": now(), "context": base,
            }),
        ])
        return response

    def complete(self):
        self._report([event("pipeline:completed", {
            "execution_id": self.execution_id,
            "results": self.outputs,
            "totals": {"tokens": self.tokens, "cost_usd": 0.0, "duration_ms": elapsed_ms(self.started)},
        })])

    def fail(self, error, step=None):
        data = {"execution_id": self.execution_id, "error": str(error)}
        if step:
            data["step"] = step
        self._report([event("pipeline:error", data)])


def event(name, data):
    return {"event": name, "at": now(), "data": data}


def elapsed_ms(since):
    return int((time.monotonic() - since) * 1000)


def count_tokens(text):
    """A rough count (words); report your provider's own usage when it gives one."""
    return len(text.split())


def call_model(prompt):
    """Stands in for a model: answers each kind of prompt with a deterministic text."""
    subject = prompt.split(":", 1)[-1].strip()
    if prompt.startswith("Outline"):
        return "\n".join(f"{n}. {part} of {subject}" for n, part in
                         enumerate(["What it is", "Why it matters", "How it works", "Pitfalls"], 1))
    if prompt.startswith("Draft"):
        points = [line.split(". ", 1)[-1] for line in subject.splitlines()]
        return " ".join(f"{point}: explained in one sentence." for point in points)
    return f"Reviewed {len(subject.split())} words: clear, accurate, ready."


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("PIPESCOPE_URL", "http://127.0.0.1:3000"),
                        help="pipescope's address (PIPESCOPE_URL; default %(default)s)")
    parser.add_argument("--token", default=os.environ.get("PIPESCOPE_TOKEN"),
                        help="the token pipescope was started with, if any (PIPESCOPE_TOKEN)")
    parser.add_argument("--pipeline", default="external-brief", help="the name the run is shown under")
    parser.add_argument("--topic", default="event sourcing")
    args = parser.parse_args()

    run = Run(Pipescope(args.url, args.token), args.pipeline, {"topic": args.topic})
    step = None
    try:
        step = "outline"
        outline = run.step(step, f"Outline: {args.topic}", call_model)
        step = "draft"
        draft = run.step(step, f"Draft from this outline: {outline}", call_model)
        step = "review"
        run.step(step, f"Review this draft: {draft}", call_model)
        run.complete()
    except IngestError as error:
        print(f"report_steps: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        run.fail(error, step)
        raise
    print(f"reported {run.sent} events; see {args.url.rstrip('/')}/runs/{run.execution_id}")
    print(f"execution {run.execution_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
