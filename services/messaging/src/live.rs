//! Live conversation streams (Server-Sent Events): one per open widget (the member's own conversations) and one
//! per open staff inbox (all the tenant's), served by whichever replica the client reached.
//!
//! The record is the tenant's conversation stream in PostgreSQL, numbered in commit order; RabbitMQ only carries
//! the nudge (`messaging.conversation.streamed.v1`) that tells every replica something new is there. Each replica
//! subscribes with its own queue ([`almoner_bus::broadcast`]) and wakes the connections the nudge concerns, which
//! read what came after the last number they sent. A client that reconnects says that number (`Last-Event-ID`)
//! and gets everything after it, so nothing sent while it was away is missed. A lost nudge costs at most one
//! heartbeat: every connection also reads the stream when it sends its heartbeat.

use crate::db::conversations::{self, StreamEntry};
use almoner_config::AmqpSettings;
use almoner_db::Pool;
use almoner_events::messaging::ConversationStreamedV1;
use almoner_events::{Envelope, Event};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Entries read from the stream at a time.
const READ_BATCH: i64 = 200;

/// Whose connections a nudge wakes: a member's own, or a tenant's staff inboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Watch {
    tenant_id: Uuid,
    member_id: Option<Uuid>,
}

/// The connections of this replica, by whom they watch: a nudge wakes only those it concerns (a member's message
/// wakes that member's widgets and the tenant's inboxes, not the thousand other members' streams). A `Notify`
/// keeps one wake-up for a connection that is busy sending, so none is lost.
#[derive(Default)]
struct Watchers(std::sync::Mutex<HashMap<Watch, Vec<Arc<Notify>>>>);

impl Watchers {
    fn add(&self, watch: Watch) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(watch).or_default().push(notify.clone());
        notify
    }

    fn remove(&self, watch: Watch, notify: &Arc<Notify>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = map.get_mut(&watch) {
            list.retain(|n| !Arc::ptr_eq(n, notify));
            if list.is_empty() {
                map.remove(&watch);
            }
        }
    }

    fn wake(&self, watch: Watch) {
        if let Some(list) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&watch) {
            list.iter().for_each(|n| n.notify_one());
        }
    }

    fn wake_all(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).values().flatten().for_each(|n| n.notify_one());
    }
}

/// Live-stream settings (`conversations.*`).
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// How often an idle connection sends a comment (keeping proxies from closing it) and reads the stream.
    pub heartbeat: Duration,
    /// How long a member counts as connected after the last heartbeat of their connection.
    pub presence_ttl: Duration,
    /// How long stream entries are kept for clients that reconnect.
    pub retention: Duration,
}

/// This replica's live connections and the nudges that wake them.
pub struct Hub {
    watchers: Watchers,
    /// Cancelled when the service shuts down: every connection ends, and its client reconnects elsewhere.
    closing: CancellationToken,
    settings: LiveSettings,
}

impl Hub {
    pub fn new(settings: LiveSettings) -> Arc<Self> {
        Arc::new(Self { watchers: Watchers::default(), closing: CancellationToken::new(), settings })
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// Subscribes to the nudges until shutdown, then closes every connection.
    pub async fn run(self: Arc<Self>, amqp: AmqpSettings, name: String, shutdown: CancellationToken) {
        let hub = self.clone();
        almoner_bus::broadcast::listen(
            amqp,
            vec![ConversationStreamedV1::TYPE.to_owned()],
            name,
            move |received| match received {
                // Nudges may have been lost while it was away: every connection reads.
                almoner_bus::broadcast::Broadcast::Connected => hub.watchers.wake_all(),
                almoner_bus::broadcast::Broadcast::Event(envelope) => hub.nudge_from(&envelope),
            },
            shutdown,
        )
        .await;
        self.closing.cancel();
    }

    fn nudge_from(&self, envelope: &Envelope<serde_json::Value>) {
        if envelope.event_type != ConversationStreamedV1::TYPE {
            return;
        }
        match serde_json::from_value::<ConversationStreamedV1>(envelope.payload.clone()) {
            Ok(event) => self.nudge(envelope.tenant_id, event.member_id),
            Err(e) => tracing::warn!(error = %e, "a conversation nudge could not be read; ignored"),
        }
    }

    /// Wakes the connections of this replica that follow the member's stream: their own widgets and the tenant's
    /// inboxes. Called at once after a local write, and for every broadcast nudge (each replica's).
    pub fn nudge(&self, tenant_id: Uuid, member_id: Uuid) {
        self.watchers.wake(Watch { tenant_id, member_id: Some(member_id) });
        self.watchers.wake(Watch { tenant_id, member_id: None });
    }
}

/// Whose stream a connection follows.
#[derive(Debug, Clone, Copy)]
pub struct Audience {
    pub tenant_id: Uuid,
    /// A member's own entries (in their form); `None`: every entry of the tenant, in the staff form.
    pub member_id: Option<Uuid>,
}

/// Where a connection starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// From now: the client loads what is there and follows from the number the `ready` event gives.
    Now,
    /// After the number the client last received.
    After(i64),
}

