#!/usr/bin/env python3
"""Opens N mutual-TLS keep-alive connections to a proxy, sends one request on each, and keeps them idle.

Usage: idle-connections.py PORT N WORKLOAD_DIR TOKEN
WORKLOAD_DIR holds the client's cert-chain.pem, key.pem and root-cert.pem. Prints "ready: N connections" once every
connection has had its response, then waits until killed (proxy-load.sh reads the proxy's memory meanwhile).
"""
import socket
import ssl
import sys
import time

port, count, directory, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=f"{directory}/root-cert.pem")
context.load_cert_chain(f"{directory}/cert-chain.pem", f"{directory}/key.pem")
context.check_hostname = False
request = (f"GET /bench/idle HTTP/1.1\r\nHost: details\r\nAuthorization: Bearer {token}\r\n\r\n").encode()

connections = []
for _ in range(count):
    raw = socket.create_connection(("127.0.0.1", port))
    tls = context.wrap_socket(raw, server_hostname="details")
    tls.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += tls.recv(4096)
    if not answer.startswith(b"HTTP/1.1 200"):
        sys.exit(f"unexpected answer: {answer[:80]!r}")
    connections.append(tls)
print(f"ready: {len(connections)} connections", flush=True)
while True:
    time.sleep(60)
