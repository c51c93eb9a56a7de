//! simd-json's parse buffers, kept per thread (so per shard: a shard is one
//! thread) and reused by every decode on it instead of being allocated for
//! each frame and body.
//!
//! Invariants: a buffer is borrowed only for the length of one parse (the
//! tape a parse returns borrows the input, not the buffers), so decodes on
//! one thread never overlap in it; it grows to the largest input parsed on
//! the thread, which the frame and body limits bound.

use serde::de::DeserializeOwned;
use simd_json::{Buffers, Tape};
use std::cell::RefCell;

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Parses `text` in place into simd-json's tape with this thread's buffers.
pub fn to_tape(text: &mut [u8]) -> simd_json::Result<Tape<'_>> {
    BUFFERS.with_borrow_mut(|buffers| simd_json::to_tape_with_buffers(text, buffers))
}

/// Parses `body` in place into `T` with this thread's buffers.
pub fn from_slice<T: DeserializeOwned>(body: &mut [u8]) -> simd_json::Result<T> {
    BUFFERS.with_borrow_mut(|buffers| simd_json::serde::from_slice_with_buffers(body, buffers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_buffers_parse_one_input_after_another_of_any_size() {
        let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(10_000));
        for text in [r#"{"id":1}"#, long.as_str(), r#"[1,2,3]"#, r#"{"id":2}"#] {
            let mut bytes = text.as_bytes().to_vec();
            let tape = to_tape(&mut bytes).expect("valid JSON");
            assert!(tape.as_value().is_object() || tape.as_value().is_array());
        }
        let mut bad = b"{\"id\":".to_vec();
        assert!(to_tape(&mut bad).is_err());
        let mut good = br#"{"id":3}"#.to_vec();
        let value: serde_json::Value = from_slice(&mut good).expect("parses after an error");
        assert_eq!(value["id"], 3);
    }
}
