//! The envelope the codec benchmarks encode and decode: a 160-byte
//! ciphertext from a named sender, as stored and delivered.

use switchboard::protocol::base64;
use switchboard::protocol::envelope::Envelope;

/// The sample envelope.
pub fn envelope() -> Envelope {
    Envelope {
        kind: 1,
        source_uuid: Some("8c4a1b0e-5b7d-4c1e-9f3a-2d6e7f8a9b0c".into()),
        source_device: Some(1),
        timestamp: 1_700_000_000_000,
        server_timestamp: 1_700_000_000_001,
        content: base64::encode(&[7u8; 160]),
        server_guid: "1c4a1b0e-5b7d-4c1e-9f3a-2d6e7f8a9b0c".into(),
        destination_uuid: "2c4a1b0e-5b7d-4c1e-9f3a-2d6e7f8a9b0c".into(),
        urgent: true,
        story: false,
        server_delivered_timestamp: None,
    }
}
