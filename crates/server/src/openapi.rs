//! The OpenAPI document (`/api/v1/openapi.json`), built from one table of routes. Request
//! bodies use the JSON Schema of the scenario format (docs/scenario.schema.json), so the API
//! and the files describe observations, transits and zones the same way.

use serde_json::{Value, json};

/// One documented operation.
#[derive(Debug)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// A schema in `components.schemas` for the request body, or `array:NAME`.
    pub body: Option<&'static str>,
    /// The success status.
    pub ok: u16,
    /// Query parameters.
    pub query: &'static [&'static str],
}

const ALARM_FILTERS: &[&str] = &[
    "state",
    "kind",
    "min_grade",
    "transit",
    "from",
    "to",
    "after",
    "limit",
    "format",
];

/// Every route the service answers. `tests/openapi.rs` checks this table against the router.
pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/healthz",
        summary: "Liveness: the process answers",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/readyz",
        summary: "Readiness: the writer and the store answer",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/openapi.json",
        summary: "This document",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/docs",
        summary: "This reference as a page to browse (works offline)",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/session",
        summary: "Sign in: sets the sealwatch_session cookie and returns the CSRF token to send in X-CSRF-Token (429 with Retry-After while locked out)",
        body: Some("sign_in"),
        ok: 201,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/session",
        summary: "Who the caller is (session or token)",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "delete",
        path: "/api/v1/session",
        summary: "Sign out: the session cookie stops working",
        body: None,
        ok: 204,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/session/totp",
        summary: "An administrator enrols a TOTP second factor: returns the otpauth URI once; sign-in then needs a code",
        body: None,
        ok: 201,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/zones",
        summary: "Add or replace a zone",
        body: Some("zone"),
        ok: 204,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/zones",
        summary: "List zones",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/transits",
        summary: "Declare a transit with its supervision information",
        body: Some("transit"),
        ok: 201,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/transits",
        summary: "List transits, optionally in one state or declared in a time range; format=csv exports the whole filtered list (recorded in the audit chain)",
        body: None,
        ok: 200,
        query: &["state", "from", "to", "after", "limit", "format"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/transits/{id}",
        summary: "A transit and its state",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/transits/{id}/actions",
        summary: "Act on a transit: pair (with device, before sealing), seal, arrive, release, inspect (with reason), authorize_unseal, unseal, close, extend_deadline; answers with the state after it",
        body: Some("transit_action"),
        ok: 202,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/transits/{id}/events",
        summary: "A transit's events in time order, in a time range, paged",
        body: None,
        ok: 200,
        query: &["from", "to", "after", "limit"],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/observations",
        summary: "Ingest a batch of observations; a result per item",
        body: Some("array:observation"),
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/reads",
        summary: "A reader's checkpoint read",
        body: Some("read"),
        ok: 202,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/alarms",
        summary: "List alarms, filtered and paged; format=csv exports the whole filtered list (recorded in the audit chain)",
        body: None,
        ok: 200,
        query: ALARM_FILTERS,
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/alarms/{id}",
        summary: "An alarm with its handling history",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/alarms/{id}/{step}",
        summary: "Handle an alarm: step is acknowledge, dispatch, report (comments in note; the state stays), resolve (with outcome) or close",
        body: Some("alarm_step"),
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/stations",
        summary: "Add or replace a station (its zone must be registered)",
        body: Some("station"),
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/stations",
        summary: "List stations, paged",
        body: None,
        ok: 200,
        query: &["after", "limit"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/stations/{id}",
        summary: "A station",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/devices",
        summary: "Register a device or replace its registration; answers the device with its last report, battery and position",
        body: Some("device"),
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/devices",
        summary: "List devices, by station, state and kind, paged",
        body: None,
        ok: 200,
        query: &["station", "state", "kind", "after", "limit"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/devices/{id}",
        summary: "A device with its last report, battery and position",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/readers",
        summary: "Add or replace a reader",
        body: Some("reader"),
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/readers",
        summary: "List readers, paged",
        body: None,
        ok: 200,
        query: &["after", "limit"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/readers/{id}",
        summary: "A reader",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "put",
        path: "/api/v1/readers/{id}/key",
        summary: "Provision a registered reader's Ed25519 public key (hex), replacing any earlier one and clearing a revocation",
        body: Some("reader_key"),
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/readers/{id}/key",
        summary: "A reader's public key, with when it was provisioned and revoked",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "delete",
        path: "/api/v1/readers/{id}/key",
        summary: "Revoke a reader's key: its posts are refused from now on",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/readers/{id}/reads",
        summary: "A reader's checkpoint reads, signed with its own key in the Sealwatch-Reader-Signature header (ed25519=<hex> over \"sealwatch-reader-post-v1\\n\" + id + \"\\n\" + body); no bearer token. A result per read; a replayed post is answered with replay: true and not taken again",
        body: Some("reader_post"),
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/readers/{id}/posts",
        summary: "What a reader posted, exactly as signed, with the key that checked it, oldest first (evidence anyone with the key can verify)",
        body: None,
        ok: 200,
        query: &["after", "limit"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/transits/{id}/track",
        summary: "A transit's track as GeoJSON: a LineString Feature, or with format=points a FeatureCollection of Points",
        body: None,
        ok: 200,
        query: &["from", "to", "limit", "skip", "format"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/transits/{id}/alarms",
        summary: "A transit's alarms, filtered and paged",
        body: None,
        ok: 200,
        query: &[
            "state",
            "kind",
            "min_grade",
            "from",
            "to",
            "after",
            "limit",
            "format",
        ],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/statistics/transits",
        summary: "How many transits are in each state",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/statistics/alarms",
        summary: "Alarms raised in a time range, per UTC day, kind and grade",
        body: None,
        ok: 200,
        query: &["from", "to"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/pool",
        summary: "The device pool: every station's devices by state, transits leaving and reaching it over the history window (net inflow), and every device by life-cycle state",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/devices/{id}/history",
        summary: "A device's life cycle as it happened: every state change, oldest first, with its station afterwards and its cause (the registry, or its transit's sealing, departure or unsealing)",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/pool/plan",
        summary: "The rebalancing plan for the registry as it is: per station stock, forecast, dynamic safety stock and shortfall; the moves (from, to, devices, cost, device ids) at the least transport cost (docs/pool.md)",
        body: None,
        ok: 200,
        query: &["lead_days", "service_level"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/statistics/decisions",
        summary: "Release-or-inspect decisions in a time range: how many released without inspection, overrides, and the hit rate of inspections",
        body: None,
        ok: 200,
        query: &["from", "to"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/transits/{id}/proposal",
        summary: "The release-or-inspect proposal for a transit: decision, score (0-100), threshold, and every reason with its points (alarms, seal integrity, the carrier's and route's records, sensitive goods, random selection)",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/transits/{id}/decision",
        summary: "Release or inspect an arrived transit; going against the proposal needs a reason. Recorded with the proposal as shown, and audited",
        body: Some("decision"),
        ok: 201,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/transits/{id}/decision",
        summary: "The decision taken on a transit, with the proposal as it was shown and what the inspection found",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/transits/{id}/inspection",
        summary: "What the inspection of a transit decided `inspect` found (once); audited",
        body: Some("inspection_result"),
        ok: 201,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/alarms/{id}/attachments",
        summary: "Attach a photo or document to an alarm (body: the file; Content-Type image/jpeg, image/png, image/webp or application/pdf; query: name, actor)",
        body: None,
        ok: 201,
        query: &["name", "actor"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/alarms/{id}/attachments",
        summary: "An alarm's attachments (name, type, size, SHA-256, who and when)",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/alarms/{id}/attachments/{n}",
        summary: "One attachment's bytes",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/devices/{id}/commands",
        summary: "Queue a remote command (seal, unseal, set_interval, query_status) for a device's gateway to send; 202 with the command. An unseal needs its transit's authorize_unseal (409 otherwise)",
        body: Some("device_command"),
        ok: 202,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/devices/{id}/commands",
        summary: "A device's commands, oldest first, with their state and result",
        body: None,
        ok: 200,
        query: &["after", "limit"],
    },
    RouteDoc {
        method: "put",
        path: "/api/v1/devices/{id}/keys",
        summary: "Provision a device's native-protocol public keys (Ed25519 signing, X25519 agreement; hex), replacing any earlier set and clearing a revocation",
        body: Some("device_keys"),
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/devices/{id}/keys",
        summary: "A device's native-protocol public keys, with when they were provisioned and revoked",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "delete",
        path: "/api/v1/devices/{id}/keys",
        summary: "Revoke a device's native-protocol keys: the native gateway refuses it from its next connection",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/devices/{id}/log",
        summary: "What a device sent that is not an observation, oldest first: signed seal, unseal and tamper evidence (kind evidence, the record under `record`, checkable with the device's public key alone) and text command results; paged, filtered by kind",
        body: None,
        ok: 200,
        query: &["kind", "after", "limit"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/transits/{id}/commands",
        summary: "The commands sent for a transit, oldest first, with their state and result",
        body: None,
        ok: 200,
        query: &["after", "limit"],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/containers/{number}/pairings",
        summary: "Pair a device to an ISO 6346 container number: embedded (bound for life) or affixed (to one container at a time, until unpaired); `at` defaults to now; 409 when the device is embedded elsewhere, paired now, or was paired after `at`",
        body: Some("container_pairing_request"),
        ok: 201,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/containers/{number}/pairings",
        summary: "A container's pairings, oldest first, with their windows (paired_at, unpaired_at)",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/containers/{number}/pairings/{device}/unpair",
        summary: "End an affixed device's pairing to the container (optional body {\"at\": time}, now by default); 409 for an embedded device",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/webhooks/containers/{vendor}",
        summary: "A vendor cloud's smart-container reports (DCSA IoT events or UN/CEFACT readings, docs/containers.md), signed with the Sealwatch-Signature header (t=<unix s>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">) instead of a bearer token; each report is attributed to the device paired to its container at its time; a result per report once committed",
        body: Some("container_payload"),
        ok: 200,
        query: &["format"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/stream",
        summary: "Live events, alarms and alarm handling steps (Server-Sent Events); resumes after Last-Event-ID (or `after`), across restarts",
        body: None,
        ok: 200,
        query: &["only", "transit", "after"],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/map",
        summary: "Every supervised transit the caller sees, compactly, for the live map: the device's last position, the state, the highest grade of its unresolved alarms, communication lost",
        body: None,
        ok: 200,
        query: &[],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/audit",
        summary: "The audit chain in seq order, for auditors (docs/security.md): who did what, each entry hash-chained to the one before; `after` is the last seq of the previous page",
        body: None,
        ok: 200,
        query: &["after", "limit"],
    },
];

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for r in ROUTES {
        let mut parameters: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(
            r.query
                .iter()
                .map(|name| json!({"name": name, "in": "query", "schema": {"type": "string"}})),
        );
        let mut op = json!({
            "summary": r.summary,
            "parameters": parameters,
            "responses": {
                r.ok.to_string(): {"description": "success"},
                "default": {"description": "a problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/problem"}}}}
            }
        });
        if let Some(body) = r.body {
            let schema = match body.strip_prefix("array:") {
                Some(item) => {
                    json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}})
                }
                None => json!({"$ref": format!("#/components/schemas/{body}")}),
            };
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        if !r.path.starts_with("/api/v1/")
            || r.path == "/api/v1/openapi.json"
            || r.path == "/api/v1/docs"
        {
            // Open to anyone: health, metrics and the documentation.
            op["security"] = json!([]);
        } else if r.path == "/api/v1/session" && r.method == "post" {
            // Signing in is how a session starts.
            op["security"] = json!([]);
        } else if r.path.starts_with("/api/v1/session") {
            op["security"] = json!([{"bearer": []}, {"session": []}]);
        } else if r.path == "/api/v1/readers/{id}/reads" {
            op["security"] = json!([{"reader_signature": []}]);
        } else if r.path.starts_with("/api/v1/webhooks/") {
            // Signed by the vendor instead of a token (docs/containers.md).
            op["security"] = json!([{"vendor_signature": []}]);
        }
        paths.entry(r.path).or_insert_with(|| json!({}))[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "sealwatch",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Supervision of goods under customs control with Smart Security Devices. Errors are application/problem+json naming the field."
        },
        "paths": paths,
        "security": [{"bearer": []}, {"session": []}],
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token from `sealwatch token create` (swt_...)."},
                "session": {"type": "apiKey", "in": "cookie", "name": "sealwatch_session", "description": "A session from POST /api/v1/session. POST, PUT, PATCH and DELETE with it also need the header X-CSRF-Token: the csrf_token given at sign-in."},
                "reader_signature": {"type": "apiKey", "in": "header", "name": "Sealwatch-Reader-Signature", "description": "ed25519=<128 hex digits>: the reader's signature over \"sealwatch-reader-post-v1\\n\" + reader id + \"\\n\" + the body (docs/readers.md)."},
                "vendor_signature": {"type": "apiKey", "in": "header", "name": "Sealwatch-Signature", "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 with the vendor's secret of \"<t>.\" + the body>; t within five minutes of the service's clock (docs/containers.md)."}
            }
        }
    })
}

