#!/usr/bin/env python3
"""Runs examples/report_steps.py against a real pipescope (PIPESCOPE_URL) and reads the run back
through the REST API: the run, its three steps with their prompts and responses, its log lines,
and a batch sent again stored once. `scripts/test` starts the server and runs this."""

import json
import os
import subprocess
import sys
import time
import unittest
import urllib.request
from pathlib import Path

EXAMPLE = Path(__file__).with_name("report_steps.py")
URL = os.environ.get("PIPESCOPE_URL", "http://127.0.0.1:3000").rstrip("/")

sys.path.insert(0, str(EXAMPLE.parent))
import report_steps  # noqa: E402  (the example itself, for the retry test)


def get(path):
    with urllib.request.urlopen(URL + path, timeout=10) as response:
        return json.load(response)


class ReportSteps(unittest.TestCase):
    def run_example(self, *args):
        done = subprocess.run([sys.executable, str(EXAMPLE), "--url", URL, *args],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        last = done.stdout.strip().splitlines()[-1]
        self.assertTrue(last.startswith("execution "), done.stdout)
        return last.split()[1]

    def test_the_run_and_its_steps_arrive(self):
        execution = self.run_example("--pipeline", "report-steps-test", "--topic", "CRDTs")
        run = get(f"/api/v1/executions/{execution}")
        self.assertEqual(run["pipeline"], "report-steps-test")
        self.assertEqual(run["status"], "completed")
        self.assertEqual(run["source"], "ingest")
        self.assertEqual(run["inputs"], {"topic": "CRDTs"})
        steps = {step["step"]: step for step in run["steps"]}
        self.assertEqual(sorted(steps), ["draft", "outline", "review"])
        for step in steps.values():
            self.assertEqual(step["status"], "completed", step)
            self.assertEqual(step["provider"], "local")
            self.assertGreater(step["total_tokens"], 0)
        self.assertEqual(steps["outline"]["prompt"], "Outline: CRDTs")
        self.assertIn("1. What it is of CRDTs", steps["outline"]["response"])
        self.assertIn(steps["outline"]["response"], steps["draft"]["prompt"])
        self.assertEqual(run["total_tokens"], sum(s["total_tokens"] for s in steps.values()))
        self.assertEqual(set(run["results"]), {"outline", "draft", "review"})
        # The history lists it, and each step's log line is stored with it.
        history = get("/api/v1/history?pipeline=report-steps-test")
        self.assertIn(execution, [r["id"] for r in history["runs"]])
        logs = get(f"/api/v1/logs?run={execution}")
        self.assertEqual(sorted(line["step"] for line in logs["lines"]), ["draft", "outline", "review"])
        # The unversioned alias answers the same.
        self.assertEqual(get(f"/api/executions/{execution}")["steps"], run["steps"])

    def test_a_batch_sent_again_is_stored_once(self):
        client = report_steps.Pipescope(URL)
        run = report_steps.Run(client, "report-steps-retry", {})
        # As if the answer to the first send were lost: the same events, ids and all.
        start = [dict(e, id=f"{run.execution_id}/again") for e in [report_steps.event(
            "log:entry", {"level": "warn", "message": "sent twice", "timestamp": report_steps.now(),
                          "context": {"execution_id": run.execution_id}})]]
        first = client.send(start)
        second = client.send(start)
        self.assertEqual((first["accepted"], first["duplicates"]), (1, 0))
        self.assertEqual((second["accepted"], second["duplicates"]), (0, 1))
        deadline = time.monotonic() + 5
        while True:
            lines = get(f"/api/v1/logs?run={run.execution_id}")["lines"]
            if lines or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual([line["message"] for line in lines], ["sent twice"])

    def test_a_refusal_says_what_to_fix(self):
        client = report_steps.Pipescope(URL)
        with self.assertRaises(report_steps.IngestError) as refused:
            client.send([report_steps.event("step:started", {"step": "x"})])
        self.assertIn("422", str(refused.exception))
        self.assertIn("execution_id", str(refused.exception))


if __name__ == "__main__":
    unittest.main()
