//! Who may use which route, and which data each caller sees: the permission matrix of
//! docs/security.md ("Roles and permissions"), which is generated from [`PERMISSIONS`] and
//! checked against it by a test, so the document and the code cannot drift.
//!
//! Two layers:
//! - the route: `check` (in the authentication middleware) refuses a role the table does not
//!   list for the route with 403, naming the role and the route;
//! - the data: a carrier, forwarder or consignor sees only the transits whose declaration names
//!   its organisation (and their events, track and alarms); a patrol sees only the alarms
//!   dispatched to it. Anything else is answered 404, as if it did not exist, so that a
//!   caller cannot learn that another organisation's transit is there. The driver's personal
//!   data is removed from transits for every role that is not customs.
//!
//! When authentication is off (embedding, tests) a request without credentials has no caller
//! and sees everything, as before; a credential that is presented is always judged.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::StatusCode;
use model::{Role, Transit};
use store::{AlarmRecord, Store};

use crate::Problem;
use crate::auth::Caller;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credential needed: the service's health, metrics and documentation, signing in, and
    /// the routes that authenticate by a signature instead (a reader's signed reads, vendors'
    /// HMAC-signed webhooks).
    Open,
    /// A caller with one of these roles.
    Roles(&'static [Role]),
}

/// The access rule of one route of [`crate::openapi::ROUTES`].
#[derive(Debug)]
pub struct Permission {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

/// Every person's role: routes about the caller's own session.
const PEOPLE: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::Patrol,
    Role::OfficeOfficer,
    Role::SiteOperator,
    Role::Carrier,
    Role::Forwarder,
    Role::Consignor,
    Role::Auditor,
    Role::PartnerCustoms,
];
/// Every role, gateways included: who am I, sign out.
const ANYONE: &[Role] = &Role::ALL;
/// Running the service's reference data (zones, stations, readers).
const MANAGERS: &[Role] = &[Role::Administrator, Role::Supervisor];
/// The administrator alone: credentials of devices and readers.
const ADMIN: &[Role] = &[Role::Administrator];
/// The supervision console: handling alarms, commanding devices.
const CONSOLE: &[Role] = &[Role::Administrator, Role::Supervisor, Role::Officer];
/// Reading what the console reads, without acting.
const CONSOLE_READ: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::Auditor,
];
/// Declaring transits and pairing containers: the console and the offices.
const DECLARE: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::OfficeOfficer,
];
/// Transit actions (seal, unseal, arrive, ...): the offices, and the stations that seal and
/// unseal on site.
const ACT: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::OfficeOfficer,
    Role::SiteOperator,
];
/// Reading transits: customs, and the trade parties for their own organisation's (scoped).
const TRANSIT_READ: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::OfficeOfficer,
    Role::Auditor,
    Role::Carrier,
    Role::Forwarder,
    Role::Consignor,
];
/// Reading alarms: as transits, and a patrol the alarms dispatched to it (scoped).
const ALARM_READ: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::OfficeOfficer,
    Role::Auditor,
    Role::Patrol,
    Role::Carrier,
    Role::Forwarder,
    Role::Consignor,
];
/// Handling an alarm: the console, and a patrol for the alarms dispatched to it (it reports
/// and resolves).
const ALARM_HANDLE: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::Patrol,
];
/// Reading an alarm's attachments: who handles it, and the auditor.
const ATTACHMENT_READ: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::Patrol,
    Role::Auditor,
];
/// Reading the station registry: customs, and the stations' operators.
const REGISTRY_READ: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::OfficeOfficer,
    Role::Auditor,
    Role::SiteOperator,
];
/// Registering devices: a station's operator keeps its stock.
const DEVICE_WRITE: &[Role] = &[Role::Administrator, Role::Supervisor, Role::SiteOperator];
/// What devices and their gateways report.
const INGEST: &[Role] = &[Role::Administrator, Role::Gateway];
/// What a gateway fetches for the devices behind it: queued commands, session keys.
const DEVICE_FETCH: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::Auditor,
    Role::Gateway,
];
/// A device's session keys: the administrator sets them, the gateway reads them.
const DEVICE_KEYS_READ: &[Role] = &[Role::Administrator, Role::Gateway];
/// Zones: customs and the stations.
const ZONE_READ: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::Patrol,
    Role::OfficeOfficer,
    Role::Auditor,
    Role::SiteOperator,
];
/// The release-or-inspect proposal and decision: customs at the centre and at the offices,
/// and the auditor who reviews them.
const DECIDE_READ: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::OfficeOfficer,
    Role::Auditor,
];
/// Deciding release or inspect, and recording what an inspection found: the destination
/// office's officers and the centre's.
const DECIDE: &[Role] = &[Role::Supervisor, Role::Officer, Role::OfficeOfficer];
/// The device pool across stations and its rebalancing plan: customs and the auditor (a site
/// operator sees its own station's stock through the registry).
const POOL_READ: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::OfficeOfficer,
    Role::Auditor,
];
/// The audit trail.
const AUDIT_READ: &[Role] = &[Role::Administrator, Role::Supervisor, Role::Auditor];