/// One Server-Sent Events frame for a stream entry (JSON never holds a raw line break, so `data` is one line).
fn frame(entry: &StreamEntry) -> String {
    format!("id: {}\nevent: {}\ndata: {}\n\n", entry.id, entry.kind, entry.data)
}

/// Serves one connection until the client goes, the service shuts down or the database fails; frames go to `out`.
pub async fn serve(pool: Pool, hub: Arc<Hub>, audience: Audience, start: Start, out: mpsc::Sender<String>) {
    let connection_id = Uuid::new_v4();
    let watch = Watch { tenant_id: audience.tenant_id, member_id: audience.member_id };
    let woken = hub.watchers.add(watch);
    if let Err(e) = follow(&pool, &hub, audience, start, &out, connection_id, &woken).await {
        tracing::warn!(error = %e, "a live conversation stream ended on an error; the client will reconnect");
    }
    hub.watchers.remove(watch, &woken);
    if audience.member_id.is_some()
        && let Ok(tx) = pool.tenant_tx(audience.tenant_id).await
    {
        let _ = conversations::drop_connection(&tx, connection_id).await;
        let _ = tx.commit().await;
    }
}

async fn follow(
    pool: &Pool,
    hub: &Hub,
    audience: Audience,
    start: Start,
    out: &mpsc::Sender<String>,
    connection_id: Uuid,
    woken: &Notify,
) -> anyhow::Result<()> {
    let settings = hub.settings.clone();
    // Where the client is: checked against what the stream still holds.
    let tx = pool.tenant_tx(audience.tenant_id).await?;
    let (head, oldest) = conversations::stream_bounds(&tx).await?;
    if let Some(member_id) = audience.member_id {
        touch(&tx, connection_id, member_id, &settings).await?;
    }
    tx.commit().await?;
    let mut last = match start {
        Start::Now => head,
        Start::After(after) if after > head || (after < head && (oldest == 0 || after < oldest - 1)) => {
            // From another stream (a restored database) or further back than is kept: the client reloads.
            if out.send(format!("event: reset\ndata: {{\"stream_id\":{head}}}\n\n")).await.is_err() {
                return Ok(());
            }
            head
        }
        Start::After(after) => after,
    };
    let ready = format!("retry: 2000\nevent: ready\ndata: {{\"stream_id\":{last}}}\n\n");
    if out.send(ready).await.is_err() {
        return Ok(());
    }
    let mut heartbeat = tokio::time::interval(settings.heartbeat);
    heartbeat.tick().await;
    loop {
        // Send what is new.
        loop {
            let tx = pool.tenant_tx(audience.tenant_id).await?;
            let entries: Vec<StreamEntry> =
                conversations::stream_after(&tx, last, audience.member_id, READ_BATCH).await?;
            tx.commit().await?;
            let full = i64::try_from(entries.len()).unwrap_or(0) >= READ_BATCH;
            for entry in &entries {
                if out.send(frame(entry)).await.is_err() {
                    return Ok(());
                }
                last = entry.id;
            }
            if !full {
                break;
            }
        }
        // Wait for something that concerns this connection, or the heartbeat (which reads the stream too).
        tokio::select! {
            () = hub.closing.cancelled() => return Ok(()),
            () = out.closed() => return Ok(()),
            _ = heartbeat.tick() => {
                if out.send(": heartbeat\n\n".to_owned()).await.is_err() {
                    return Ok(());
                }
                if let Some(member_id) = audience.member_id {
                    let tx = pool.tenant_tx(audience.tenant_id).await?;
                    touch(&tx, connection_id, member_id, &settings).await?;
                    tx.commit().await?;
                }
            }
            () = woken.notified() => {}
        }
    }
}

async fn touch(
    tx: &almoner_db::Transaction,
    connection_id: Uuid,
    member_id: Uuid,
    settings: &LiveSettings,
) -> anyhow::Result<()> {
    let ttl = chrono::Duration::from_std(settings.presence_ttl).unwrap_or(chrono::Duration::seconds(45));
    conversations::touch_connection(tx, connection_id, member_id, Utc::now() + ttl).await?;
    Ok(())
}

/// Forgets old stream entries and dead connections, every minute until shutdown.
pub async fn prune(pool: Pool, retention: Duration, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let before = Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(7));
        let pruned = async {
            let tx = pool.system_tx().await?;
            let entries = conversations::prune_stream(&tx, before).await?;
            let connections = conversations::prune_connections(&tx).await?;
            tx.commit().await?;
            Ok::<_, almoner_db::DbError>((entries, connections))
        };
        match pruned.await {
            Ok((0, 0)) => {}
            Ok((entries, connections)) => tracing::info!(entries, connections, "pruned the conversation stream"),
            Err(e) => tracing::warn!(error = %e, "pruning the conversation stream failed; trying again later"),
        }
    }
}
