//! The in-process tier: resolution answers (positive and negative) held in
//! process memory in front of the shared cache, bounded in projects and
//! evicting the least recently used.
//!
//! Staleness rules:
//! - this process's own changes remove the project's answers before the
//!   change returns, so its own tier is never stale;
//! - other processes' changes arrive on an invalidation channel (Redis
//!   pub/sub, or PostgreSQL LISTEN/NOTIFY) within milliseconds;
//! - while the channel is down (or when there is none), an answer is used
//!   for at most `bound`; when it comes back, everything is dropped, since
//!   messages sent meanwhile are lost.
//!
//! A reader notes its shard's epoch before it reads the tiers below and
//! fills only if no invalidation of that shard came in between, so a read
//! that raced a change cannot store its old answer.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use compact_str::CompactString;
use lru::LruCache;
use tokio::sync::OnceCell;

use crate::error::{Error, ErrorCode, Result};
use crate::ids::{DeploymentId, ProjectId};
use crate::model::Environment;
use crate::resolve::Resolution;

const SHARDS: usize = 64;
/// Explicit `Deployment-Id` answers kept per project.
const EXPLICIT_PER_PROJECT: usize = 8;

/// What a resolution asked, once validated: the tier's key within a project.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Question {
    /// Automatic resolution of an environment.
    Environment(Environment),
    /// An explicit `Deployment-Id`, on a route that requires a deployment or not.
    Explicit(DeploymentId, bool),
    /// Only whether the project exists.
    Project,
}

/// A resolution's outcome as the tier keeps it: the deployment (none for a
/// route that needs none) or the error.
pub(crate) type Answer = Result<Option<DeploymentId>>;

/// Whether an outcome may be kept: answers about the data, never failures
/// of the backends.
pub(crate) fn keepable(answer: &Answer) -> bool {
    match answer {
        Ok(_) => true,
        Err(e) => matches!(
            e.code(),
            ErrorCode::ProjectNotFound
                | ErrorCode::NoProductionDeployment
                | ErrorCode::NoStagingDeployment
                | ErrorCode::DeploymentNotFound
                | ErrorCode::DeploymentNotReady
        ),
    }
}

/// An answer as kept: compact, since a tier may hold a million projects.
/// Ids up to 24 bytes live inline; errors keep their code, and the message
/// is the one resolution always gives for that code.
#[derive(Clone)]
enum Kept {
    Found(CompactString),
    Nothing,
    Failed(ErrorCode),
}

impl Kept {
    fn of(answer: &Answer) -> Kept {
        match answer {
            Ok(Some(d)) => Kept::Found(CompactString::new(d.as_str())),
            Ok(None) => Kept::Nothing,
            Err(e) => Kept::Failed(e.code()),
        }
    }

    fn answer(&self) -> Answer {
        match self {
            // Only valid ids are ever kept.
            Kept::Found(d) => DeploymentId::new(d.as_str()).map(Some),
            Kept::Nothing => Ok(None),
            Kept::Failed(code) => Err(Error::of_resolution(*code)),
        }
    }
}

/// A kept answer and when it was kept (milliseconds since the tier began).
type Stamped = (Kept, u64);

/// Explicit `Deployment-Id` answers: rare, so boxed out of the common entry.
type ExplicitAnswers = Box<Vec<((DeploymentId, bool), Stamped)>>;

#[derive(Default)]
struct ProjectAnswers {
    /// The newest change of the project this tier has applied.
    version: i64,
    production: Option<Stamped>,
    staging: Option<Stamped>,
    project: Option<Stamped>,
    explicit: Option<ExplicitAnswers>,
}

impl ProjectAnswers {
    fn get(&self, q: &Question) -> Option<&Stamped> {
        match q {
            Question::Environment(Environment::Production) => self.production.as_ref(),
            Question::Environment(Environment::Staging) => self.staging.as_ref(),
            Question::Project => self.project.as_ref(),
            Question::Explicit(d, requires) => {
                self.explicit.as_ref()?.iter().find(|((id, r), _)| id == d && r == requires).map(|(_, s)| s)
            }
        }
    }

    fn put(&mut self, q: Question, s: Stamped) {
        match q {
            Question::Environment(Environment::Production) => self.production = Some(s),
            Question::Environment(Environment::Staging) => self.staging = Some(s),
            Question::Project => self.project = Some(s),
            Question::Explicit(d, requires) => {
                let explicit = self.explicit.get_or_insert_with(Default::default);
                explicit.retain(|((id, r), _)| !(id == &d && *r == requires));
                if explicit.len() >= EXPLICIT_PER_PROJECT {
                    drop(explicit.remove(0));
                }
                explicit.push(((d, requires), s));
            }
        }
    }
}

struct Shard {
    answers: LruCache<CompactString, ProjectAnswers>,
    /// Raised by every invalidation of a project of this shard.
    epoch: u64,
}

/// A shard's epoch as a reader saw it before reading the tiers below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Ticket {
    shard: usize,
    epoch: u64,
}