const fn rule(method: &'static str, path: &'static str, access: Access) -> Permission {
    Permission {
        method,
        path,
        access,
    }
}

const fn roles(r: &'static [Role]) -> Access {
    Access::Roles(r)
}

/// The permission of every route of [`crate::openapi::ROUTES`] (a test checks both tables have the same
/// routes). Partner customs may do nothing yet beyond its own session: what federation
/// shares with it is decided with the federation work.
pub const PERMISSIONS: &[Permission] = &[
    rule("get", "/healthz", Access::Open),
    rule("get", "/readyz", Access::Open),
    rule("get", "/metrics", Access::Open),
    rule("get", "/api/v1/openapi.json", Access::Open),
    rule("get", "/api/v1/docs", Access::Open),
    rule("post", "/api/v1/session", Access::Open),
    rule("get", "/api/v1/session", roles(ANYONE)),
    rule("delete", "/api/v1/session", roles(ANYONE)),
    rule("post", "/api/v1/session/totp", roles(PEOPLE)),
    rule("post", "/api/v1/zones", roles(MANAGERS)),
    rule("get", "/api/v1/zones", roles(ZONE_READ)),
    rule("post", "/api/v1/transits", roles(DECLARE)),
    rule("get", "/api/v1/transits", roles(TRANSIT_READ)),
    rule("get", "/api/v1/transits/{id}", roles(TRANSIT_READ)),
    rule("post", "/api/v1/transits/{id}/actions", roles(ACT)),
    rule("get", "/api/v1/transits/{id}/events", roles(TRANSIT_READ)),
    rule("post", "/api/v1/observations", roles(INGEST)),
    rule("post", "/api/v1/reads", roles(INGEST)),
    rule("get", "/api/v1/alarms", roles(ALARM_READ)),
    rule("get", "/api/v1/alarms/{id}", roles(ALARM_READ)),
    rule("post", "/api/v1/alarms/{id}/{step}", roles(ALARM_HANDLE)),
    rule("post", "/api/v1/stations", roles(MANAGERS)),
    rule("get", "/api/v1/stations", roles(REGISTRY_READ)),
    rule("get", "/api/v1/stations/{id}", roles(REGISTRY_READ)),
    rule("post", "/api/v1/devices", roles(DEVICE_WRITE)),
    rule("get", "/api/v1/devices", roles(REGISTRY_READ)),
    rule("get", "/api/v1/devices/{id}", roles(REGISTRY_READ)),
    rule("post", "/api/v1/readers", roles(MANAGERS)),
    rule("get", "/api/v1/readers", roles(REGISTRY_READ)),
    rule("get", "/api/v1/readers/{id}", roles(REGISTRY_READ)),
    rule("put", "/api/v1/readers/{id}/key", roles(ADMIN)),
    rule("get", "/api/v1/readers/{id}/key", roles(ADMIN)),
    rule("delete", "/api/v1/readers/{id}/key", roles(ADMIN)),
    rule("post", "/api/v1/readers/{id}/reads", Access::Open),
    rule("get", "/api/v1/readers/{id}/posts", roles(CONSOLE_READ)),
    rule("get", "/api/v1/transits/{id}/track", roles(TRANSIT_READ)),
    rule("get", "/api/v1/transits/{id}/alarms", roles(TRANSIT_READ)),
    rule("get", "/api/v1/statistics/transits", roles(CONSOLE_READ)),
    rule("get", "/api/v1/statistics/alarms", roles(CONSOLE_READ)),
    rule("get", "/api/v1/statistics/decisions", roles(CONSOLE_READ)),
    rule("get", "/api/v1/pool", roles(POOL_READ)),
    rule("get", "/api/v1/pool/plan", roles(POOL_READ)),
    rule("get", "/api/v1/devices/{id}/history", roles(REGISTRY_READ)),
    rule("get", "/api/v1/transits/{id}/proposal", roles(DECIDE_READ)),
    rule("get", "/api/v1/transits/{id}/decision", roles(DECIDE_READ)),
    rule("post", "/api/v1/transits/{id}/decision", roles(DECIDE)),
    rule("post", "/api/v1/transits/{id}/inspection", roles(DECIDE)),
    rule(
        "post",
        "/api/v1/alarms/{id}/attachments",
        roles(ALARM_HANDLE),
    ),
    rule(
        "get",
        "/api/v1/alarms/{id}/attachments",
        roles(ATTACHMENT_READ),
    ),
    rule(
        "get",
        "/api/v1/alarms/{id}/attachments/{n}",
        roles(ATTACHMENT_READ),
    ),
    rule("post", "/api/v1/devices/{id}/commands", roles(CONSOLE)),
    rule("get", "/api/v1/devices/{id}/commands", roles(DEVICE_FETCH)),
    rule("put", "/api/v1/devices/{id}/keys", roles(ADMIN)),
    rule("get", "/api/v1/devices/{id}/keys", roles(DEVICE_KEYS_READ)),
    rule("delete", "/api/v1/devices/{id}/keys", roles(ADMIN)),
    rule("get", "/api/v1/devices/{id}/log", roles(CONSOLE_READ)),
    rule("get", "/api/v1/transits/{id}/commands", roles(CONSOLE_READ)),
    rule(
        "post",
        "/api/v1/containers/{number}/pairings",
        roles(DECLARE),
    ),
    rule(
        "get",
        "/api/v1/containers/{number}/pairings",
        roles(DECLARE_READ),
    ),
    rule(
        "post",
        "/api/v1/containers/{number}/pairings/{device}/unpair",
        roles(DECLARE),
    ),
    rule("post", "/api/v1/webhooks/containers/{vendor}", Access::Open),
    rule("get", "/api/v1/stream", roles(ALARM_READ)),
    rule("get", "/api/v1/map", roles(ALARM_READ)),
    rule("get", "/api/v1/audit", roles(AUDIT_READ)),
];

