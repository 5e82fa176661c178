//! The rules task: evaluates each rule group on a timer of its own (the group's `interval`,
//! else the global evaluation interval), the first time right after the history's first tick,
//! and hands what comes out to the next stages: recorded samples to the history, alert
//! sightings to the recovery actions over a channel, alert states to the data dir.
//!
//! Owns when each group runs and the order of one evaluation, chosen so the slow parts hold no
//! lock:
//! 1. the due groups' expressions are taken from the engine (locked for a moment);
//! 2. they are answered over a read view of the history ([`crate::history::History::view`],
//!    taken under a read lock held for a moment, then read on a blocking thread with nothing
//!    locked), or by the remote datasource, with nothing locked;
//! 3. the engine turns the answers into alert states and recorded samples (locked for a
//!    moment: the state machine and templates);
//! 4. recorded samples go into the history under a short write lock (where they land:
//!    [`crate::history`]); sightings go to the actions without waiting; the alert states are
//!    saved on a blocking thread, with no lock held.
//!
//! So a slow rule file never holds up a scrape, a collection or a history append. It reads the
//! history and never changes how it is fed; it hands alerts on as [`Sighting`]s from the shared
//! model and knows nothing of what the actions do with them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::manager::{Answers, GroupKey, Recorded};
use super::promql::NAME;
use super::reload::{self, SharedEngine};
use crate::clock::system_ms;
use crate::history::landing::Landing;
use crate::history::recorder::{self, SharedHistory};
use crate::history::{History, SeriesKey, TickSamples};
use crate::model::Sighting;

/// How often the task looks for groups a reload added, at the longest.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// The time an evaluation is stamped with, ms since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock, for a running sentinel.
pub fn wall_clock() -> Clock {
    Arc::new(|| system_ms(SystemTime::now()))
}

/// An evaluation's sightings could not be handed on: the actions are far behind.
struct SightingsDropped {
    count: usize,
}

impl SightingsDropped {
    fn emit(&self) {
        tracing::warn!(
            alerts = self.count,
            "recovery actions are behind: this evaluation's alerts were dropped; the next one sends them again"
        );
    }
}

/// What the rules task works with.
pub struct RulesTask {
    /// The rules and their states.
    pub engine: SharedEngine,
    /// What the rules read, and where recorded samples go.
    pub history: SharedHistory,
    /// Where the alert states are saved.
    pub data_dir: PathBuf,
    /// Where each evaluation's sightings go (the recovery actions).
    pub sightings: mpsc::Sender<Vec<Sighting>>,
    /// The time evaluations are stamped with.
    pub clock: Clock,
    /// Told, before each look at the schedule, the earliest instant a recorded sample still
    /// to come can carry (the clock less the largest query offset).
    pub landing: Arc<Landing>,
}

