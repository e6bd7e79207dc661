//! The writer: one thread that owns the ingest pipeline (and so the store's write connection),
//! taking jobs from the async side and committing submissions in groups.
//!
//! Group commit: when a submission arrives, the writer also takes whatever other submissions
//! are already waiting (up to `batch_max_items`), and commits them all in one transaction. Under
//! load, batches grow and each commit carries more; at rest, a lone submission is committed at
//! once. Every source gets its own verdicts back only after the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ingest::{Pipeline, Step, Submission, Verdict};
use model::Timestamp;
use store::{FeedItem, Store};
use supervisor::Output;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::audit_chain::{AuditConfig, Checkpointer};
use crate::metrics::Metrics;

/// A query runs on the writer thread, with the store.
pub type Query = Box<dyn FnOnce(&mut dyn Store) + Send>;

/// Opens the store anew (a new connection), for recovery when the old one is gone.
pub type Opener = Box<dyn Fn() -> Result<Box<dyn Store>, String> + Send>;

pub enum Job {
    Submit {
        items: Vec<Submission>,
        /// Who submitted them (the API's caller), for the audit chain; `None` for devices.
        actor: Option<Arc<str>>,
        now: Timestamp,
        /// When the submission reached the service (for the alarm latency metric).
        received: Instant,
        reply: oneshot::Sender<Result<Vec<Verdict>, String>>,
    },
    Tick(Timestamp),
    Query(Query),
    /// A query that adds to the feed (a handling step): what it added is published after.
    QueryThenPublish(Query),
    /// Rebuild the pipeline from the store (new zones).
    Reopen,
    /// Retention: purge observations older than `before`, one bounded step at a time, this
    /// one looking at the ids after `after`.
    Purge {
        before: Timestamp,
        after: i64,
    },
    /// Copy the latest observations into the per-device index, one bounded batch at a time.
    Index,
    /// Retention of the other data classes, one bounded batch at a time: erase the personal
    /// data of transits closed before `before`, or delete the files of alarms closed before it.
    Retain {
        class: RetainedClass,
        before: Timestamp,
    },
}

/// The data classes retention erases or deletes besides observations (docs/security.md,
/// "Retention").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetainedClass {
    /// The driver's name and contact of closed transits (erased in place).
    PersonalData,
    /// Files attached to closed alarms (deleted).
    Attachments,
}

/// Transits erased, or attachments deleted, per retention transaction: each is a rewrite of
/// a document or a row of some kilobytes, so a batch holds the writer a few milliseconds.
const RETAIN_BATCH: u32 = 200;

/// Observations copied into the per-device index per transaction at most.
///
/// A copy writes about one page per device it carries, however many rows each device has in
/// it: with 10,000 devices reporting, a copy of 20,000 rows wrote as many pages as a per-row
/// index would have. Copies are therefore made seldom (every two seconds, see `lib.rs`) and
/// take everything since the last one, so each page takes tens of rows; this bound only
/// keeps one copy from holding the writer for long after a pause.
const INDEX_BATCH: u32 = 500_000;

/// Observation ids looked at per retention step: a step costs about the same whatever it finds
/// (old rows of a transit still open are stepped over, not scanned again), small enough that
/// ingest waits at most a few milliseconds behind one.
const PURGE_SPAN: u32 = 20_000;

/// What the writer broadcasts after each commit or handling step: one item of the durable
/// feed (its id is the live stream's event id), with the supervisor's output it came from
/// when there is one (not for handling steps).
#[derive(Clone, Debug)]
pub struct Published {
    pub item: Arc<FeedItem>,
    pub output: Option<Output>,
}

/// Broadcasts what the store's feed gained since the last time, so the live stream sends
/// exactly what a client resuming from the feed would read, with the same ids.
struct Publisher {
    last: i64,
    /// The last read-back failed: items may be waiting in the feed.
    behind: bool,
    live: broadcast::Sender<Published>,
    metrics: Arc<Metrics>,
    /// Devices with a command newly queued (a quick-mode gate's), for the gateways.
    commands: broadcast::Sender<String>,
}