/// Reading container pairings: who pairs them, and the auditor.
const DECLARE_READ: &[Role] = &[
    Role::Administrator,
    Role::Supervisor,
    Role::Officer,
    Role::OfficeOfficer,
    Role::Auditor,
];

/// Whether a concrete path matches a route's template (`{x}` is one non-empty segment).
fn matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(t), Some(p)) if t.starts_with('{') => {
                if p.is_empty() {
                    return false;
                }
            }
            (Some(t), Some(p)) if t == p => {}
            _ => return false,
        }
    }
}

/// The rule of a request: among the routes whose template matches, the one with the fewest
/// parameters (`/alarms/{id}/attachments` before `/alarms/{id}/{step}`), as the router
/// chooses. `None` for a path or method no route has.
pub fn rule_for(method: &str, path: &str) -> Option<&'static Permission> {
    PERMISSIONS
        .iter()
        .filter(|r| r.method.eq_ignore_ascii_case(method) && matches(r.path, path))
        .min_by_key(|r| r.path.matches('{').count())
}

/// Whether `role` may call the route of `rule`.
pub fn allows(rule: &Permission, role: Role) -> bool {
    match rule.access {
        Access::Open => true,
        Access::Roles(r) => r.contains(&role),
    }
}

/// The route check of the middleware: `Err` with a 403 naming the role and the route when the
/// caller's role may not call it. A path no route has is left to the router (404, 405).
pub(crate) fn check(caller: &Caller, method: &str, path: &str) -> Result<(), Problem> {
    let Some(rule) = rule_for(method, path) else {
        return Ok(());
    };
    if allows(rule, caller.role) {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::FORBIDDEN,
        format!(
            "permission: the role {} may not {} {} (docs/security.md, Roles and permissions)",
            caller.role,
            rule.method.to_ascii_uppercase(),
            rule.path
        ),
    ))
}

