# The web front, on the published port: it asks the api (by its service name) and answers.
import http.server, os, urllib.request

API = os.environ["API_URL"]

class Web(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        answer = urllib.request.urlopen(API + "/", timeout=5).read()
        body = b"hello from web, " + answer + b"\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

print("web: listening on 8000", flush=True)
http.server.ThreadingHTTPServer(("", 8000), Web).serve_forever()
