# The store: a visit counter kept in /data/count (the named volume "data").
import http.server, os

COUNT = "/data/count"

class Store(http.server.BaseHTTPRequestHandler):
    def reply(self, text):
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            return self.reply("ok")
        self.reply(open(COUNT).read() if os.path.exists(COUNT) else "0")

    def do_POST(self):
        n = (int(open(COUNT).read()) if os.path.exists(COUNT) else 0) + 1
        with open(COUNT + ".tmp", "w") as f:
            f.write(str(n))
        os.rename(COUNT + ".tmp", COUNT)
        self.reply(str(n))

    def log_message(self, *args):
        pass

print("store: listening on 6000", flush=True)
http.server.ThreadingHTTPServer(("", 6000), Store).serve_forever()