/// Roles of customs: they see the driver's personal data (name, contact).
pub fn is_customs(role: Role) -> bool {
    matches!(
        role,
        Role::Administrator
            | Role::Supervisor
            | Role::Officer
            | Role::Patrol
            | Role::OfficeOfficer
            | Role::Auditor
    )
}

/// Whether the caller sees personal data; with no caller (authentication off) it does.
pub(crate) fn sees_personal_data(caller: Option<&Caller>) -> bool {
    caller.is_none_or(|c| is_customs(c.role))
}

/// Removes what only customs may see from a transit.
pub(crate) fn redact(transit: &mut Transit, caller: Option<&Caller>) {
    if !sees_personal_data(caller) {
        transit.driver = None;
    }
}

/// Which data a caller sees.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scope {
    /// Everything its routes give (customs; no caller when authentication is off).
    All,
    /// The transits whose declaration names this organisation as carrier, forwarder or
    /// consignor, and their events, track and alarms.
    Organisation(String),
    /// The alarms dispatched to this patrol: to its organisation (the patrol unit) or to the
    /// signed-in user's name.
    Patrol {
        organisation: Option<String>,
        username: Option<String>,
    },
    /// Nothing: a trade role with no organisation.
    Nothing,
}

pub(crate) fn scope(caller: Option<&Caller>) -> Scope {
    let Some(c) = caller else {
        return Scope::All;
    };
    match c.role {
        Role::Carrier | Role::Forwarder | Role::Consignor => match &c.organisation {
            Some(o) => Scope::Organisation(o.clone()),
            None => Scope::Nothing,
        },
        Role::Patrol => Scope::Patrol {
            organisation: c.organisation.clone(),
            username: c.user.as_ref().map(|u| u.username.clone()),
        },
        _ => Scope::All,
    }
}

/// The prefix of a dispatch step's note naming the patrol it went to (`to <patrol>`): the
/// store keeps a handling step's actor and note, and the target is kept in the note so that no
/// store migration is needed.
pub(crate) const DISPATCH_TO: &str = "to ";

/// The note of a dispatch step to `to`, with the dispatcher's own note after it.
pub(crate) fn dispatch_note(to: &str, note: Option<&str>) -> String {
    match note.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!(
            "{DISPATCH_TO}{}
{n}",
            to.trim()
        ),
        None => format!("{DISPATCH_TO}{}", to.trim()),
    }
}

