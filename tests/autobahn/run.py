"""Runs the Autobahn|Testsuite cases against a WebSocket server with the
kosoku runner, every case but the compression ones (12.*, 13.*), and
writes one line of results per case as JSON:
{"1.1.1": {"behavior": "OK", "behaviorClose": "OK", "remoteCloseCode": 1000}, ...}

Usage: run.py ws://HOST:PORT OUT.json [REPORT_DIR]
With REPORT_DIR, kosoku's full Autobahn-format reports are written there too.
"""

import asyncio
import json
import sys

from kosoku import FailureError, run_fuzzingclient

EXCLUDE = ["12.*", "13.*"]


def case_key(case_id):
    return [int(part) for part in case_id.split(".")]


async def main(url, out, report_dir):
    try:
        results = await run_fuzzingclient(url, None, EXCLUDE)
    except FailureError as failure:  # some case did not pass: still report
        results = failure.results
    if report_dir:
        from kosoku._report import write_reports
        write_reports(results, report_dir)
    table = {
        r.case_id: {
            "behavior": r.behavior.value,
            "behaviorClose": r.behavior_close.value,
            "remoteCloseCode": r.remote_close_code,
        }
        for r in results
    }
    with open(out, "w") as f:
        f.write("{\n")
        lines = [f"  {json.dumps(k)}: {json.dumps(table[k], sort_keys=True)}"
                 for k in sorted(table, key=case_key)]
        f.write(",\n".join(lines))
        f.write("\n}\n")


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