impl Publisher {
    /// After a committed step: its outputs are in the feed, events first, then alarms.
    fn step(&mut self, store: &mut dyn Store, step: &Step) {
        if step.outputs.is_empty() && !self.behind {
            return;
        }
        let events = step
            .outputs
            .iter()
            .filter(|o| matches!(o, Output::Event(_)));
        let alarms = step
            .outputs
            .iter()
            .filter(|o| matches!(o, Output::Alarm(_)));
        let ordered: Vec<&Output> = events.chain(alarms).collect();
        for o in &ordered {
            match o {
                Output::Alarm(a) => self.metrics.alarm_raised(a.kind),
                Output::Event(e) if e.reader.is_some() => {
                    match crate::commands::queue_for_gate(store, e) {
                        Ok(Some(device)) => {
                            // No gateway listening is fine: the device gets it when it next
                            // authenticates.
                            let _ = self.commands.send(device);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "cannot queue a quick-mode gate's command")
                        }
                    }
                }
                Output::Event(_) => {}
            }
        }
        self.publish(store, &ordered);
    }

    /// After a handling step (or anything else that only adds to the feed).
    fn feed(&mut self, store: &mut dyn Store) {
        self.publish(store, &[]);
    }

    fn publish(&mut self, store: &mut dyn Store, outputs: &[&Output]) {
        let items = match store.feed_after(self.last, 1_000_000) {
            Ok(items) => items,
            Err(e) => {
                // Committed all the same: published after the next step, or read by clients
                // resuming from the feed.
                tracing::warn!(error = %e, "cannot read the feed back; trying again after the next step");
                self.behind = true;
                return;
            }
        };
        self.behind = false;
        // The outputs pair with the items only when they are exactly what was added.
        let paired = items.len() == outputs.len();
        for (i, item) in items.into_iter().enumerate() {
            self.last = item.id;
            let output = paired.then(|| outputs[i].clone());
            // Nobody listening is not an error.
            let _ = self.live.send(Published {
                item: Arc::new(item),
                output,
            });
        }
    }
}

