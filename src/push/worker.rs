//! The push thread: a single-threaded tokio runtime that takes jobs off
//! every shard's ring, sends each on its own task (at most `inflight_max`
//! at once) through the shared HTTP/2 client, retries what the provider
//! asks to be retried, and reports dead tokens back to the shard that owns
//! the device.
//!
//! Invariants: a job is sent, retried at most `retries_max` times (backoff
//! doubling from `retry_backoff_ms`, a longer `Retry-After` winning), or
//! dropped; every outcome is counted on the queueing shard's metrics. The
//! thread ends once every shard has dropped its end of the rings.

use crate::config::PushConfig;
use crate::metrics::{Metrics, ShardMetrics};
use crate::push::apns::{self, Apns};
use crate::push::client::{self, PushClient};
use crate::push::fcm::{self, Fcm};
use crate::push::link::WorkerLink;
use crate::push::{DeadToken, PushJob, Verdict};
use crate::store::accounts::PushProvider;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, Semaphore};

/// The providers that are configured (a missing one drops its pushes).
pub struct Providers {
    /// APNs, if configured.
    pub apns: Option<Apns>,
    /// FCM, if configured.
    pub fcm: Option<Fcm>,
}

impl Providers {
    /// Reads the keys `config` names; an error names the file and the reason.
    pub fn load(config: &PushConfig) -> Result<Self, String> {
        let apns = config.apns.clone().map(Apns::new).transpose()?;
        let fcm = config.fcm.clone().map(Fcm::new).transpose()?;
        Ok(Self { apns, fcm })
    }
}

/// What every send task shares.
struct Shared {
    providers: Providers,
    http: PushClient,
    metrics: Metrics,
    /// Per shard: the ring dead tokens go back on.
    dead_tokens: Vec<Mutex<rtrb::Producer<DeadToken>>>,
    retries_max: u32,
    retry_backoff_ms: u64,
    timeout: Duration,
}

/// Starts the push thread over the shards' rings.
pub fn spawn(
    config: &PushConfig,
    providers: Providers,
    links: Vec<WorkerLink>,
    wake: Arc<Notify>,
    metrics: Metrics,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let inflight_max = config.inflight_max;
    let (mut job_rings, dead_rings): (Vec<_>, Vec<_>) =
        links.into_iter().map(|link| (link.jobs, Mutex::new(link.dead_tokens))).unzip();
    let shared = Arc::new(Shared {
        providers,
        http: client::new_client(),
        metrics,
        dead_tokens: dead_rings,
        retries_max: config.retries_max,
        retry_backoff_ms: config.retry_backoff_ms,
        timeout: Duration::from_millis(config.request_timeout_ms),
    });
    std::thread::Builder::new().name("push".into()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let runtime = runtime.expect("a current-thread runtime builds");
        runtime.block_on(intake(&mut job_rings, wake, shared, inflight_max));
    })
}

/// Takes jobs as the shards queue them until every shard is gone.
async fn intake(
    rings: &mut [rtrb::Consumer<PushJob>],
    wake: Arc<Notify>,
    shared: Arc<Shared>,
    inflight_max: usize,
) {
    let permits = Arc::new(Semaphore::new(inflight_max));
    loop {
        // A wake that raced the drain below is caught by the timeout.
        let _ = tokio::time::timeout(Duration::from_millis(100), wake.notified()).await;
        for ring in rings.iter_mut() {
            while let Ok(job) = ring.pop() {
                let permit = permits.clone().acquire_owned().await.expect("never closed");
                let shared = shared.clone();
                tokio::spawn(async move {
                    let shard = job.shard;
                    deliver(&shared, job).await;
                    ShardMetrics::dec(&shared.metrics[shard].push_queue_len);
                    drop(permit);
                });
            }
        }
        if rings.iter().all(|ring| ring.is_abandoned() && ring.is_empty()) {
            return;
        }
    }
}