/// Runs the rules until `shutdown` resolves: waits for the history's first tick (`appended`
/// says each tick's time), evaluates every group at once, then each group whenever its
/// interval has passed. Groups a reload adds are evaluated within a second.
pub async fn run(
    task: RulesTask,
    mut appended: watch::Receiver<Option<i64>>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    tokio::select! {
        _ = &mut shutdown => return,
        first = appended.wait_for(Option::is_some) => if first.is_err() {
            return;
        },
    }
    let mut next_due: HashMap<GroupKey, Instant> = HashMap::new();
    let mut saved_quiet = false;
    loop {
        let now = Instant::now();
        let (schedule, max_offset_ms) = {
            let engine = reload::lock(&task.engine);
            (engine.schedule(), engine.max_query_offset_ms())
        };
        // Every evaluation from here on is stamped at this clock or later, less an offset.
        task.landing
            .set((task.clock)().saturating_sub(max_offset_ms));
        let schedule: HashMap<GroupKey, Duration> = schedule
            .into_iter()
            .map(|(group, ms)| (group, Duration::from_millis(ms.max(1) as u64)))
            .collect();
        next_due.retain(|group, _| schedule.contains_key(group));
        for group in schedule.keys() {
            next_due.entry(group.clone()).or_insert(now);
        }
        let mut due: Vec<GroupKey> = next_due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(group, _)| group.clone())
            .collect();
        if !due.is_empty() {
            due.sort();
            let budget = due
                .iter()
                .filter_map(|g| schedule.get(g))
                .min()
                .copied()
                .unwrap_or(RELOAD_CHECK);
            evaluate(&task, &due, budget, &mut saved_quiet).await;
            let finished = Instant::now();
            for group in &due {
                let (Some(at), Some(interval)) = (next_due.get_mut(group), schedule.get(group))
                else {
                    continue;
                };
                // An evaluation that overran its interval is followed by the next one a full
                // interval after it ends, not by a burst.
                *at = Some(*at + *interval)
                    .filter(|next| *next > finished)
                    .unwrap_or(finished + *interval);
            }
            continue;
        }
        let wake = next_due
            .values()
            .min()
            .copied()
            .unwrap_or(now + RELOAD_CHECK)
            .min(now + RELOAD_CHECK);
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// One evaluation of the groups in `due`, in the order the module doc gives. `saved_quiet`
/// says the state file already holds no alerts: a state with none is then not written again,
/// since restoring it gives the same (no alerts) whenever it was taken; with rules evaluated
/// every second that write (fsync, rename, fsync of the folder) was a tenth of the sentinel's
/// CPU.
async fn evaluate(task: &RulesTask, due: &[GroupKey], budget: Duration, saved_quiet: &mut bool) {
    let now_ms = (task.clock)();
    let (queries, datasource) = {
        let engine = reload::lock(&task.engine);
        (engine.queries(due), engine.datasource())
    };
    let evaluated = match datasource {
        Some(datasource) => {
            let answers: Answers = datasource
                .query_all(queries.texts(), now_ms, budget)
                .await
                .into();
            let mut engine = reload::lock(&task.engine);
            let recorded = engine.evaluate_groups(due, answers, None);
            Ok((recorded, engine.sightings(now_ms), engine.state()))
        }
        None => {
            // Answers and templates' `query` calls read the same view, on a blocking thread.
            // Groups with no rules (the short form's when no alert is configured) ask nothing:
            // they get an empty store rather than a copy of the history's series index.
            let (history, engine, due) = (
                Arc::clone(&task.history),
                Arc::clone(&task.engine),
                due.to_vec(),
            );
            tokio::task::spawn_blocking(move || {
                let view = if queries.texts().is_empty() {
                    History::new(0, 1)
                } else {
                    recorder::read(&history).view()
                };
                let answers = queries.answer(now_ms, &view);
                let mut engine = reload::lock(&engine);
                let recorded = engine.evaluate_groups(&due, answers, Some(&view));
                (recorded, engine.sightings(now_ms), engine.state())
            })
            .await
        }
    };
    let (recorded, sightings, state) = match evaluated {
        Ok(evaluated) => evaluated,
        Err(e) => {
            tracing::error!(error = %e, "rule evaluation stopped");
            return;
        }
    };
    if !sightings.is_empty() {
        let count = sightings.len();
        if let Err(mpsc::error::TrySendError::Full(_)) = task.sightings.try_send(sightings) {
            SightingsDropped { count }.emit();
        }
    }
    if !recorded.is_empty() {
        // Each at the instant its group queried (the evaluation time less its query offset).
        let mut by_instant: BTreeMap<i64, Vec<Recorded>> = BTreeMap::new();
        for r in recorded {
            by_instant.entry(r.at_ms).or_default().push(r);
        }
        let mut history = recorder::write(&task.history);
        for (at_ms, recorded) in by_instant {
            let samples = series_of(&mut history, recorded);
            history.add_recorded(at_ms, samples);
        }
    }
    let quiet = state
        .rules
        .iter()
        .all(|(_, _, rule)| rule.alerts.is_empty());
    if quiet && *saved_quiet {
        return;
    }
    let data_dir = task.data_dir.clone();
    let saved = tokio::task::spawn_blocking(move || reload::save_state(&state, &data_dir)).await;
    *saved_quiet = quiet && matches!(saved, Ok(Ok(())));
    if let Ok(Err(e)) = saved {
        tracing::warn!(error = %e, "cannot save the alert states to the data dir");
    }
}

/// The history's series for recording rules' samples.
fn series_of(history: &mut crate::history::History, recorded: Vec<Recorded>) -> TickSamples {
    recorded
        .into_iter()
        .map(|r| {
            let name = r.labels.get(NAME).cloned().unwrap_or_default();
            let mut labels: Vec<(String, String)> =
                r.labels.into_iter().filter(|(k, _)| k != NAME).collect();
            labels.sort();
            (history.intern(SeriesKey { name, labels }), r.value)
        })
        .collect()
}
