#!/usr/bin/env python3
"""A console socket for tests, as an engine provides one (Node cannot receive SCM_RIGHTS).

usage: console-socket.py SOCKET INPUT-FILE OUTPUT-FILE [SECONDS]

Listens on SOCKET, receives the pty master that the runtime sends, writes INPUT-FILE's bytes to it, and copies
everything the container prints to OUTPUT-FILE until the pty closes (or SECONDS pass). Prints "ready" on
stdout once it listens, and the name sent with the fd on stderr.
"""
import array, os, select, socket, sys, time

path, input_file, output_file = sys.argv[1:4]
limit = float(sys.argv[4]) if len(sys.argv) > 4 else 20
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
print("ready", flush=True)
conn, _ = server.accept()
fds = array.array("i")
msg, ancdata, _, _ = conn.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
for level, kind, data in ancdata:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
if not fds:
    sys.exit("no fd received")
master = fds[0]
sys.stderr.write(msg.decode(errors="replace") + "\n")
with open(input_file, "rb") as f:
    os.write(master, f.read())
deadline = time.time() + limit
with open(output_file, "wb") as out:
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        out.write(chunk)
        out.flush()
os.close(master)
conn.close()
server.close()
os.unlink(path)
