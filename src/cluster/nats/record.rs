//! A node's membership record and the names the buckets and keys use
//! (pure: no I/O, no clock).
//!
//! The record is stored as a small JSON object so an operator can read it
//! with `nats kv get` (`{"v":1,"id":..,"client_addr":..,"internal_addr":..}`);
//! it is written once per heartbeat, never on a message path, so its
//! encoding costs nothing that matters. When it was last written comes
//! from the server's timestamp on the KV entry, not from the node's clock,
//! so every reader judges every node by one clock.
//!
//! Invariants: a decoded record names the key it was read under; names and
//! addresses are bounded and printable, so a record from the network can
//! go straight into a log or a status line.

use serde::{Deserialize, Serialize};

/// The longest node id or cluster name, bytes.
pub const NAME_BYTES_MAX: usize = 64;

/// The longest advertised address (`host:port`), bytes: a full DNS name
/// plus a port.
pub const ADDR_BYTES_MAX: usize = 260;

/// The record format written by this build.
pub const RECORD_VERSION: u32 = 1;

/// A live node, as its membership key shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node's id (its key in the membership bucket).
    pub id: String,
    /// Where devices reach the node (`host:port`).
    pub client_addr: String,
    /// Where other nodes reach it (`host:port`, the internal listener).
    pub internal_addr: String,
    /// When its last heartbeat was stored, ms since the Unix epoch, by the
    /// NATS server's clock; 0 when the record has not been stored yet.
    pub last_seen_ms: u64,
}

/// The stored form of a record (the id is checked against the key).
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    v: u32,
    id: &'a str,
    client_addr: &'a str,
    internal_addr: &'a str,
}

impl NodeRecord {
    /// A record for node `id` at these addresses, checked.
    pub fn new(id: &str, client_addr: &str, internal_addr: &str) -> Result<Self, String> {
        check_key(id)?;
        check_addr(client_addr)?;
        check_addr(internal_addr)?;
        let (id, client_addr, internal_addr) =
            (id.to_string(), client_addr.to_string(), internal_addr.to_string());
        Ok(Self { id, client_addr, internal_addr, last_seen_ms: 0 })
    }

    /// The value stored under the node's key.
    pub fn encode(&self) -> Vec<u8> {
        let stored = Stored {
            v: RECORD_VERSION,
            id: &self.id,
            client_addr: &self.client_addr,
            internal_addr: &self.internal_addr,
        };
        serde_json::to_vec(&stored).expect("a struct of strings always serializes")
    }

    /// The record stored under `key`, last written at `last_seen_ms`.
    pub fn decode(key: &str, value: &[u8], last_seen_ms: u64) -> Result<Self, String> {
        let stored: Stored<'_> =
            serde_json::from_slice(value).map_err(|e| format!("node record {key}: {e}"))?;
        if stored.v != RECORD_VERSION {
            return Err(format!("node record {key}: format version {} unknown", stored.v));
        }
        if stored.id != key {
            return Err(format!("node record under {key} names node {:?}", stored.id));
        }
        let mut record = Self::new(stored.id, stored.client_addr, stored.internal_addr)
            .map_err(|e| format!("node record {key}: {e}"))?;
        record.last_seen_ms = last_seen_ms;
        Ok(record)
    }
}

/// A node id usable as a KV key and in a connection name: 1 to
/// [`NAME_BYTES_MAX`] of `A-Z a-z 0-9 - _`.
pub fn check_key(name: &str) -> Result<(), String> {
    check_name(name)
}

/// A cluster name usable in a bucket name (same alphabet as node ids).
pub fn check_bucket_part(name: &str) -> Result<(), String> {
    check_name(name)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > NAME_BYTES_MAX {
        return Err(format!("{name:?} must be 1 to {NAME_BYTES_MAX} bytes"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!("{name:?} may hold only A-Z, a-z, 0-9, '-' and '_'"));
    }
    Ok(())
}

/// An advertised address: 1 to [`ADDR_BYTES_MAX`] printable ASCII bytes,
/// no spaces.
pub fn check_addr(addr: &str) -> Result<(), String> {
    if addr.is_empty() || addr.len() > ADDR_BYTES_MAX {
        return Err(format!("address must be 1 to {ADDR_BYTES_MAX} bytes"));
    }
    if !addr.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("address {:?} must be printable ASCII without spaces", addr));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_with_the_server_time() {
        let record = NodeRecord::new("node-1", "10.0.0.1:443", "10.0.0.1:7000").unwrap();
        let decoded = NodeRecord::decode("node-1", &record.encode(), 1234).unwrap();
        assert_eq!(decoded, NodeRecord { last_seen_ms: 1234, ..record });
    }

    #[test]
    fn a_record_under_another_key_is_refused() {
        let record = NodeRecord::new("node-1", "a:1", "b:2").unwrap();
        let error = NodeRecord::decode("node-2", &record.encode(), 0).unwrap_err();
        assert!(error.contains("names node"), "{error}");
    }

    #[test]
    fn malformed_and_future_records_are_refused() {
        for value in [
            &b""[..],
            b"{}",
            b"[1]",
            b"\xff",
            br#"{"v":2,"id":"n","client_addr":"a:1","internal_addr":"b:2"}"#,
        ] {
            assert!(NodeRecord::decode("n", value, 0).is_err(), "{value:?}");
        }
        let spaced = br#"{"v":1,"id":"n","client_addr":"a 1","internal_addr":"b:2"}"#;
        assert!(NodeRecord::decode("n", spaced, 0).is_err());
    }

    #[test]
    fn names_are_bounded_and_plain() {
        assert!(check_key("node_1-A").is_ok());
        assert!(check_key(&"n".repeat(NAME_BYTES_MAX)).is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", "é", &"n".repeat(NAME_BYTES_MAX + 1)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
            assert!(check_bucket_part(bad).is_err(), "{bad:?}");
        }
        assert!(check_addr(&"a".repeat(ADDR_BYTES_MAX + 1)).is_err());
        assert!(check_addr("[::1]:443").is_ok());
    }
}