type Flight = Arc<OnceCell<Result<Resolution>>>;

/// The tier. Shared by every handle of a process that opens the same store.
pub(crate) struct LocalTier {
    shards: Box<[Mutex<Shard>]>,
    began: Instant,
    hasher: std::collections::hash_map::RandomState,
    bound: Duration,
    /// True while the invalidation channel is connected (always, for a store
    /// no other process can change).
    channel_up: AtomicBool,
    flights: Mutex<HashMap<(ProjectId, Question, Ticket), Flight>>,
    /// True once the channel's subscriber has made its first attempt.
    settled: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for LocalTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTier").field("bound", &self.bound).finish_non_exhaustive()
    }
}

impl LocalTier {
    /// A tier for at most `capacity` projects whose answers, while the
    /// channel is down, live at most `bound`.
    pub(crate) fn new(capacity: usize, bound: Duration, channel_up: bool) -> LocalTier {
        let per_shard = NonZeroUsize::new(capacity.div_ceil(SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        LocalTier {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard { answers: LruCache::new(per_shard), epoch: 0 })).collect(),
            began: Instant::now(),
            hasher: std::collections::hash_map::RandomState::new(),
            bound,
            channel_up: AtomicBool::new(channel_up),
            flights: Mutex::new(HashMap::new()),
            settled: tokio::sync::watch::channel(channel_up).0,
        }
    }

    /// The subscriber made its first attempt to connect, whatever came of it.
    pub(crate) fn mark_settled(&self) {
        self.settled.send_replace(true);
    }

    /// Waits (at most `patience`) for the subscriber's first attempt, so a
    /// handle starts with its channel connected rather than flushing its
    /// first answers when it connects.
    pub(crate) async fn settle(&self, patience: Duration) {
        let mut rx = self.settled.subscribe();
        let _ = tokio::time::timeout(patience, rx.wait_for(|s| *s)).await;
    }

