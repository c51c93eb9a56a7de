//! One file per request kind. Each has the same shape: parse the request
//! into typed input (400 on failure), apply it to shard state, encode the
//! answer.

pub mod accounts;
pub mod challenge;
pub mod devices;
pub mod directory;
pub mod health;
pub mod keepalive;
pub mod link;
pub mod messages;
pub mod provisioning;
pub mod push_tokens;
pub mod receipts;
pub mod stories;
pub mod typing;
pub mod verification;