/// The patrol an alarm was last dispatched to, if a dispatch named one.
pub fn dispatched_to(record: &AlarmRecord) -> Option<&str> {
    record
        .history
        .iter()
        .rev()
        .find(|s| s.step == "dispatch")
        .and_then(|s| s.note.as_deref())
        .and_then(|n| n.lines().next())
        .and_then(|l| l.strip_prefix(DISPATCH_TO))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl Scope {
    pub(crate) fn is_all(&self) -> bool {
        *self == Scope::All
    }

    /// Whether the caller sees this transit.
    pub(crate) fn sees_transit(&self, t: &Transit) -> bool {
        match self {
            Scope::All => true,
            Scope::Organisation(o) => t.declaration.as_ref().is_some_and(|d| {
                [&d.carrier, &d.forwarder, &d.consignor]
                    .into_iter()
                    .any(|p| p.as_deref() == Some(o.as_str()))
            }),
            Scope::Patrol { .. } | Scope::Nothing => false,
        }
    }

    /// Whether the caller sees this alarm; `transit` is the alarm's transit, when stored.
    pub(crate) fn sees_alarm(&self, a: &AlarmRecord, transit: Option<&Transit>) -> bool {
        match self {
            Scope::All => true,
            Scope::Organisation(_) => transit.is_some_and(|t| self.sees_transit(t)),
            Scope::Patrol {
                organisation,
                username,
            } => dispatched_to(a).is_some_and(|to| {
                organisation.as_deref() == Some(to) || username.as_deref() == Some(to)
            }),
            Scope::Nothing => false,
        }
    }

    /// Whether the caller sees the transit of this id (store lookup; an unknown id is unseen).
    pub(crate) fn sees_transit_id(&self, store: &mut dyn Store, id: &str) -> store::Result<bool> {
        if self.is_all() {
            return Ok(true);
        }
        match store.transit(id) {
            Ok(t) => Ok(self.sees_transit(&t.transit)),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the caller sees the alarm of this id (store lookups; an unknown id is unseen).
    pub(crate) fn sees_alarm_id(&self, store: &mut dyn Store, id: i64) -> store::Result<bool> {
        if self.is_all() {
            return Ok(true);
        }
        let record = match store.alarm(id) {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        };
        let transit = match store.transit(record.alarm.transit.as_str()) {
            Ok(t) => Some(t.transit),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        Ok(self.sees_alarm(&record, transit.as_ref()))
    }

    /// Keeps the alarms the caller sees, looking each transit up once.
    pub(crate) fn filter_alarms(
        &self,
        store: &mut dyn Store,
        alarms: Vec<AlarmRecord>,
    ) -> store::Result<Vec<AlarmRecord>> {
        if self.is_all() {
            return Ok(alarms);
        }
        let mut transits: HashMap<String, Option<Transit>> = HashMap::new();
        let mut kept = Vec::with_capacity(alarms.len());
        for a in alarms {
            let id = a.alarm.transit.to_string();
            if !transits.contains_key(&id) {
                let t = match store.transit(&id) {
                    Ok(t) => Some(t.transit),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e),
                };
                transits.insert(id.clone(), t);
            }
            if self.sees_alarm(&a, transits.get(&id).and_then(Option::as_ref)) {
                kept.push(a);
            }
        }
        Ok(kept)
    }
}

/// The one object a route with a `{id}` of a transit or an alarm is about, for the scoping
/// check of the middleware.
pub(crate) enum Subject {
    Transit(String),
    Alarm(i64),
}

/// The transit or alarm a path is about, when the caller's scope must be checked against it.
pub(crate) fn subject(path: &str) -> Option<Subject> {
    let rest = path.strip_prefix("/api/v1/")?;
    let mut parts = rest.split('/');
    match (parts.next(), parts.next()) {
        (Some("transits"), Some(id)) if !id.is_empty() => Some(Subject::Transit(id.to_owned())),
        // An id that is not a number is refused by the handler (400) before any data.
        (Some("alarms"), Some(id)) => id.parse().ok().map(Subject::Alarm),
        _ => None,
    }
}

/// The 404 a caller gets for a transit or alarm outside its scope: the same words as for one
/// that does not exist, so that it learns nothing.
pub(crate) fn unseen(subject: &Subject) -> Problem {
    let e = match subject {
        Subject::Transit(id) => store::Error::NotFound {
            what: "transit",
            id: id.clone(),
        },
        Subject::Alarm(id) => store::Error::NotFound {
            what: "alarm",
            id: id.to_string(),
        },
    };
    Problem::new(StatusCode::NOT_FOUND, e.to_string())
}

/// What the live stream sends a scoped caller: it remembers which transits and alarms the
/// caller sees, so each is looked up once per connection.
#[derive(Debug)]
pub(crate) struct StreamFilter {
    pub(crate) scope: Scope,
    seen: Mutex<HashMap<String, bool>>,
}

impl StreamFilter {
    pub(crate) fn new(scope: Scope) -> StreamFilter {
        StreamFilter {
            scope,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn remembered(&self, key: &str) -> Option<bool> {
        self.seen.lock().ok()?.get(key).copied()
    }

    fn remember(&self, key: String, sees: bool) {
        if let Ok(mut m) = self.seen.lock() {
            // Bounded: a stream open for months does not grow for ever.
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(key, sees);
        }
    }

    /// Whether the caller gets this feed item (store lookups for what it has not seen yet).
    pub(crate) async fn passes(&self, s: &crate::AppState, item: &store::FeedItem) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Nothing => false,
            Scope::Organisation(_) => {
                let key = format!("transit:{}", item.transit);
                if let Some(sees) = self.remembered(&key) {
                    return sees;
                }
                let scope = self.scope.clone();
                let id = item.transit.clone();
                // A failed lookup sends nothing: the stream never errs towards leaking.
                let sees = matches!(
                    s.query(move |store| scope.sees_transit_id(store, &id))
                        .await,
                    Ok(Ok(true))
                );
                self.remember(key, sees);
                sees
            }
            Scope::Patrol { .. } => {
                // Only alarms, and only those dispatched to it; a dispatch may come later, so
                // each alarm item is looked up as it comes.
                if !item.kind.starts_with("alarm") {
                    return false;
                }
                let Some(id) = item.data.get("id").and_then(serde_json::Value::as_i64) else {
                    return false;
                };
                let scope = self.scope.clone();
                matches!(
                    s.query(move |store| scope.sees_alarm_id(store, id)).await,
                    Ok(Ok(true))
                )
            }
        }
    }
}

/// The matrix of docs/security.md: one row per route, one column per role; `yes` allowed,
/// `scoped` allowed on the caller's own data, `open` for every caller and none.
pub fn markdown_matrix() -> String {
    let mut out = String::from("| Method | Route |");
    for r in Role::ALL {
        out.push_str(&format!(" {r} |"));
    }
    out.push_str("\n|---|---|");
    for _ in Role::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for p in PERMISSIONS {
        out.push_str(&format!(
            "| {} | `{}` |",
            p.method.to_ascii_uppercase(),
            p.path
        ));
        for r in Role::ALL {
            let cell = match p.access {
                Access::Open => "open",
                Access::Roles(_) if !allows(p, r) => "-",
                Access::Roles(_) if is_scoped(p, r) => "scoped",
                Access::Roles(_) => "yes",
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

/// Whether a role's use of a route is limited to its own data (the cells `scoped`).
pub fn is_scoped(p: &Permission, role: Role) -> bool {
    let scoped_role = matches!(
        role,
        Role::Carrier | Role::Forwarder | Role::Consignor | Role::Patrol
    );
    let registry = ["/api/v1/stations", "/api/v1/devices", "/api/v1/readers"]
        .iter()
        .any(|r| p.path == *r || p.path == format!("{r}/{{id}}"));
    (scoped_role
        && (p.path.starts_with("/api/v1/transits")
            || p.path.starts_with("/api/v1/alarms")
            || p.path == "/api/v1/stream"
            || p.path == "/api/v1/map"))
        || (role == Role::SiteOperator && registry)
}

/// The station whose registry a caller sees, when it is limited to one: a site operator's
/// organisation names its station (`Some(None)` when it names none: it sees no station's
/// records). Everyone else (`None`) sees the whole registry its routes give.
pub(crate) fn station_scope(caller: Option<&Caller>) -> Option<Option<String>> {
    caller
        .filter(|c| c.role == Role::SiteOperator)
        .map(|c| c.organisation.clone())
}

/// A registry record a path is about (`/api/v1/stations/{id}`, `/api/v1/devices/{id}...`,
/// `/api/v1/readers/{id}...`), checked against a site operator's station.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RegistrySubject {
    Station(String),
    Device(String),
    Reader(String),
}

pub(crate) fn registry_subject(path: &str) -> Option<RegistrySubject> {
    let rest = path.strip_prefix("/api/v1/")?;
    let mut parts = rest.split('/');
    let (kind, id) = (
        parts.next()?,
        parts.next().filter(|id| !id.is_empty())?.to_owned(),
    );
    match kind {
        "stations" => Some(RegistrySubject::Station(id)),
        "devices" => Some(RegistrySubject::Device(id)),
        "readers" => Some(RegistrySubject::Reader(id)),
        _ => None,
    }
}

/// Whether a caller limited to `station` sees the record; an unknown one is unseen.
pub(crate) fn sees_registry(
    store: &mut dyn Store,
    station: Option<&str>,
    subject: &RegistrySubject,
) -> store::Result<bool> {
    let Some(station) = station else {
        return Ok(false);
    };
    let of = |r: store::Result<Option<String>>| match r {
        Ok(s) => Ok(s.as_deref() == Some(station)),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    };
    match subject {
        RegistrySubject::Station(id) => Ok(id == station),
        RegistrySubject::Device(id) => of(store
            .device(id)
            .map(|d| d.device.station.map(|s| s.to_string()))),
        RegistrySubject::Reader(id) => {
            of(store.reader(id).map(|r| r.station.map(|s| s.to_string())))
        }
    }
}

/// The 404 for a registry record outside a site operator's station: the words of one that does
/// not exist.
pub(crate) fn registry_unseen(subject: &RegistrySubject) -> Problem {
    let (what, id) = match subject {
        RegistrySubject::Station(id) => ("station", id),
        RegistrySubject::Device(id) => ("device", id),
        RegistrySubject::Reader(id) => ("reader", id),
    };
    Problem::new(
        StatusCode::NOT_FOUND,
        store::Error::NotFound {
            what,
            id: id.clone(),
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::ROUTES;

    #[test]
    fn every_route_has_exactly_one_rule() {
        for r in ROUTES {
            let n = PERMISSIONS
                .iter()
                .filter(|p| p.method == r.method && p.path == r.path)
                .count();
            assert_eq!(n, 1, "{} {}: {n} rules", r.method, r.path);
        }
        assert_eq!(
            PERMISSIONS.len(),
            ROUTES.len(),
            "a rule for a route that is not one"
        );
    }

    #[test]
    fn paths_find_their_rule() {
        let r = rule_for("POST", "/api/v1/alarms/7/attachments").unwrap();
        assert_eq!(r.path, "/api/v1/alarms/{id}/attachments");
        let r = rule_for("post", "/api/v1/alarms/7/dispatch").unwrap();
        assert_eq!(r.path, "/api/v1/alarms/{id}/{step}");
        assert!(rule_for("get", "/api/v1/transits/").is_none());
        assert!(rule_for("get", "/api/v1/nothing").is_none());
    }

    #[test]
    fn dispatch_notes_name_the_patrol() {
        assert_eq!(
            dispatch_note(" P7 ", Some("go")),
            "to P7
go"
        );
        assert_eq!(dispatch_note("P7", Some("  ")), "to P7");
    }
}