    fn shard_of(&self, project: &ProjectId) -> usize {
        (self.hasher.hash_one(project.as_str()) as usize) % SHARDS
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.began.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // Nothing panics while holding a shard; a poisoned one is still whole.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept answer, or the ticket a reader needs to fill one.
    pub(crate) fn get(&self, project: &ProjectId, q: &Question) -> std::result::Result<Answer, Ticket> {
        let i = self.shard_of(project);
        let mut shard = self.lock(i);
        let epoch = shard.epoch;
        let up = self.channel_up.load(Ordering::Acquire);
        let bound = u64::try_from(self.bound.as_millis()).unwrap_or(u64::MAX);
        let now = self.now_ms();
        if let Some(answers) = shard.answers.get(project.as_str())
            && let Some((kept, at)) = answers.get(q)
            && (up || now.saturating_sub(*at) <= bound)
        {
            return Ok(kept.answer());
        }
        Err(Ticket { shard: i, epoch })
    }

    /// Keeps `answer` unless an invalidation of the shard came in since the
    /// ticket was issued.
    pub(crate) fn fill(&self, project: &ProjectId, q: Question, ticket: Ticket, answer: &Answer) {
        if !keepable(answer) {
            return;
        }
        let mut shard = self.lock(ticket.shard);
        if shard.epoch != ticket.epoch {
            return;
        }
        let stamped = (Kept::of(answer), self.now_ms());
        match shard.answers.get_mut(project.as_str()) {
            Some(answers) => answers.put(q, stamped),
            None => {
                let mut answers = ProjectAnswers::default();
                answers.put(q, stamped);
                shard.answers.put(CompactString::new(project.as_str()), answers);
            }
        }
    }

    /// Drops a project's answers and refuses fills that were in flight,
    /// unless the change (`version`, when known) was applied already: a
    /// process hears its own changes back on the channel, after it may have
    /// filled fresh answers.
    pub(crate) fn invalidate(&self, project: &ProjectId, version: Option<i64>) {
        let mut shard = self.lock(self.shard_of(project));
        let known = shard.answers.peek(project.as_str()).map_or(0, |a| a.version);
        if version.is_some_and(|v| v <= known) {
            return;
        }
        shard.epoch += 1;
        let version = version.unwrap_or(known).max(known);
        shard
            .answers
            .put(CompactString::new(project.as_str()), ProjectAnswers { version, ..ProjectAnswers::default() });
    }

    /// Drops every answer and refuses every fill in flight.
    pub(crate) fn clear(&self) {
        for i in 0..SHARDS {
            let mut shard = self.lock(i);
            shard.epoch += 1;
            shard.answers.clear();
        }
    }

    /// The channel went down (answers now expire after `bound`) or came up
    /// (everything is dropped: messages sent meanwhile were lost).
    pub(crate) fn set_channel_up(&self, up: bool) {
        self.mark_settled();
        let was = self.channel_up.swap(up, Ordering::AcqRel);
        if up && !was {
            self.clear();
        }
        if up != was {
            tracing::info!(target: "lupa_core::local", up, "invalidation channel state changed");
        }
    }

    /// Runs `fetch` once for all concurrent askers of the same question
    /// under the same ticket; a question asked after an invalidation has a
    /// new ticket and so a fetch of its own.
    pub(crate) async fn single_flight<F, Fut>(
        &self,
        project: &ProjectId,
        q: &Question,
        ticket: Ticket,
        fetch: F,
    ) -> Result<Resolution>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Resolution>>,
    {
        let key = (project.clone(), q.clone(), ticket);
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            flights.entry(key.clone()).or_default().clone()
        };
        let answer = flight.get_or_init(fetch).await.clone();
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            flights.remove(&key);
        }
        answer
    }

    /// How many projects hold answers (for tests and stats).
    pub(crate) fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).answers.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    trait TicketOf {
        fn unwrap_err_or_ticket(self) -> Ticket;
    }

    impl TicketOf for std::result::Result<Answer, Ticket> {
        /// The ticket a reader would hold now, hit or miss.
        fn unwrap_err_or_ticket(self) -> Ticket {
            match self {
                Err(t) => t,
                Ok(_) => panic!("expected a miss"),
            }
        }
    }

    fn p(s: &str) -> ProjectId {
        ProjectId::new(s).unwrap()
    }

    fn d(s: &str) -> Answer {
        Ok(Some(DeploymentId::new(s).unwrap()))
    }

    const LIVE: Question = Question::Environment(Environment::Production);

    #[test]
    fn fills_hits_and_invalidations() {
        let t = LocalTier::new(1000, Duration::from_secs(1), true);
        let ticket = t.get(&p("a"), &LIVE).unwrap_err();
        t.fill(&p("a"), LIVE, ticket, &d("d1"));
        assert_eq!(t.get(&p("a"), &LIVE).unwrap(), d("d1"));
        t.invalidate(&p("a"), Some(5));
        let ticket = t.get(&p("a"), &LIVE).unwrap_err();
        t.fill(&p("a"), LIVE, ticket, &d("d2"));
        // The same change heard again (its echo on the channel) changes nothing.
        t.invalidate(&p("a"), Some(5));
        t.invalidate(&p("a"), Some(4));
        assert_eq!(t.get(&p("a"), &LIVE).unwrap(), d("d2"));
        t.invalidate(&p("a"), Some(6));
        let ticket = t.get(&p("a"), &LIVE).unwrap_err_or_ticket();
        // A reader that started before an invalidation cannot fill.
        t.invalidate(&p("a"), None);
        t.fill(&p("a"), LIVE, ticket, &d("old"));
        assert!(t.get(&p("a"), &LIVE).is_err());
        // Failures of the backends are never kept; answers about data are.
        let ticket = t.get(&p("a"), &LIVE).unwrap_err();
        t.fill(&p("a"), LIVE, ticket, &Err(Error::storage_unavailable(&"down")));
        assert!(t.get(&p("a"), &LIVE).is_err());
        t.fill(&p("a"), LIVE, ticket, &Err(Error::project_not_found()));
        assert_eq!(t.get(&p("a"), &LIVE).unwrap().unwrap_err().code(), ErrorCode::ProjectNotFound);
    }

    #[test]
    fn bounded_while_the_channel_is_down_and_flushed_when_it_returns() {
        let t = LocalTier::new(1000, Duration::from_millis(30), true);
        let ticket = t.get(&p("a"), &LIVE).unwrap_err();
        t.fill(&p("a"), LIVE, ticket, &d("d1"));
        t.set_channel_up(false);
        assert!(t.get(&p("a"), &LIVE).is_ok(), "young answers still serve");
        std::thread::sleep(Duration::from_millis(40));
        assert!(t.get(&p("a"), &LIVE).is_err(), "older than the bound while down");
        t.set_channel_up(true);
        assert_eq!(t.len(), 0, "a reconnect drops everything");
    }

    #[test]
    fn evicts_least_recently_used_projects() {
        let t = LocalTier::new(SHARDS, Duration::from_secs(1), true); // one project per shard
        for i in 0..(SHARDS * 4) {
            let id = p(&format!("p{i}"));
            let ticket = t.get(&id, &LIVE).unwrap_err();
            t.fill(&id, LIVE, ticket, &d("d"));
        }
        assert!(t.len() <= SHARDS);
    }

    #[tokio::test]
    async fn one_fetch_for_concurrent_askers() {
        let t = Arc::new(LocalTier::new(1000, Duration::from_secs(1), true));
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ticket = t.get(&p("a"), &LIVE).unwrap_err();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (t, fetches) = (t.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                t.single_flight(&p("a"), &LIVE, ticket, || async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(Resolution { deployment: d("d1").unwrap(), source: crate::resolve::Source::Store })
                })
                .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().deployment, d("d1").unwrap());
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(t.flights.lock().unwrap().is_empty());
    }
}
