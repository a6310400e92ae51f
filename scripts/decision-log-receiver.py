#!/usr/bin/env python3
"""A decision-log service for tests and demos: accepts OPA-style uploads (POST, gzip'd JSON array of events).

  decision-log-receiver.py PORT OUT.jsonl [--delay SECONDS]

Each upload is gunzipped, parsed (it must be one JSON array) and appended to OUT.jsonl as one line, in the order
received; --delay holds every answer that long, to play a slow service. Listens on 127.0.0.1 only.
"""
import gzip, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, out = int(sys.argv[1]), sys.argv[2]
delay = float(sys.argv[sys.argv.index('--delay') + 1]) if '--delay' in sys.argv else 0.0
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        if self.headers.get('Content-Encoding') == 'gzip':
            body = gzip.decompress(body)
        batch = json.loads(body)
        assert isinstance(batch, list)
        with lock, open(out, 'a') as f:
            f.write(json.dumps(batch) + '\n')
        time.sleep(delay)
        self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(('127.0.0.1', port), Handler).serve_forever()