/// Sends one job with its retries, counting the outcome.
async fn deliver(shared: &Shared, job: PushJob) {
    let stats = &shared.metrics[job.shard];
    let mut retries = 0;
    let mut reauthenticated = false;
    loop {
        let verdict = attempt(shared, &job).await;
        let wait_ms = match verdict {
            Verdict::Sent => {
                let latency_us = job.queued_at.elapsed().as_micros() as u64;
                stats.histograms.push_send_seconds.record_us(latency_us);
                let sent = match job.provider {
                    PushProvider::Apn => &stats.push_apns_sent_total,
                    PushProvider::Fcm => &stats.push_fcm_sent_total,
                };
                return ShardMetrics::inc(sent);
            }
            Verdict::Dead { invalidated_ms } => return report_dead(shared, job, invalidated_ms),
            Verdict::Failed(reason) => {
                let configured = match job.provider {
                    PushProvider::Apn => shared.providers.apns.is_some(),
                    PushProvider::Fcm => shared.providers.fcm.is_some(),
                };
                // An unconfigured provider is a deployment choice, not news
                // per push: counted, not logged.
                if configured {
                    tracing::warn!(account = ?job.device.map(|d| d.account), reason, "push refused");
                }
                return ShardMetrics::inc(&stats.push_failed_total);
            }
            Verdict::Reauthenticate if !reauthenticated => {
                reauthenticated = true;
                if let Some(fcm) = &shared.providers.fcm {
                    fcm.forget_access_token().await;
                }
                0
            }
            Verdict::Reauthenticate | Verdict::Retry { .. } if retries >= shared.retries_max => {
                return ShardMetrics::inc(&stats.push_failed_total);
            }
            Verdict::Reauthenticate => shared.retry_backoff_ms,
            Verdict::Retry { after_ms } => {
                let backoff_ms = shared.retry_backoff_ms.saturating_mul(1 << retries);
                after_ms.unwrap_or(0).max(backoff_ms)
            }
        };
        retries += 1;
        ShardMetrics::inc(&stats.push_retried_total);
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    }
}

/// One try: build the request for the job's provider, send it, judge the answer.
async fn attempt(shared: &Shared, job: &PushJob) -> Verdict {
    let now_s = unix_now_s();
    let request = match job.provider {
        PushProvider::Apn => match &shared.providers.apns {
            Some(apns) => apns.request(job, now_s),
            None => return Verdict::Failed("APNs is not configured".into()),
        },
        PushProvider::Fcm => match &shared.providers.fcm {
            Some(fcm) => match fcm.access_token(&shared.http, now_s, shared.timeout).await {
                Ok(token) => fcm.request(job, &token),
                Err(error) => {
                    tracing::warn!(error, "no FCM access token");
                    return Verdict::Retry { after_ms: None };
                }
            },
            None => return Verdict::Failed("FCM is not configured".into()),
        },
    };
    let request = match request {
        Ok(request) => request,
        Err(error) => return Verdict::Failed(error),
    };
    let http = match (&job.provider, &shared.providers.apns) {
        (PushProvider::Apn, Some(apns)) => apns.client().unwrap_or(&shared.http),
        _ => &shared.http,
    };
    match client::send(http, request, shared.timeout).await {
        Ok(answer) => match job.provider {
            PushProvider::Apn => apns::judge(&answer),
            PushProvider::Fcm => fcm::judge(&answer),
        },
        Err(error) => {
            tracing::debug!(error, "push not delivered to the provider");
            Verdict::Retry { after_ms: None }
        }
    }
}

/// Hands a dead token back to the shard owning the device (a token pushed
/// for a verification session belongs to no device: nothing to remove).
fn report_dead(shared: &Shared, job: PushJob, invalidated_ms: Option<u64>) {
    let Some(device) = job.device else { return };
    let dead =
        DeadToken { device, token: job.token, invalidated_ms: invalidated_ms.unwrap_or(u64::MAX) };
    let mut ring = shared.dead_tokens[job.shard].lock().expect("never poisoned");
    if ring.push(dead).is_err() {
        ShardMetrics::inc(&shared.metrics[job.shard].push_dropped_total);
    }
}

fn unix_now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}
