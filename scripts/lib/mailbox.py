#!/usr/bin/env python3
"""A development mailbox: an SMTP sink that keeps every message in memory and shows them over HTTP, so that the
staff console's magic-link sign-in works on a developer's machine and in scripts/bench/console. It delivers
nothing, checks no password and offers no TLS: loopback only.

    scripts/lib/mailbox.py [--smtp-port 1025] [--http-port 8025] [--host 127.0.0.1]

HTTP, the same contract as crates/testkit's SmtpSink::serve_http:
    GET /messages?to=<address>   JSON array, oldest first, of {"from", "to": [...], "subject", "text"} (text is the
                                 decoded plain-text body); without ?to= every message
    DELETE /messages             forgets them all
SMTP: EHLO/HELO, MAIL FROM, RCPT TO, DATA (dot-stuffing undone), RSET, NOOP, QUIT. The newest 1,000 messages are
kept. Python 3 standard library only (smtpd is gone from 3.12).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import json
import re
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MAX_MESSAGES = 1000
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
ADDRESS = re.compile(r"<([^>]*)>")

messages: list[dict] = []
lock = threading.Lock()


def address_of(command: str) -> str:
    found = ADDRESS.search(command)
    if found:
        return found.group(1).strip()
    return command.split(":", 1)[-1].strip().split(" ")[0]


def store(sender: str, recipients: list[str], data: bytes) -> None:
    message = email.message_from_bytes(data, policy=policy.default)
    body = message.get_body(preferencelist=("plain", "html"))
    try:
        text = body.get_content() if body is not None else ""
    except (LookupError, ValueError):
        text = body.get_payload(decode=True).decode("utf-8", "replace") if body is not None else ""
    entry = {
        "from": sender,
        "to": recipients,
        "subject": str(message.get("subject", "")),
        "text": text.replace("\r\n", "\n"),
    }
    with lock:
        messages.append(entry)
        del messages[:-MAX_MESSAGES]
    print(f"mailbox: from {sender} to {', '.join(recipients)}: {entry['subject']}", flush=True)


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    async def reply(line: str) -> None:
        writer.write(line.encode() + b"\r\n")
        await writer.drain()

    sender, recipients = None, []
    try:
        await reply("220 almoner-mailbox ESMTP")
        while line := await reader.readline():
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                writer.write(b"250-almoner-mailbox\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n")
                await writer.drain()
            elif verb == "HELO":
                await reply("250 almoner-mailbox")
            elif verb == "MAIL":
                sender, recipients = address_of(command), []
                await reply("250 OK")
            elif verb == "RCPT":
                if sender is None:
                    await reply("503 MAIL first")
                    continue
                recipients.append(address_of(command))
                await reply("250 OK")
            elif verb == "DATA":
                if sender is None or not recipients:
                    await reply("503 MAIL and RCPT first")
                    continue
                await reply("354 End data with <CR><LF>.<CR><LF>")
                data, size = [], 0
                while True:
                    chunk = await reader.readline()
                    if not chunk:
                        return
                    if chunk in (b".\r\n", b".\n"):
                        break
                    # RFC 5321 4.5.2: a line the client began with "." had another "." added.
                    if chunk.startswith(b"."):
                        chunk = chunk[1:]
                    size += len(chunk)
                    if size <= MAX_MESSAGE_BYTES:
                        data.append(chunk)
                if size > MAX_MESSAGE_BYTES:
                    await reply("552 message too large")
                else:
                    store(sender, recipients, b"".join(data))
                    await reply("250 OK: kept")
                sender, recipients = None, []
            elif verb == "RSET":
                sender, recipients = None, []
                await reply("250 OK")
            elif verb == "NOOP":
                await reply("250 OK")
            elif verb == "QUIT":
                await reply("221 Bye")
                return
            else:
                await reply("502 command not implemented")
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        if url.path != "/messages":
            self._send(404, b"GET /messages?to=<address>\n", "text/plain")
            return
        to = (parse_qs(url.query).get("to") or [""])[0].strip().lower()
        with lock:
            found = [m for m in messages if not to or to in (r.lower() for r in m["to"])]
        self._send(200, json.dumps(found).encode())

    def do_DELETE(self) -> None:  # noqa: N802
        if urlparse(self.path).path != "/messages":
            self._send(404, b"", "text/plain")
            return
        with lock:
            messages.clear()
        self._send(204, b"")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args()
    http = ThreadingHTTPServer((args.host, args.http_port), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    server = await asyncio.start_server(session, args.host, args.smtp_port)
    print(f"mailbox: SMTP on {args.host}:{args.smtp_port}, messages at http://{args.host}:{args.http_port}/messages",
          flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
