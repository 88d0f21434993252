//! The dashboard's summaries, computed once and shared: a summary reads a whole fiscal year of the tenant's ledger
//! (or every donor's totals), so a hundred members of staff opening the dashboard must not each make the database
//! compute it again.
//!
//! Each summary answer is kept per tenant and per question. It is served again while it is still exact: the
//! tenant's ledger has not changed since (the projection says so through [`SummaryCache::changed`] after each
//! commit) and it is younger than `max_age`. The age bounds what this replica cannot know: changes applied by another
//! rollup replica, or by `rollup rebuild`. Concurrent requests for the same summary wait for one computation
//! (single flight) and take its answer when it began after they arrived, so an answer is never older than the
//! request, and under a steady stream of gifts the database computes each summary at most once at a time rather
//! than once per request.

use actix_web::web::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Summaries kept at most, over every tenant; past it the oldest half is dropped. Questions are few per tenant (a
/// route and its validated parameters), so this only bounds a client asking for every fiscal year there is.
const MAX_ENTRIES: usize = 4096;

/// A computed summary: when its computation began, at which version of the tenant's ledger, and the JSON body.
struct Entry {
    version: u64,
    began: Instant,
    body: Bytes,
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// Shared by the projection (which reports changes) and the summary routes. Cheap to clone.
#[derive(Clone)]
pub struct SummaryCache {
    inner: Arc<Inner>,
}

struct Inner {
    max_age: Duration,
    /// Per tenant, how many commits of the projection changed its ledger in this process.
    versions: Mutex<HashMap<Uuid, u64>>,
    slots: Mutex<HashMap<(Uuid, String), (Instant, Slot)>>,
}

impl SummaryCache {
    /// A cache whose answers live at most `max_age`; zero keeps nothing (every request computes, still one at a
    /// time per question).
    pub fn new(max_age: Duration) -> Self {
        Self {
            inner: Arc::new(Inner { max_age, versions: Mutex::new(HashMap::new()), slots: Mutex::new(HashMap::new()) }),
        }
    }

    /// The tenant's ledger changed (a projection transaction committed): its kept summaries are stale.
    pub fn changed(&self, tenant_id: Uuid) {
        let mut versions = self.inner.versions.lock().unwrap_or_else(|e| e.into_inner());
        *versions.entry(tenant_id).or_default() += 1;
    }

    fn version(&self, tenant_id: Uuid) -> u64 {
        let versions = self.inner.versions.lock().unwrap_or_else(|e| e.into_inner());
        versions.get(&tenant_id).copied().unwrap_or(0)
    }

    fn slot(&self, tenant_id: Uuid, question: String) -> Slot {
        let mut slots = self.inner.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= MAX_ENTRIES && !slots.contains_key(&(tenant_id, question.clone())) {
            let mut used: Vec<Instant> = slots.values().map(|(at, _)| *at).collect();
            used.sort_unstable();
            let cutoff = used[used.len() / 2];
            slots.retain(|_, (at, _)| *at > cutoff);
        }
        let (used, slot) = slots.entry((tenant_id, question)).or_insert_with(|| (Instant::now(), Slot::default()));
        *used = Instant::now();
        slot.clone()
    }

    /// The tenant's answer to `question` (a route and its validated parameters): kept, or computed by `compute`
    /// (which reads the database and serialises the answer). A failed computation is not kept.
    pub async fn get_or_compute<E, Fut>(
        &self,
        tenant_id: Uuid,
        question: String,
        compute: impl FnOnce() -> Fut,
    ) -> Result<Bytes, E>
    where
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let arrived = Instant::now();
        let version = self.version(tenant_id);
        let slot = self.slot(tenant_id, question);
        let mut kept = slot.lock().await;
        if let Some(entry) = kept.as_ref() {
            let exact = entry.version == version && entry.began.elapsed() < self.inner.max_age;
            // Computed while this request waited: it holds everything committed before the request arrived.
            let newer_than_request = entry.began >= arrived;
            if exact || newer_than_request {
                return Ok(entry.body.clone());
            }
        }
        let began = Instant::now();
        let body = compute().await?;
        *kept = Some(Entry { version, began, body: body.clone() });
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn ask(cache: &SummaryCache, tenant: Uuid, computed: &AtomicUsize) -> Bytes {
        cache
            .get_or_compute::<(), _>(tenant, "summary".to_owned(), || async {
                let n = computed.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Bytes::from(n.to_string()))
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_answer_is_kept_until_the_tenants_ledger_changes_and_never_shared_with_another_tenant() {
        let cache = SummaryCache::new(Duration::from_secs(60));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let computed = AtomicUsize::new(0);
        assert_eq!(ask(&cache, a, &computed).await, "1");
        assert_eq!(ask(&cache, a, &computed).await, "1", "kept");
        assert_eq!(ask(&cache, b, &computed).await, "2", "another tenant's is its own");
        cache.changed(a);
        assert_eq!(ask(&cache, a, &computed).await, "3", "recomputed after a change");
        assert_eq!(ask(&cache, b, &computed).await, "2", "the other tenant's still kept");
    }

    #[tokio::test]
    async fn an_answer_expires_after_max_age() {
        let cache = SummaryCache::new(Duration::from_millis(50));
        let tenant = Uuid::new_v4();
        let computed = AtomicUsize::new(0);
        assert_eq!(ask(&cache, tenant, &computed).await, "1");
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(ask(&cache, tenant, &computed).await, "2");
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_computation_even_while_the_ledger_keeps_changing() {
        let cache = SummaryCache::new(Duration::ZERO);
        let tenant = Uuid::new_v4();
        let computed = AtomicUsize::new(0);
        // The first computation is running when the other 50 arrive; a change lands meanwhile, so none of them may
        // take the first answer, and all of them take the second (begun after they all arrived).
        let first = ask(&cache, tenant, &computed);
        let rest = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            cache.changed(tenant);
            futures::future::join_all((0..50).map(|_| ask(&cache, tenant, &computed))).await
        };
        let (first, rest) = tokio::join!(first, rest);
        assert_eq!(first, "1");
        assert!(rest.iter().all(|body| body == "2"), "{rest:?}");
        assert_eq!(computed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_kept() {
        let cache = SummaryCache::new(Duration::from_secs(60));
        let tenant = Uuid::new_v4();
        let failed: Result<Bytes, &str> = cache.get_or_compute(tenant, "q".to_owned(), || async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        let computed = AtomicUsize::new(0);
        let body = cache
            .get_or_compute::<(), _>(tenant, "q".to_owned(), || async {
                computed.fetch_add(1, Ordering::SeqCst);
                Ok(Bytes::from_static(b"ok"))
            })
            .await
            .unwrap();
        assert_eq!(body, "ok");
        assert_eq!(computed.load(Ordering::SeqCst), 1);
    }
}
