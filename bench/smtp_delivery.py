"""Benchmark: e-mail delivery through the notification outbox vs a bare smtplib loop.

Delivers N e-mails (default 10,000) to a local aiosmtpd server twice in the same process:

- **baseline** — one ``smtplib.SMTP`` connection, ``sendmail`` in a loop of one pre-built message
  (the invitation as the outbox renders it, headers included, so the same bytes per message);
- **outbox** — ``messages_enqueue_bulk`` in one transaction, then the delivery loop
  (``outbox_deliver_due``: claim batches, render templates, send over one SMTP connection per
  batch, mark each message sent) — both timed, enqueue included.

Prints messages/s for both and the ratio outbox ÷ baseline (target ≥ 0.5), and writes
``bench/results/smtp_delivery.json``.  Needs PostgreSQL (it creates and drops its own database
``bench_smtp_delivery``):

    DATABASE_URL=postgres://root@127.0.0.1:5432/postgres .venv/bin/python bench/smtp_delivery.py
    # options: --count 10000 --batch-size 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import smtplib
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


SERVER = """
import sys, time
from aiosmtpd.controller import Controller

class Counter:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Counter.count += 1
        return "250 OK"
    async def handle_NOOP(self, server, session, envelope, arg):
        return f"250 {Counter.count}"

controller = Controller(Counter(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
sys.stdin.read()  # until the parent closes our stdin
controller.stop()
"""


def received(port: int) -> int:
    """Messages the SMTP server process has accepted so far (asked with NOOP)."""
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        code, text = smtp.noop()
        return int(text)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def progress(label: str, done: int, total: int) -> None:
    print(f"\r{label}: {done}/{total}", end="", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("needs DATABASE_URL=postgres://... (see the module docstring)", file=sys.stderr)
        return 2

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction
    from django.test.utils import override_settings

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = "bench_smtp_delivery"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    # The SMTP server runs in its own process, as a real one would: in this process it would
    # compete with the code under test for the GIL and distort both measurements.
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    try:
        from notifications.models import Message, NotificationPreference
        from notifications.services import (
            OutgoingMessage,
            messages_enqueue_bulk,
            outbox_deliver_due,
        )
        from wellbeing.models import Organisation, User

        organisation = Organisation.objects.create(name="Bench", slug="bench", timezone="UTC")
        users = User.objects.bulk_create(
            [
                User(email=f"bench{i}@example.test", organisation=organisation, password="!")
                for i in range(args.count)
            ],
            batch_size=2000,
        )
        from datetime import time as wall

        NotificationPreference.objects.bulk_create(
            [
                NotificationPreference(
                    user=u,
                    work_start=wall(0),
                    work_end=wall(23, 59, 59, 999999),
                    work_days=list(range(7)),
                )
                for u in users
            ],
            batch_size=2000,
        )

        def baseline() -> float:
            start_count = received(port)
            started = time.perf_counter()
            smtp = smtplib.SMTP("127.0.0.1", port)
            smtp.ehlo()
            for index, user in enumerate(users):
                smtp.sendmail("pulse@localhost", [user.email], payload)
                if index % 1000 == 0:
                    progress("baseline", index, len(users))
            smtp.quit()
            elapsed = time.perf_counter() - started
            assert received(port) - start_count == len(users)
            print()
            return len(users) / elapsed

        def outbox() -> tuple[float, float, float]:
            start_count = received(port)
            started = time.perf_counter()
            with transaction.atomic():
                messages_enqueue_bulk(
                    OutgoingMessage(
                        organisation_id=organisation.pk,
                        kind="invitation",
                        recipient_id=user.pk,
                        template="invitation",
                        context={"closes_on": "Friday"},
                        idempotency_key=f"bench:{run}:{user.pk}",
                        sensitive_context={"url": f"https://pulse.example/t/{user.pk}"},
                    )
                    for user in users
                )
            enqueued = time.perf_counter()
            sent = 0
            while True:
                report = outbox_deliver_due(batch_size=args.batch_size, max_batches=5)
                if not report.claimed:
                    break
                sent += report.sent
                progress("outbox", sent, len(users))
            elapsed = time.perf_counter() - started
            print()
            assert sent == len(users) == received(port) - start_count, sent
            return len(users) / elapsed, enqueued - started, elapsed - (enqueued - started)

        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_USE_TLS=False,
        ):
            import logging

            logging.getLogger("pulse.notifications").setLevel(logging.WARNING)
            run = 1
            # Warm up outside the timings: URL resolver, template loading, imports.
            from notifications.rendering import render_message
            from notifications.services import email_build, unsubscribe_url_for

            warm = Message(
                organisation=organisation,
                kind="invitation",
                template="invitation",
                recipient=users[0],
                context={},
                idempotency_key="warm",
            )
            # Baseline messages: the invitation e-mail exactly as the outbox renders it for one
            # recipient (one-time link, unsubscribe link and List-Unsubscribe headers), built
            # once up front and sent to every recipient: the same bytes on the wire per
            # message, none of the outbox's work.
            warm.sensitive_context = {"url": f"https://pulse.example/t/{users[0].pk}"}
            warm.context = {"closes_on": "Friday"}
            rendered = render_message(warm, unsubscribe_url=unsubscribe_url_for(users[0]))
            mime = email_build(to=users[0].email, rendered=rendered).message()
            payload = mime.as_bytes(linesep="\r\n")  # type: ignore[call-arg]  # as Django sends it
            base_before = baseline()
            outbox_rate, enqueue_s, deliver_s = outbox()
            base_after = baseline()
            base_rate = (base_before + base_after) / 2
        ratio = outbox_rate / base_rate
        result = {
            "benchmark": "smtp_delivery",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "count": args.count,
            "batch_size": args.batch_size,
            "baseline_msgs_per_s": round(base_rate, 1),
            "baseline_runs_msgs_per_s": [round(base_before, 1), round(base_after, 1)],
            "message_bytes": len(payload),
            "outbox_msgs_per_s": round(outbox_rate, 1),
            "outbox_enqueue_s": round(enqueue_s, 3),
            "outbox_deliver_s": round(deliver_s, 3),
            "ratio": round(ratio, 3),
            "target_ratio": 0.5,
            "sent_rows": Message.objects.filter(state="sent").count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        }
        out = REPO / "bench" / "results" / "smtp_delivery.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(
            f"smtp_delivery: baseline {base_rate:.0f} msg/s, outbox {outbox_rate:.0f} msg/s "
            f"(enqueue {enqueue_s:.2f}s + deliver {deliver_s:.2f}s), ratio {ratio:.2f} "
            f"(target >= 0.5) -> {out.relative_to(REPO)}"
        )
        return 0
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    raise SystemExit(main())
