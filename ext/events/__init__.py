"""``events``: CloudEvents about repositories and images, to HTTP webhooks and NATS (zot's
events extension), delivered at least once from an outbox in the meta DB.

zot's keys are kept as zot names them (``sinks[]`` with ``type``, ``address``, ``channel``,
``timeout``, ``headers``, ``proxy``, ``credentials``, ``tls``; ``source`` and ``typePrefix`` at
the top). Beyond zot, per sink: ``events`` and ``repositories`` filters, ``signature`` (an HMAC
header on HTTP deliveries) and ``maxQueued`` (the bounded backlog). A key that cannot work for
its sink type (``proxy`` on NATS, ``signature`` on NATS, ``credentials.file`` on HTTP) is
refused with its path, never accepted and ignored.
"""

from __future__ import annotations

from ocireg.extensions.declaration import Extension

EXTENSION = Extension(
    name="events",
    description="CloudEvents on repository and image changes, to HTTP and NATS, at least once.",
    setup="ocireg.ext.events.extension:setup",
    prepare="ocireg.ext.events.extension:prepare",
    settings="ocireg.ext.events.settings:EventsSettings",
    extra="events",
    requires=("cloudevents", "nats", "httpx"),
)
