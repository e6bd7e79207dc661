//! The ingest pipeline: the one path every input takes, whatever its source (HTTP now, device
//! gateways next).
//!
//! [`Pipeline::submit`] takes a batch of inputs and, for each, decides: rejected (with the
//! reason), duplicate (already taken), or accepted. The accepted ones go through the supervisor,
//! and they are committed **together with what the supervisor made of them** (events, alarms,
//! transit states) in one transaction, each with its place in the input log. Only then does
//! `submit` return, so a source is acknowledged only for what is durable.
//!
//! On [`Pipeline::open`] the supervisor's state is rebuilt by replaying the input log: the
//! supervisor is deterministic, so replaying the same inputs in the same order gives the same
//! state, and the outputs of the replay (already stored) are dropped. A restart therefore
//! neither repeats an alarm nor misses one; timers that expired while the service was down fire
//! at the first [`Pipeline::tick`].
//!
//! The pipeline is synchronous and single-threaded: the service runs it on its own thread and
//! feeds it batches (group commit).

use model::{
    Action, Alarm, CheckpointRead, Event, EventKind, Observation, Timestamp, Transit, TransitId,
    TransitState,
};
use std::sync::Arc;

use store::{AuditRecord, Commit, LoggedInput, Store};
use supervisor::{Admission, Input, Output, Supervisor};

/// Why the pipeline could not do its job (not why an input was refused: see [`Verdict`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("store: {0}")]
    Store(#[from] store::Error),
    #[error("the zones in the store cannot be supervised: {0}")]
    Zones(supervisor::SetupError),
    #[error("the input log cannot be replayed: {0}")]
    Replay(String),
    #[error("a commit failed; reopen the pipeline to rebuild it from the store")]
    Poisoned,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One input from a source.
#[derive(Clone, Debug, PartialEq)]
pub enum Submission {
    Declare(Box<Transit>),
    Action(Action),
    Read(CheckpointRead),
    Observation(Observation),
}

/// What became of one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Durable, and supervised.
    Accepted,
    /// The same report was taken before; nothing was done.
    Duplicate,
    /// Refused, with the reason (naming the field where there is one).
    Rejected(String),
}

/// What a step did: a verdict per input, in order, and the outputs it committed (alarms with
/// the ids the store gave them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    pub verdicts: Vec<Verdict>,
    pub outputs: Vec<Output>,
    pub alarm_ids: Vec<i64>,
}

/// How far ahead of the ingest clock a report may be dated: devices' clocks drift, but a report
/// from the future is a broken clock or a forgery.
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;

/// The ingest pipeline. See the crate documentation.
pub struct Pipeline {
    store: Box<dyn Store>,
    supervisor: Supervisor,
    last_seq: i64,
    poisoned: bool,
    /// The latest tick that fired nothing and was not logged. It still moved the supervisor's
    /// clock, so it is logged before the next committed step, and a replay moves the clock at
    /// the same place.
    unlogged_tick: Option<Timestamp>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("backend", &self.store.backend())
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

/// Inputs read from the log per query while replaying.
const REPLAY_BATCH: u32 = 10_000;

impl Pipeline {
    /// Opens the pipeline on a store: the supervisor is built from the store's zones and its
    /// state rebuilt by replaying the input log.
    pub fn open(mut store: Box<dyn Store>) -> Result<Pipeline> {
        let zones = store.zones()?;
        let mut supervisor = Supervisor::new(&zones).map_err(Error::Zones)?;
        let mut last_seq = 0;
        let mut discard = Vec::new();
        loop {
            let batch = store.inputs_after(last_seq, REPLAY_BATCH)?;
            let Some(&(last, _)) = batch.last() else {
                break;
            };
            for (_, input) in &batch {
                replay_one(&mut supervisor, input, &mut discard)?;
                discard.clear();
            }
            last_seq = last;
        }
        Ok(Pipeline {
            store,
            supervisor,
            last_seq,
            poisoned: false,
            unlogged_tick: None,
        })
    }

    /// Rebuilds the pipeline from its store (after a failed commit, or to take new zones).
    pub fn reopen(self) -> Result<Pipeline> {
        Pipeline::open(self.store)
    }

    /// The store, for queries.
    pub fn store(&mut self) -> &mut dyn Store {
        &mut *self.store
    }

    /// The supervisor's clock.
    pub fn now(&self) -> Timestamp {
        self.supervisor.now()
    }

    /// Takes a batch of inputs. `now` is the ingest clock, used to refuse reports dated in the
    /// future. Returns once everything accepted is durable.
    pub fn submit(&mut self, batch: Vec<Submission>, now: Timestamp) -> Result<Step> {
        self.submit_as(batch.into_iter().map(|s| (s, None)).collect(), now)
    }

