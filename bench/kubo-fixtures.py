"""Serves Kubo's documented RPC responses from tests/fixtures/kubo/ on 127.0.0.1:PORT, as
tests/support/kubo_fixtures.rs does for the tests, so a benchmarked sentinel collects a
realistic IPFS section without a real node eating the CPU being measured.
Usage: python3 bench/kubo-fixtures.py PORT"""
import http.server
import pathlib
import sys
import urllib.parse

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "kubo"


def fixture(endpoint, query):
    kind = query.get("type", [""])[0]
    if endpoint == "repo/stat" and query.get("size-only", [""])[0] == "true":
        return "repo_stat_size_only.json"
    return {
        "id": "id.json",
        "version": "version.json",
        "repo/stat": "repo_stat.json",
        "stats/bw": "stats_bw.json",
        "bitswap/stat": "bitswap_stat.json",
        "swarm/peers": "swarm_peers.json",
        "pin/ls": {"recursive": "pin_ls_recursive_stream.ndjson",
                   "direct": "pin_ls_direct_stream.ndjson"}.get(kind),
    }.get(endpoint)


class Kubo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        name = fixture(url.path.removeprefix("/api/v0/"), urllib.parse.parse_qs(url.query))
        if name is None:
            self.reply(404, b'{"Message":"unknown command","Code":0,"Type":"error"}')
        else:
            self.reply(200, (FIXTURES / name).read_bytes())

    def do_GET(self):
        if self.path == "/debug/metrics/prometheus":
            self.reply(200, (FIXTURES / "debug_metrics.prom").read_bytes())
        else:
            self.reply(405, b"405 - Method Not Allowed\n")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Kubo).serve_forever()
