# The api: each visit is counted in the store, reached by its service name.
import http.server, os, urllib.request

STORE = os.environ["STORE_URL"]

class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        n = urllib.request.urlopen(urllib.request.Request(STORE + "/visit", method="POST"), timeout=5).read()
        body = b"visits: " + n
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

print("api: listening on 5000", flush=True)
http.server.ThreadingHTTPServer(("", 5000), Api).serve_forever()
