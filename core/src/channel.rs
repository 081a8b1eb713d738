//! How changes reach the in-process tiers of other processes: a message
//! `{project}:{version}` per change on Redis pub/sub (published by the
//! invalidation script itself, atomically with the shared cache update) or
//! on PostgreSQL LISTEN/NOTIFY (sent by the change's own transaction).
//!
//! The subscriber keeps the tier told whether the channel is up: a channel
//! that drops, or stops answering pings, is down until it reconnects, and a
//! reconnect flushes the tier.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;

use crate::ids::ProjectId;
use crate::local::LocalTier;

/// How often a subscriber checks that its connection still answers.
const HEARTBEAT: Duration = Duration::from_millis(250);
/// How long a reconnect or a ping may take.
pub(crate) const PATIENCE: Duration = Duration::from_millis(500);

/// The channel of a tier.
pub(crate) enum Channel {
    /// The store belongs to this process alone: nothing to listen to, and
    /// answers never expire.
    SingleProcess,
    /// Other processes may change the store and nothing tells this one:
    /// answers expire after the tier's bound.
    Absent,
    /// Redis pub/sub on `channel`.
    Redis { client: Box<redis::Client>, channel: String },
    /// PostgreSQL LISTEN on `channel`.
    Postgres { pool: sqlx::PgPool, channel: String },
}

/// The message of one change.
pub(crate) fn message(project: &ProjectId, version: i64) -> String {
    format!("{project}:{version}")
}

fn apply(tier: &LocalTier, payload: &str) {
    let parsed = payload.rsplit_once(':').and_then(|(p, v)| Some((ProjectId::new(p).ok()?, v.parse::<i64>().ok()?)));
    match parsed {
        Some((project, version)) => tier.invalidate(&project, Some(version)),
        // Not ours or damaged: dropping everything is always safe.
        None => tier.clear(),
    }
}

impl Channel {
    /// Whether the tier may trust answers before the subscriber has run.
    pub(crate) fn initially_up(&self) -> bool {
        matches!(self, Channel::SingleProcess)
    }

    /// Starts the subscriber on the current runtime; it ends with the tier.
    pub(crate) fn spawn(self, tier: Weak<LocalTier>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        match self {
            Channel::SingleProcess | Channel::Absent => {
                if let Some(t) = tier.upgrade() {
                    t.mark_settled();
                }
            }
            Channel::Redis { client, channel } => {
                runtime.spawn(redis_subscriber(*client, channel, tier));
            }
            Channel::Postgres { pool, channel } => {
                runtime.spawn(postgres_subscriber(pool, channel, tier));
            }
        }
    }
}

async fn redis_subscriber(client: redis::Client, channel: String, tier: Weak<LocalTier>) {
    loop {
        if tier.strong_count() == 0 {
            return;
        }
        let connected = tokio::time::timeout(PATIENCE, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let Ok(Ok(pubsub)) = connected else {
            if let Some(t) = tier.upgrade() {
                t.mark_settled();
            }
            tokio::time::sleep(HEARTBEAT).await;
            continue;
        };
        let Some(t) = tier.upgrade() else { return };
        t.set_channel_up(true);
        drop(t);
        let (mut sink, mut stream) = pubsub.split();
        let mut beat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let Some(t) = tier.upgrade() else { return };
                    apply(&t, &msg.get_payload::<String>().unwrap_or_default());
                }
                _ = beat.tick() => {
                    if tier.strong_count() == 0 {
                        return;
                    }
                    let ping = tokio::time::timeout(PATIENCE, sink.ping::<redis::Value>()).await;
                    if !matches!(ping, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        let Some(t) = tier.upgrade() else { return };
        t.set_channel_up(false);
    }
}

async fn postgres_subscriber(pool: sqlx::PgPool, channel: String, tier: Weak<LocalTier>) {
    use sqlx::postgres::PgListener;
    loop {
        if tier.strong_count() == 0 {
            return;
        }
        let connected = tokio::time::timeout(PATIENCE, async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        })
        .await;
        let Ok(Ok(mut listener)) = connected else {
            if let Some(t) = tier.upgrade() {
                t.mark_settled();
            }
            tokio::time::sleep(HEARTBEAT).await;
            continue;
        };
        let Some(t) = tier.upgrade() else { return };
        t.set_channel_up(true);
        drop(t);
        loop {
            match tokio::time::timeout(HEARTBEAT, listener.try_recv()).await {
                Ok(Ok(Some(n))) => {
                    let Some(t) = tier.upgrade() else { return };
                    apply(&t, n.payload());
                }
                // The connection was lost, and with it any message meanwhile.
                Ok(_) => break,
                // Quiet for a while: make sure the connection still answers
                // (notifications that arrive meanwhile are buffered).
                Err(_) => {
                    if tier.strong_count() == 0 {
                        return;
                    }
                    let ping = tokio::time::timeout(PATIENCE, sqlx::query("SELECT 1").execute(&mut listener)).await;
                    if !matches!(ping, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        let Some(t) = tier.upgrade() else { return };
        t.set_channel_up(false);
    }
}

/// A PostgreSQL channel name for a schema: at most 63 bytes, distinct per
/// schema.
pub(crate) fn postgres_channel(schema: &str) -> String {
    // FNV-1a: stable across processes and versions, unlike std's hasher.
    let hash = schema.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let head: String = schema.chars().take(40).collect();
    format!("lupa_{head}_{hash:016x}")
}
