//! `/metrics` parses as the Prometheus text exposition with a real parser
//! (`prometheus-parse`), after traffic: every counter and gauge has a
//! value per shard, and every histogram is well formed (its `+Inf` bucket
//! equals its count, buckets never decrease) and counted what it should.

mod common;
#[path = "common/messaging.rs"]
mod messaging;

use common::Server;
use messaging::{drain_backlog, send_one};
use prometheus_parse::{Scrape, Value};
use std::collections::BTreeMap;

fn scrape(server: &Server) -> Scrape {
    let (status, body) = server.admin_get("/metrics");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("the exposition parses")
}

/// Per histogram name: the summed `+Inf` count over the shards.
fn histogram_counts(scrape: &Scrape) -> BTreeMap<String, f64> {
    let mut counts = BTreeMap::new();
    for sample in &scrape.samples {
        if let Value::Histogram(buckets) = &sample.value {
            let mut last = 0.0;
            for bucket in buckets {
                assert!(bucket.count >= last, "{} buckets decrease", sample.metric);
                last = bucket.count;
            }
            let infinite = buckets.iter().find(|b| b.less_than.is_infinite()).expect("+Inf");
            *counts.entry(sample.metric.clone()).or_insert(0.0) += infinite.count;
        }
    }
    counts
}

#[test]
fn the_exposition_parses_and_the_histograms_count_the_traffic() {
    let server = Server::start();
    let (sender, recipient) = (server.register(), server.register());
    for timestamp in 0..5 {
        send_one(&server, &sender, &recipient, b"m", timestamp);
    }
    let mut ws = server.connect(&recipient).unwrap();
    assert_eq!(drain_backlog(&mut ws).len(), 5);
    let scrape = scrape(&server);
    let requests: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "switchboard_requests_total")
        .map(|s| match s.value {
            Value::Counter(value) => value,
            ref other => panic!("requests_total is {other:?}"),
        })
        .sum();
    assert!(requests >= 7.0, "2 registrations and 5 sends: {requests}");
    for sample in scrape.samples.iter().filter(|s| s.metric == "switchboard_websockets_open") {
        assert!(matches!(sample.value, Value::Gauge(_)), "{sample:?}");
    }
    let counts = histogram_counts(&scrape);
    assert_eq!(counts["switchboard_send_request_seconds"], 5.0);
    assert!(counts["switchboard_request_seconds"] >= 7.0);
    assert_eq!(counts["switchboard_deliver_seconds"], 5.0);
    assert!(counts["switchboard_writer_batch_jobs"] >= 1.0);
    assert!(counts["switchboard_writer_write_seconds"] >= 1.0);
    assert_eq!(counts["switchboard_push_send_seconds"], 0.0);
    assert!(scrape.docs.contains_key("switchboard_deliver_seconds"), "HELP lines parsed");
}
