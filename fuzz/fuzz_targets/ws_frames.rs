//! Any bytes, fed in two pieces at any split, as what a WebSocket client
//! sent: the frame reader never panics, hands out only UTF-8 text within
//! the limit, and reads the same events whatever the split.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard::protocol::ws_frames::{Event, FrameReader, WsError};

const FRAME_BYTES_MAX: usize = 4096;

fn events(pieces: &[&[u8]]) -> (Vec<(u8, Vec<u8>)>, Option<WsError>) {
    let mut reader = FrameReader::default();
    let mut seen = Vec::new();
    for piece in pieces {
        reader.feed(piece);
        loop {
            match reader.next(FRAME_BYTES_MAX) {
                Ok(None) => break,
                Ok(Some(Event::Text(span))) => {
                    let text = reader.payload_mut(span).to_vec();
                    assert!(text.len() <= FRAME_BYTES_MAX && std::str::from_utf8(&text).is_ok());
                    seen.push((1, text));
                }
                Ok(Some(Event::Ping(span))) => seen.push((9, reader.payload_mut(span).to_vec())),
                Ok(Some(Event::Close(code))) => seen.push((8, code.unwrap_or(0).to_be_bytes().to_vec())),
                Err(error) => return (seen, Some(error)),
            }
        }
    }
    (seen, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let split = usize::from(split).min(data.len());
    let whole = events(&[data]);
    let pieces = events(&[&data[..split], &data[split..]]);
    assert_eq!(whole, pieces);
});
