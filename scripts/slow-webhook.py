#!/usr/bin/env python3
"""A webhook receiver on 127.0.0.1 that answers every POST after a fixed latency (a SIEM round
trip), many requests at once. Used by scripts/bench-deliver.sh.

Usage: slow-webhook.py PORT LATENCY_MS STATS_FILE
On SIGTERM it writes `requests bytes max_concurrent` to STATS_FILE and exits.
"""
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, latency, stats_path = int(sys.argv[1]), int(sys.argv[2]) / 1000.0, sys.argv[3]
lock = threading.Lock()
state = {"requests": 0, "bytes": 0, "now": 0, "max": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes the status line and headers, then the body, in two writes; with Nagle
    # on, the second waits for the client's delayed ACK, adding ~40 ms to every answer (measured:
    # 43 ms per request at LATENCY_MS=0). A SIEM answers in one write; so does this receiver.
    disable_nagle_algorithm = True

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(latency)
        with lock:
            state["now"] -= 1
            state["requests"] += 1
            state["bytes"] += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def stop(*_):
    with open(stats_path, "w") as f:
        f.write(f'{state["requests"]} {state["bytes"]} {state["max"]}\n')
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 128
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