/// The longest wait between two attempts to reach a store that is gone.
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Rebuilds the pipeline after a failed commit or tick. When the store itself is gone (the
/// database restarted, the connection was cut), connects again, waiting longer each time, and
/// meanwhile answers every job at once: submissions are told nothing was stored, queries are
/// dropped (their callers answer 503). Returns `None` when the service stops meanwhile.
fn recover(
    pipeline: Pipeline,
    open: &Opener,
    jobs: &mut mpsc::Receiver<Job>,
    pending: &mut std::collections::VecDeque<Job>,
    store_up: &AtomicBool,
) -> Option<Pipeline> {
    match pipeline.reopen() {
        Ok(p) => return Some(p),
        Err(e) => tracing::warn!(error = %e, "the store does not answer; connecting again"),
    }
    store_up.store(false, Ordering::Relaxed);
    // Jobs taken out of turn before the failure are answered like the rest.
    for job in pending.drain(..) {
        refuse(job);
    }
    let mut wait = Duration::from_millis(100);
    loop {
        match open().and_then(|store| Pipeline::open(store).map_err(|e| e.to_string())) {
            Ok(p) => {
                store_up.store(true, Ordering::Relaxed);
                tracing::info!("the store answers again");
                return Some(p);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot reach the store")
            }
        }
        let until = Instant::now() + wait;
        while Instant::now() < until {
            match jobs.try_recv() {
                Ok(job) => refuse(job),
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
            }
        }
        wait = (wait * 2).min(RECONNECT_MAX);
    }
}

/// Answers a job at once while the store is gone: a submission is told nothing was stored; a
/// query is dropped, which its caller answers with 503; the rest waits for the next round.
fn refuse(job: Job) {
    match job {
        Job::Submit { reply, .. } => {
            let _ = reply.send(Err(
                "the store is unavailable; nothing was stored, send again later".into(),
            ));
        }
        Job::Query(_)
        | Job::QueryThenPublish(_)
        | Job::Tick(_)
        | Job::Reopen
        | Job::Index
        | Job::Retain { .. }
        | Job::Purge { .. } => {}
    }
}

/// Runs the writer until every sender of `jobs` is gone.
#[allow(clippy::too_many_arguments)]
pub fn run(
    mut pipeline: Pipeline,
    open: Opener,
    mut jobs: mpsc::Receiver<Job>,
    live: broadcast::Sender<Published>,
    (metrics, store_up, commands): (Arc<Metrics>, Arc<AtomicBool>, broadcast::Sender<String>),
    batch_max_items: usize,
    last_feed: i64,
    audit: AuditConfig,
) {
    let mut checkpoints = Checkpointer::new(audit, pipeline.store());
    // Observations deleted by the current retention round, recorded in the audit chain when
    // the round ends.
    let mut purged_this_round: u64 = 0;
    let mut publisher = Publisher {
        last: last_feed,
        behind: false,
        live,
        metrics: metrics.clone(),
        commands,
    };
    // Jobs taken out of turn while gathering a group, handled next in arrival order.
    let mut pending: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
    while let Some(job) = pending.pop_front().or_else(|| jobs.blocking_recv()) {
        match job {
            Job::Tick(now) => match pipeline.tick(now) {
                Ok(step) => {
                    publisher.step(pipeline.store(), &step);
                    checkpoints.maybe(pipeline.store(), false);
                }
                Err(e) => {
                    tracing::error!(error = %e, "tick failed; reopening the store");
                    pipeline = match recover(pipeline, &open, &mut jobs, &mut pending, &store_up) {
                        Some(p) => p,
                        None => return,
                    };
                }
            },
            Job::Query(q) => q(pipeline.store()),
            Job::QueryThenPublish(q) => {
                q(pipeline.store());
                publisher.feed(pipeline.store());
            }
            Job::Purge { before, after } => match pipeline
                .store()
                .purge_observations(before, after, PURGE_SPAN)
            {
                Ok((n, next)) => {
                    metrics.observations_purged.fetch_add(n, Ordering::Relaxed);
                    purged_this_round += n;
                    if next.is_none() && purged_this_round > 0 {
                        let record = store::AuditRecord::new(
                            crate::wall_clock().unix_ms(),
                            "retention",
                            "observations.purge",
                            "observations".to_owned(),
                            &serde_json::json!({
                                "before": before.to_string(),
                                "deleted": purged_this_round,
                            }),
                        );
                        if let Err(e) = pipeline.store().append_audit(&[record]) {
                            tracing::warn!(error = %e, "cannot record the retention round in the audit chain");
                        }
                        purged_this_round = 0;
                    }
                    match next {
                        Some(after) => {
                            // More to look at: let what arrived meanwhile go first, then go
                            // on (a round started meanwhile by the clock is this one).
                            while let Ok(job) = jobs.try_recv() {
                                if !matches!(job, Job::Purge { .. }) {
                                    pending.push_back(job);
                                }
                            }
                            pending.push_back(Job::Purge { before, after });
                        }
                        None => tracing::debug!(before = %before, "retention round done"),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention purge failed; trying again next round")
                }
            },
            Job::Retain { class, before } => {
                let now = crate::wall_clock();
                let step = match class {
                    RetainedClass::PersonalData => pipeline
                        .store()
                        .erase_personal_data(before, now, RETAIN_BATCH)
                        .map(|ids| {
                            let n = ids.len() as u64;
                            metrics
                                .transits_personal_erased
                                .fetch_add(n, Ordering::Relaxed);
                            let detail = serde_json::json!({
                                "closed_before": before.to_string(),
                                "transits": ids,
                            });
                            (n, "personal_data.erase", "transits", detail)
                        }),
                    RetainedClass::Attachments => pipeline
                        .store()
                        .purge_attachments(before, RETAIN_BATCH)
                        .map(|n| {
                            metrics.attachments_purged.fetch_add(n, Ordering::Relaxed);
                            let detail = serde_json::json!({
                                "closed_before": before.to_string(),
                                "deleted": n,
                            });
                            (n, "attachments.purge", "alarm_attachments", detail)
                        }),
                };
                match step {
                    Ok((n, action, subject, detail)) => {
                        if n > 0 {
                            let record = store::AuditRecord::new(
                                now.unix_ms(),
                                "retention",
                                action,
                                subject.to_owned(),
                                &detail,
                            );
                            if let Err(e) = pipeline.store().append_audit(&[record]) {
                                tracing::warn!(error = %e, action, "cannot record retention in the audit chain");
                            }
                        }
                        if n == u64::from(RETAIN_BATCH) {
                            // More to do: what arrived meanwhile goes first.
                            while let Ok(job) = jobs.try_recv() {
                                pending.push_back(job);
                            }
                            if !pending
                                .iter()
                                .any(|j| matches!(j, Job::Retain { class: c, .. } if *c == class))
                            {
                                pending.push_back(Job::Retain { class, before });
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, ?class, "retention failed; trying again next round")
                    }
                }
            }
            Job::Index => match pipeline.store().index_observations(INDEX_BATCH) {
                Ok(n) if n == u64::from(INDEX_BATCH) => {
                    // More to copy: let what arrived meanwhile go first, then go on.
                    while let Ok(job) = jobs.try_recv() {
                        pending.push_back(job);
                    }
                    if !pending.iter().any(|j| matches!(j, Job::Index)) {
                        pending.push_back(Job::Index);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "indexing observations failed; trying again"),
            },
            Job::Reopen => {
                pipeline = match recover(pipeline, &open, &mut jobs, &mut pending, &store_up) {
                    Some(p) => p,
                    None => return,
                };
            }
            Job::Submit {
                items,
                actor,
                now,
                received,
                reply,
            } => {
                // Group commit: take the submissions already waiting, then commit them together.
                let started = Instant::now();
                let mut oldest = received;
                let mut group = vec![(attributed(items, &actor), reply)];
                let mut n: usize = group[0].0.len();
                let mut later = Vec::new();
                while n < batch_max_items {
                    // Submissions taken out of turn earlier go first, in their order; a job of
                    // another kind among them ends the group, so nothing overtakes it.
                    let next = match pending.front() {
                        Some(Job::Submit { .. }) => pending.pop_front().ok_or(()),
                        Some(_) => break,
                        None => jobs.try_recv().map_err(|_| ()),
                    };
                    match next {
                        Ok(Job::Submit {
                            items,
                            actor,
                            reply,
                            received,
                            ..
                        }) => {
                            n += items.len();
                            oldest = oldest.min(received);
                            group.push((attributed(items, &actor), reply));
                        }
                        Ok(other) => {
                            later.push(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let sizes: Vec<usize> = group.iter().map(|(items, _)| items.len()).collect();
                let (all, replies): (Vec<Vec<_>>, Vec<_>) = group.into_iter().unzip();
                let result = pipeline.submit_as(all.into_iter().flatten().collect(), now);
                match result {
                    Ok(step) => {
                        metrics
                            .commit_seconds
                            .observe(started.elapsed().as_secs_f64());
                        metrics.batch_items.observe(n as f64);
                        for v in &step.verdicts {
                            let c = match v {
                                Verdict::Accepted => &metrics.inputs_accepted,
                                Verdict::Duplicate => &metrics.inputs_duplicate,
                                Verdict::Rejected(_) => &metrics.inputs_rejected,
                            };
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                        publisher.step(pipeline.store(), &step);
                        // Which submission of the group raised an alarm is not tracked: the
                        // oldest one's receipt bounds the latency from above.
                        let waited = oldest.elapsed().as_secs_f64();
                        for _ in &step.alarm_ids {
                            metrics.alarm_latency_seconds.observe(waited);
                        }
                        let mut verdicts = step.verdicts.into_iter();
                        for (size, reply) in sizes.into_iter().zip(replies) {
                            let _ = reply.send(Ok(verdicts.by_ref().take(size).collect()));
                        }
                    }
                    Err(e) => {
                        metrics.commit_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, inputs = n, "commit failed; nothing of it stored, sources told");
                        let text = format!("nothing was stored: {e}");
                        for reply in replies {
                            let _ = reply.send(Err(text.clone()));
                        }
                        pipeline =
                            match recover(pipeline, &open, &mut jobs, &mut pending, &store_up) {
                                Some(p) => p,
                                None => return,
                            };
                    }
                }
                pending.extend(later);
            }
        }
    }
    // Stopping: the chain's head as it is now gets its checkpoint.
    checkpoints.maybe(pipeline.store(), true);
}

/// Each input with who submitted it.
fn attributed(
    items: Vec<Submission>,
    actor: &Option<Arc<str>>,
) -> Vec<(Submission, Option<Arc<str>>)> {
    items.into_iter().map(|i| (i, actor.clone())).collect()
}
