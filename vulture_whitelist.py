"""Names vulture reports as unused in ``gateway/`` that are used, each with where from.

Read by vulture only (``make lint``; ``[tool.vulture]`` in pyproject.toml), never imported.
A name goes here only with its reason; dead code is removed instead.
"""

# ruff: noqa
# mypy: ignore-errors

_ = object()

# --- Fields of wire and stored models: read by pydantic when serialising (schemas/, docs/mqtt.md)
_.updated_at  # payloads.RetainedCredentialState
_.device_revision  # payloads.ProgrammingResult
_.occurred_at  # payloads.AccessEvent, payloads.DeviceEvent
_.cause  # payloads.ExpiryWarning
_.other_instance  # payloads.GatewayConflict
_.head_seq  # payloads.AuditAnchor
_.head_hash  # payloads.AuditAnchor
_.head_at  # payloads.AuditAnchor
_.confirmed_in_person  # commands.model: a field of a request
_.return_duty_acknowledged  # commands.model: a field of a request
_.delivery_address  # domain.facts: a stored fact's field
_.ordered_at  # domain.facts: a stored fact's field
_.issued_at  # domain.facts: a stored fact's field
_.NEW_EMPLOYEE  # domain.facts.VisitorReason: a value requests may carry
_.SUPPLIER  # domain.facts.VisitorReason: a value requests may carry
_.waiting_for_core  # sitepayloads.SiteState (the agent's retained state)

# --- Called or read by the libraries underneath
_.__getattr__  # cli: the module's lazy `app` (from gateway.cli import app, in the tests)
_.on_message  # bridge.client: paho-mqtt's callback for every received message
_._topic  # bridge.packets: paho-mqtt's MQTTMessage slot, read by its ``topic`` property
_.SessionExpiryInterval  # bridge.client: paho-mqtt CONNECT properties
_.ReceiveMaximum  # bridge.client: paho-mqtt CONNECT properties
_.CorrelationData  # bridge.client: paho-mqtt PUBLISH properties
_.pending_calls_threshold  # bridge.client: paho-mqtt's client setting
_.isolation_level  # store.database: the sqlite3 connection's setting
_.load_dialect_impl  # store.tables: SQLAlchemy TypeDecorator hook (UtcTimestamp on SQLite)
_.core_fonts_encoding  # documents.receipt: fpdf2's setting
_.dotenv_settings  # config: pydantic-settings' settings_customise_sources signature
_.file_secret_settings  # config: pydantic-settings' settings_customise_sources signature
_.exc_type  # demo.broker: the context manager protocol's __exit__ signature
_.tb  # demo.broker: the context manager protocol's __exit__ signature

_.leader_lease  # store.tables: a table of the metadata, used in SQL text by leadership.lease

# --- Read by the console's templates (gateway/web/templates/dashboard.html)
_.job_counts  # web.views.Dashboard
_.revocation_oldest  # web.views.Dashboard
_.keys_due  # web.views.Dashboard
_.applications_overdue  # web.views.Dashboard
_.pages  # web.views.Page (templates/_pager.html)

# --- uvicorn's server hooks (gateway/web/service.py)
_.capture_signals  # uvicorn.Server: overridden so the gateway's owner handles signals
_.should_exit  # uvicorn.Server: read by uvicorn's main loop

# --- Observation points read by tests, benchmarks and the deployment check
_.unacknowledged  # bridge.client.RequestSession: tests/gateway/bridge/test_client.py
_.conflicts  # bridge.mqtt_bridge.MqttBridge: tests/gateway/bridge/test_conflict.py
_.running  # demo.broker.PrivateMosquitto: tests/conftest.py
_.restart  # demo.broker.PrivateMosquitto: tests/gateway/bridge/test_resilience.py
_.DeployedMosquitto  # demo.broker: bench/ingest.py, bench/reliability.py, tests
_.inside  # domain.timeutil.Window: tests/gateway/rules/test_properties.py
_.all_facts  # rules.factset.FactSet: tests/gateway/rules/test_incremental.py
_.jobs  # store.device_records: tests/gateway/store/test_device_records.py
_.device_statuses  # store.device_records: tests/deploy/bench.py, tests
_.key_audit_records  # store.device_records: tests/gateway/store/test_device_records.py
_.writes  # sync.controller.ControllerWorker: tests/gateway/sync, bench/controller.py
_.messages_in  # agent.hub.SiteHub: bench/sites.py (core cost per site)
_.messages_out  # agent.hub.SiteHub: bench/sites.py
_.confirm_s  # agent.hub.SiteHub: bench/sites.py
_.confirmations  # agent.hub.SiteHub: bench/sites.py

# --- Written and never read, in modules being restructured in other work (left to it)
_.settings_writes  # sync.controller.ControllerWorker
_.clock_sets  # sync.controller.ControllerWorker
_.last_write  # sync.controller.ControllerWorker
_.handled  # bridge.inbound (the request pipeline)