    /// [`Pipeline::submit`] with who submitted each input (the API's caller): every accepted
    /// declaration and officer's action gets an audit entry naming them (`unattributed` when
    /// `None`), committed in the same transaction as the input itself.
    pub fn submit_as(
        &mut self,
        batch: Vec<(Submission, Option<Arc<str>>)>,
        now: Timestamp,
    ) -> Result<Step> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let mut verdicts = Vec::with_capacity(batch.len());
        let mut logged = Vec::new();
        let mut outputs = Vec::new();
        let mut seq = self.last_seq;
        if let Some(at) = self.unlogged_tick {
            seq += 1;
            logged.push((seq, LoggedInput::Tick { at }));
        }
        let mut audit = Vec::new();
        for (item, actor) in batch {
            let verdict = self.take(&item, now, &mut outputs);
            if verdict == Verdict::Accepted {
                seq += 1;
                audit.extend(audit_record(&item, actor.as_deref(), now));
                logged.push((seq, logged_input(item, now)));
            }
            verdicts.push(verdict);
        }
        // Nothing accepted: the tick alone is not worth a commit; it waits for the next one.
        if logged.len() == usize::from(self.unlogged_tick.is_some()) && outputs.is_empty() {
            return Ok(Step {
                verdicts,
                outputs,
                alarm_ids: Vec::new(),
            });
        }
        let alarm_ids = self.commit(&logged, &outputs, &audit, seq)?;
        self.unlogged_tick = None;
        Ok(Step {
            verdicts,
            outputs,
            alarm_ids,
        })
    }

    /// Moves the clock to `now`: timers that expire fire, and what they raise is committed
    /// (with the tick itself in the input log, so that a replay fires them at the same place).
    pub fn tick(&mut self, now: Timestamp) -> Result<Step> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let mut outputs = Vec::new();
        self.supervisor.handle(Input::Tick(now), &mut outputs);
        if outputs.is_empty() {
            self.unlogged_tick = Some(now);
            return Ok(Step::default());
        }
        let seq = self.last_seq + 1;
        let alarm_ids = self.commit(&[(seq, LoggedInput::Tick { at: now })], &outputs, &[], seq)?;
        self.unlogged_tick = None;
        Ok(Step {
            verdicts: Vec::new(),
            outputs,
            alarm_ids,
        })
    }

    fn take(&mut self, item: &Submission, now: Timestamp, out: &mut Vec<Output>) -> Verdict {
        match item {
            Submission::Declare(t) => {
                if self.supervisor.transit_state(t.id.as_str()).is_some() {
                    return Verdict::Rejected(format!("id: transit {} is already declared", t.id));
                }
                match self.supervisor.declare(t) {
                    Ok(()) => Verdict::Accepted,
                    Err(e) => Verdict::Rejected(e.to_string()),
                }
            }
            Submission::Action(a) => {
                if self.supervisor.transit_state(a.transit.as_str()).is_none() {
                    return Verdict::Rejected(format!("transit: unknown transit {}", a.transit));
                }
                if let Some(v) = from_the_future("t", a.t, now) {
                    return v;
                }
                self.supervisor.handle(Input::Action(a), out);
                Verdict::Accepted
            }
            Submission::Read(r) => {
                if let Some(v) = from_the_future("t", r.t, now) {
                    return v;
                }
                if !self.supervisor.knows_device(r.device.as_str()) {
                    return Verdict::Rejected(format!(
                        "device: {} is on no declared transit",
                        r.device
                    ));
                }
                self.supervisor.handle(Input::Read(r), out);
                Verdict::Accepted
            }
            Submission::Observation(o) => {
                if let Err(e) = o.validate() {
                    return Verdict::Rejected(e.to_string());
                }
                if let Some(v) = from_the_future("t", o.t, now) {
                    return v;
                }
                match self.supervisor.admit(o) {
                    Admission::Accept => {
                        self.supervisor.handle(Input::Observation(o), out);
                        Verdict::Accepted
                    }
                    Admission::Duplicate => Verdict::Duplicate,
                    Admission::UnknownDevice => {
                        Verdict::Rejected(format!("device: {} is on no declared transit", o.device))
                    }
                    Admission::NotSupervised => Verdict::Rejected(format!(
                        "device: {} has no open transit: every transit it sealed is closed",
                        o.device
                    )),
                }
            }
        }
    }

    /// Commits inputs and outputs together. If the store fails, the supervisor has moved ahead
    /// of it: it is rebuilt from the store before the error is returned.
    fn commit(
        &mut self,
        inputs: &[(i64, LoggedInput)],
        outputs: &[Output],
        audit: &[AuditRecord],
        last_seq: i64,
    ) -> Result<Vec<i64>> {
        if inputs.is_empty() && outputs.is_empty() {
            return Ok(Vec::new());
        }
        let mut events: Vec<Event> = Vec::new();
        let mut alarms: Vec<Alarm> = Vec::new();
        let mut states: Vec<(TransitId, TransitState, Timestamp)> = Vec::new();
        for o in outputs {
            match o {
                Output::Alarm(a) => alarms.push(a.clone()),
                Output::Event(e) => {
                    if let Some(state) = state_after(e.event) {
                        states.push((e.transit.clone(), state, e.t));
                    }
                    events.push(e.clone());
                }
            }
        }
        let commit = Commit {
            inputs,
            events: &events,
            alarms: &alarms,
            states: &states,
            audit,
        };
        match self.store.commit(&commit) {
            Ok(ids) => {
                self.last_seq = last_seq;
                Ok(ids)
            }
            Err(e) => {
                // The supervisor took inputs the store did not: until it is rebuilt from the
                // store, it must not take more.
                self.poisoned = true;
                Err(e.into())
            }
        }
    }
}

