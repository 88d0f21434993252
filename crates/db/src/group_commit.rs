//! Group commit: work items that arrive together are handled together, one transaction for many.
//!
//! Callers [`submit`](GroupCommit::submit) an item and wait for its result. A small pool of workers each takes
//! whatever has queued up (at most `max_batch` items, without waiting for more) and hands the batch to the
//! service's `process` function, which returns one result per item, in order. Under a light load a batch is one
//! item and nothing waits; under load the per-item cost of a transaction (round trips, the commit's WAL flush,
//! statement overhead) is shared by the batch. `process` must answer each item only with what its committed
//! transaction holds, so a caller's result means the same as if it had worked alone.
//!
//! Batch sizes are reported on `/metrics` as `almoner_group_commit_batch_size{queue}`.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio::sync::{Mutex, mpsc, oneshot};

type Job<T, R> = (T, oneshot::Sender<R>);

/// A queue of items of type `T` handled in batches, each producing an `R`. Cheap to clone.
pub struct GroupCommit<T, R> {
    jobs: mpsc::Sender<Job<T, R>>,
}

impl<T, R> Clone for GroupCommit<T, R> {
    fn clone(&self) -> Self {
        Self { jobs: self.jobs.clone() }
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts `workers` workers (at least one) taking up to `max_batch` items each. They stop once every clone of
    /// the queue is dropped and it is empty. `queue` names the batch-size metric's label.
    pub fn start<F, Fut>(queue: &str, workers: usize, max_batch: usize, process: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let max_batch = max_batch.max(1);
        let workers = workers.max(1);
        let (jobs, receiver) = mpsc::channel::<Job<T, R>>(max_batch * workers * 2);
        let receiver = Arc::new(Mutex::new(receiver));
        let process = Arc::new(process);
        let sizes = batch_sizes().with_label_values(&[queue]);
        for _ in 0..workers {
            let (receiver, process, sizes) = (receiver.clone(), process.clone(), sizes.clone());
            tokio::spawn(async move {
                while let Some(jobs) = take_batch(&receiver, max_batch).await {
                    sizes.observe(jobs.len() as f64);
                    let (items, replies): (Vec<T>, Vec<oneshot::Sender<R>>) = jobs.into_iter().unzip();
                    let expected = items.len();
                    let results = process(items).await;
                    debug_assert_eq!(results.len(), expected, "one result per item");
                    for (reply, result) in replies.into_iter().zip(results) {
                        // The caller may have gone (its request was cancelled); its result is simply dropped.
                        let _ = reply.send(result);
                    }
                }
            });
        }
        Self { jobs }
    }

    /// Queues `item` and waits for its result; `None` when the workers have stopped (shutdown) or dropped it.
    pub async fn submit(&self, item: T) -> Option<R> {
        let (reply, result) = oneshot::channel();
        self.jobs.send((item, reply)).await.ok()?;
        result.await.ok()
    }
}

/// Handles a batch group by group (per tenant, say): `handle` gets each group's key and its items in batch order,
/// one group after another, and returns one result per item; the results come back in the batch's order.
pub async fn per_group<'a, T, K, R, F, Fut>(batch: &'a [T], key: impl Fn(&T) -> K, mut handle: F) -> Vec<R>
where
    K: Ord,
    F: FnMut(K, Vec<&'a T>) -> Fut,
    Fut: Future<Output = Vec<R>>,
{
    let mut groups: std::collections::BTreeMap<K, Vec<usize>> = std::collections::BTreeMap::new();
    for (index, item) in batch.iter().enumerate() {
        groups.entry(key(item)).or_default().push(index);
    }
    let mut results: Vec<Option<R>> = batch.iter().map(|_| None).collect();
    for (key, indexes) in groups {
        let group: Vec<&T> = indexes.iter().map(|i| &batch[*i]).collect();
        let replies = handle(key, group).await;
        debug_assert_eq!(replies.len(), indexes.len(), "one result per item");
        for (index, reply) in indexes.into_iter().zip(replies) {
            results[index] = Some(reply);
        }
    }
    results.into_iter().map(|r| r.expect("one result per item")).collect()
}

/// Waits for one item, then takes whatever else is already queued, up to `max_batch`; `None` once closed.
async fn take_batch<J>(receiver: &Mutex<mpsc::Receiver<J>>, max_batch: usize) -> Option<Vec<J>> {
    // One worker at a time gathers a batch; the others work on theirs meanwhile.
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut batch = Vec::with_capacity(max_batch);
    batch.push(first);
    while batch.len() < max_batch {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

fn batch_sizes() -> &'static prometheus::HistogramVec {
    static METRIC: OnceLock<prometheus::HistogramVec> = OnceLock::new();
    METRIC.get_or_init(|| {
        prometheus::register_histogram_vec!(
            "almoner_group_commit_batch_size",
            "Items handled together in one group-commit batch.",
            &["queue"],
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]
        )
        .expect("almoner_group_commit_batch_size registers once")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn items_arriving_together_share_a_batch_and_each_gets_its_own_result() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let queue = GroupCommit::start("test", 1, 8, move |items: Vec<u32>| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push(items.len());
                tokio::time::sleep(Duration::from_millis(20)).await;
                items.into_iter().map(|i| i * 10).collect()
            }
        });
        let results = futures::future::join_all((0..20).map(|i| {
            let queue = queue.clone();
            async move { queue.submit(i).await }
        }))
        .await;
        assert_eq!(results, (0..20).map(|i| Some(i * 10)).collect::<Vec<_>>());
        let sizes = seen.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.iter().all(|s| *s <= 8), "{sizes:?}");
        assert!(sizes.len() < 20, "some items were batched: {sizes:?}");
    }
}
