"""A minimal QMP client (QEMU's JSON machine protocol over a unix socket) for the VM
tests that stop a guest and dump it from the host, or take screenshots."""
import json
import os
import socket
import time


class QMPError(Exception):
    pass


class QMP:
    def __init__(self, path, timeout=60):
        end = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > end or not os.path.exists(os.path.dirname(path)):
                    raise QMPError("cannot connect to QMP socket %s" % path)
                time.sleep(0.2)
        self.sock.settimeout(timeout)
        self.buf = b""
        greeting = self._message()
        if "QMP" not in greeting:
            raise QMPError("not a QMP greeting: %r" % greeting)
        self.events = []
        self.execute("qmp_capabilities")

    def _message(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QMPError("QMP socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, timeout=None, **arguments):
        """Run a command and return its "return" value (events seen are kept)."""
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        old = self.sock.gettimeout()
        if timeout:
            self.sock.settimeout(timeout)
        try:
            while True:
                reply = self._message()
                if "event" in reply:
                    self.events.append(reply)
                    continue
                if "error" in reply:
                    raise QMPError("%s: %s" % (command, reply["error"].get("desc", reply)))
                return reply.get("return")
        finally:
            self.sock.settimeout(old)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