/// A refusal if `t` is further ahead of the ingest clock than [`MAX_FUTURE_MS`]: a report or an
/// action dated in the future would move the supervisor's clock and fire every timer before it.
fn from_the_future(field: &str, t: Timestamp, now: Timestamp) -> Option<Verdict> {
    (t.unix_ms() > now.unix_ms() + MAX_FUTURE_MS)
        .then(|| Verdict::Rejected(format!("{field}: {t} is in the future (now {now})")))
}

/// The state a lifecycle event leaves a transit in.
fn state_after(event: EventKind) -> Option<TransitState> {
    Some(match event {
        EventKind::Sealed => TransitState::Sealed,
        EventKind::Departed => TransitState::InTransit,
        EventKind::Arrived => TransitState::Arrived,
        EventKind::Released => TransitState::Released,
        EventKind::Inspection => TransitState::Inspection,
        EventKind::Unsealed => TransitState::Unsealed,
        EventKind::Closed => TransitState::Closed,
        _ => return None,
    })
}

/// Who an audit entry names when the source did not say.
pub const UNATTRIBUTED: &str = "unattributed";

/// The audit record of an accepted input: declarations and officers' actions are recorded
/// (`transit.declare`, `transit.seal`, ...); devices' reports and checkpoint reads are not
/// (they are in the input log, and are not anyone's decision).
fn audit_record(item: &Submission, actor: Option<&str>, now: Timestamp) -> Option<AuditRecord> {
    let actor = actor.unwrap_or(UNATTRIBUTED);
    match item {
        Submission::Declare(t) => Some(AuditRecord::new(
            now.unix_ms(),
            actor,
            "transit.declare",
            format!("transit:{}", t.id),
            &serde_json::json!({ "device": t.device.as_str() }),
        )),
        Submission::Action(a) => {
            let mut detail = serde_json::json!({ "t": a.t.to_string() });
            if let Some(o) = detail.as_object_mut() {
                if let Some(d) = &a.device {
                    o.insert("device".into(), d.as_str().into());
                }
                if let Some(d) = a.deadline {
                    o.insert("deadline".into(), d.to_string().into());
                }
                if let Some(r) = &a.reason {
                    o.insert("reason".into(), r.as_str().into());
                }
            }
            Some(AuditRecord::new(
                now.unix_ms(),
                actor,
                format!("transit.{}", a.action.as_str()),
                format!("transit:{}", a.transit),
                &detail,
            ))
        }
        Submission::Read(_) | Submission::Observation(_) => None,
    }
}

fn logged_input(item: Submission, now: Timestamp) -> LoggedInput {
    match item {
        Submission::Declare(transit) => LoggedInput::Declare { at: now, transit },
        Submission::Action(action) => LoggedInput::Action { action },
        Submission::Read(read) => LoggedInput::Read { read },
        Submission::Observation(observation) => LoggedInput::Observation { observation },
    }
}

fn replay_one(sup: &mut Supervisor, input: &LoggedInput, out: &mut Vec<Output>) -> Result<()> {
    match input {
        LoggedInput::Declare { transit, .. } => sup
            .declare(transit)
            .map_err(|e| Error::Replay(e.to_string()))?,
        LoggedInput::Action { action } => sup.handle(Input::Action(action), out),
        LoggedInput::Read { read } => sup.handle(Input::Read(read), out),
        LoggedInput::Observation { observation } => {
            sup.handle(Input::Observation(observation), out)
        }
        LoggedInput::Tick { at } => sup.handle(Input::Tick(*at), out),
    }
    Ok(())
}