/// The scenario schema's definitions, re-rooted under `components.schemas`, plus the API's own.
fn schemas() -> Value {
    let text = include_str!("../../../docs/scenario.schema.json")
        .replace("#/$defs/", "#/components/schemas/");
    let scenario: Value = serde_json::from_str(&text).expect("docs/scenario.schema.json is JSON");
    let mut defs = scenario["$defs"].as_object().cloned().unwrap_or_default();
    defs.insert("transit_action".into(), json!({
        "type": "object", "required": ["action"],
        "properties": {
            "action": {"enum": ["seal", "arrive", "release", "inspect", "authorize_unseal", "unseal", "close", "extend_deadline", "pair"]},
            "device": {"$ref": "#/components/schemas/id", "description": "required for pair"},
            "t": {"$ref": "#/components/schemas/time"},
            "deadline": {"$ref": "#/components/schemas/time"},
            "reason": {"type": "string"}
        }
    }));
    defs.insert("sign_in".into(), json!({
        "type": "object", "required": ["username", "password"], "additionalProperties": false,
        "properties": {
            "username": {"type": "string"},
            "password": {"type": "string"},
            "totp": {"type": "string", "description": "the 6-digit code, for an administrator who enrolled a second factor"}
        }
    }));
    defs.insert("alarm_step".into(), json!({
        "type": "object", "required": ["actor"],
        "properties": {
            "actor": {"type": "string"},
            "note": {"type": "string"},
            "outcome": {"enum": ["confirmed_violation", "false_alarm", "technical_fault", "authorised"]},
            "to": {"type": "string", "description": "dispatch only: the patrol it goes to (its organisation or a patrol user's name); that patrol then sees the alarm"}
        }
    }));
    defs.insert(
        "station".into(),
        json!({
            "type": "object", "required": ["id", "name", "zone"],
            "properties": {
                "id": {"$ref": "#/components/schemas/id"},
                "name": {"type": "string", "minLength": 1},
                "zone": {"$ref": "#/components/schemas/id"}
            }
        }),
    );
    defs.insert("device".into(), json!({
        "type": "object", "required": ["id", "kind", "state"],
        "properties": {
            "id": {"$ref": "#/components/schemas/id"},
            "kind": {"enum": ["passive", "semi_active", "active", "smart_container_embedded", "smart_container_affixed"]},
            "seal": {"type": "string", "pattern": "^[0-9]{1,5}-[0-9]{1,10}$", "description": "ISO 18185 identity: MANUFACTURER-SERIAL"},
            "model": {"type": "string", "minLength": 1},
            "firmware": {"type": "string", "minLength": 1},
            "state": {"enum": ["in_production", "warehoused", "in_delivery", "in_stock", "charging", "assigned", "sealed", "in_transit", "awaiting_return", "in_return", "maintenance", "lost", "retired"]},
            "station": {"$ref": "#/components/schemas/id"},
            "container": {"type": "string", "description": "ISO 6346 container number"},
            "battery_pct": {"type": "number", "minimum": 0, "maximum": 100},
            "last_report_at": {"$ref": "#/components/schemas/time"}
        }
    }));
    defs.insert(
        "reader".into(),
        json!({
            "type": "object", "required": ["id", "kind"],
            "properties": {
                "id": {"$ref": "#/components/schemas/id"},
                "kind": {"enum": ["fixed", "handheld"]},
                "zone": {"$ref": "#/components/schemas/id"},
                "station": {"$ref": "#/components/schemas/id"}
            }
        }),
    );
    defs.insert(
        "container_pairing_request".into(),
        json!({
            "type": "object", "required": ["device", "kind"],
            "properties": {
                "device": {"$ref": "#/components/schemas/id"},
                "kind": {"enum": ["embedded", "affixed"]},
                "at": {"$ref": "#/components/schemas/time"}
            }
        }),
    );
    defs.insert("container_payload".into(), json!({
        "description": "One report or an array of at most 1000: a DCSA IoT event (format=dcsa) or a UN/CEFACT smart-container reading (format=uncefact), as docs/containers.md describes",
        "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": 1000}]
    }));
    defs.insert("device_command".into(), json!({
        "type": "object", "required": ["kind", "actor"],
        "properties": {
            "kind": {"enum": ["seal", "unseal", "set_interval", "query_status"]},
            "args": {"type": "object", "description": "set_interval: {\"seconds\": N}, N from 1 to 86400"},
            "actor": {"type": "string", "minLength": 1},
            "transit": {"$ref": "#/components/schemas/id", "description": "required for unseal"}
        }
    }));
    defs.insert("reader_key".into(), json!({
        "type": "object", "required": ["public_key"],
        "additionalProperties": false,
        "properties": {
            "public_key": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "Ed25519 public key, 32 bytes hex"}
        }
    }));
    defs.insert("decision".into(), json!({
        "type": "object", "required": ["decision"], "additionalProperties": false,
        "properties": {
            "decision": {"enum": ["release", "inspect"]},
            "reason": {"type": "string", "maxLength": 2000, "description": "required when the decision goes against the proposal"}
        }
    }));
    defs.insert("inspection_result".into(), json!({
        "type": "object", "required": ["found"], "additionalProperties": false,
        "properties": {
            "found": {"type": "boolean", "description": "whether the inspection found something"},
            "note": {"type": "string", "maxLength": 2000}
        }
    }));
    defs.insert("reader_post".into(), json!({
        "oneOf": [
            {"$ref": "#/components/schemas/read"},
            {"type": "array", "items": {"$ref": "#/components/schemas/read"}, "maxItems": crate::readers::MAX_READS_PER_POST}
        ]
    }));
    defs.insert("device_keys".into(), json!({
        "type": "object", "required": ["signing_public", "agreement_public"],
        "additionalProperties": false,
        "properties": {
            "signing_public": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "Ed25519 public key, 32 bytes hex"},
            "agreement_public": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "X25519 public key, 32 bytes hex"}
        }
    }));
    defs.insert("problem".into(), json!({
        "type": "object",
        "properties": {"title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"}, "field": {"type": "string"}}
    }));
    Value::Object(defs)
}
