use super::*;

const MAX: usize = 1024;

/// A client frame: header with `first` byte (FIN, RSV, opcode), masked.
fn client_frame_raw(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        out.push(mask_bit | payload.len() as u8);
    } else if payload.len() <= 65535 {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    }
    let mut body = payload.to_vec();
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
        for (index, byte) in body.iter_mut().enumerate() {
            *byte ^= mask[index % 4];
        }
    }
    out.extend_from_slice(&body);
    out
}

fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    client_frame_raw(if fin { 0x80 } else { 0 } | opcode, payload, Some([1, 0x80, 0x33, 0xfe]))
}

fn text_of(reader: &mut FrameReader, event: Event) -> String {
    match event {
        Event::Text(span) => String::from_utf8(reader.payload_mut(span).to_vec()).unwrap(),
        other => panic!("not text: {other:?}"),
    }
}

fn first_error(bytes: &[u8]) -> WsError {
    let mut reader = FrameReader::default();
    reader.feed(bytes);
    loop {
        match reader.next(MAX) {
            Err(error) => return error,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error in {bytes:?}"),
        }
    }
}

#[test]
fn whole_frames_are_read_in_place() {
    let mut reader = FrameReader::default();
    let mut bytes = client_frame(OPCODE_TEXT, true, b"{\"id\":1}");
    bytes.extend(client_frame(OPCODE_TEXT, true, &[b'x'; 300]));
    reader.feed(&bytes);
    let first = reader.next(MAX).unwrap().unwrap();
    assert_eq!(text_of(&mut reader, first), "{\"id\":1}");
    let second = reader.next(MAX).unwrap().unwrap();
    assert_eq!(text_of(&mut reader, second), "x".repeat(300));
    assert_eq!(reader.next(MAX), Ok(None));
    assert_eq!(reader.input.capacity(), 0, "a drained reader holds no buffer");
}

#[test]
fn frames_split_anywhere_are_reassembled() {
    let bytes = client_frame(OPCODE_TEXT, true, "héllo wörld, a longer text".as_bytes());
    for split in 0..bytes.len() {
        let mut reader = FrameReader::default();
        reader.feed(&bytes[..split]);
        assert_eq!(reader.next(MAX), Ok(None), "split at {split}");
        reader.feed(&bytes[split..]);
        let event = reader.next(MAX).unwrap().unwrap();
        assert_eq!(text_of(&mut reader, event), "héllo wörld, a longer text");
    }
}

#[test]
fn fragments_are_assembled_around_control_frames() {
    let mut reader = FrameReader::default();
    let mut bytes = client_frame(OPCODE_TEXT, false, b"hel");
    bytes.extend(client_frame(OPCODE_PING, true, b"p"));
    bytes.extend(client_frame(OPCODE_PONG, true, b""));
    bytes.extend(client_frame(0x0, false, b"lo "));
    bytes.extend(client_frame(0x0, true, b"there"));
    bytes.extend(client_frame(OPCODE_TEXT, true, b"next"));
    reader.feed(&bytes);
    let Some(Event::Ping(span)) = reader.next(MAX).unwrap() else { panic!("ping first") };
    assert_eq!(reader.payload_mut(span), b"p");
    let event = reader.next(MAX).unwrap().unwrap();
    assert_eq!(text_of(&mut reader, event), "hello there");
    let event = reader.next(MAX).unwrap().unwrap();
    assert_eq!(text_of(&mut reader, event), "next");
    assert_eq!(reader.message.capacity(), 0, "the assembled message is released");
}

#[test]
fn binary_messages_are_handed_out_whole_or_assembled_and_never_utf8_checked() {
    let mut reader = FrameReader::default();
    let mut bytes = client_frame(OPCODE_BINARY, true, &[0xff, 0x00]);
    bytes.extend(client_frame(OPCODE_BINARY, false, &[0xfe]));
    bytes.extend(client_frame(0x0, true, &[0xfd]));
    bytes.extend(client_frame(OPCODE_TEXT, true, b"after"));
    reader.feed(&bytes);
    let Some(Event::Binary(span)) = reader.next(MAX).unwrap() else { panic!("binary first") };
    assert_eq!(reader.payload_mut(span), [0xff, 0x00]);
    let Some(Event::Binary(span)) = reader.next(MAX).unwrap() else { panic!("assembled binary") };
    assert_eq!(reader.payload_mut(span), [0xfe, 0xfd]);
    let event = reader.next(MAX).unwrap().unwrap();
    assert_eq!(text_of(&mut reader, event), "after");
    let mut reader = FrameReader::default();
    let mut bytes = client_frame(OPCODE_BINARY, false, b"a");
    bytes.extend(client_frame(OPCODE_TEXT, true, b"b"));
    reader.feed(&bytes);
    assert!(matches!(reader.next(MAX), Err(WsError::Protocol(_))), "text inside a binary message");
}

#[test]
fn close_frames_carry_their_code() {
    let mut reader = FrameReader::default();
    reader.feed(&client_frame(OPCODE_CLOSE, true, &[0x03, 0xe8, b'b', b'y', b'e']));
    assert_eq!(reader.next(MAX), Ok(Some(Event::Close(Some(1000)))));
    reader.feed(&client_frame(OPCODE_CLOSE, true, b""));
    assert_eq!(reader.next(MAX), Ok(Some(Event::Close(None))));
}

#[test]
fn hostile_frames_are_refused_with_their_close_code() {
    let unmasked = client_frame_raw(0x80 | OPCODE_TEXT, b"hi", None);
    let rsv = client_frame_raw(0xC0 | OPCODE_TEXT, b"hi", Some([1, 2, 3, 4]));
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (unmasked, 1002),
        (rsv, 1002),
        (client_frame(0x3, true, b"x"), 1002),
        (client_frame(0xB, true, b"x"), 1002),
        (client_frame(OPCODE_TEXT, true, &[0xff, 0xfe]), 1007),
        (client_frame(OPCODE_PING, false, b""), 1002),
        (client_frame(OPCODE_PING, true, &[0; 126]), 1002),
        (client_frame(OPCODE_CLOSE, true, &[3]), 1002),
        (client_frame(OPCODE_CLOSE, true, &[0x03, 0xed]), 1002),
        (client_frame(OPCODE_CLOSE, true, &[0x03, 0xe8, 0xff]), 1007),
        (client_frame(0x0, true, b"orphan"), 1002),
        (
            [client_frame(OPCODE_TEXT, false, b"a"), client_frame(OPCODE_TEXT, true, b"b")]
                .concat(),
            1002,
        ),
        (
            [client_frame(OPCODE_TEXT, false, &[0xe2]), client_frame(0x0, true, &[0x28])].concat(),
            1007,
        ),
    ];
    for (bytes, code) in cases {
        assert_eq!(first_error(&bytes).close_code(), code, "{bytes:?}");
    }
}

#[test]
fn oversized_frames_are_refused_from_the_header_alone() {
    let bytes = client_frame(OPCODE_TEXT, true, &vec![b'a'; MAX + 1]);
    let mut reader = FrameReader::default();
    reader.feed(&bytes[..14]);
    assert_eq!(reader.next(MAX), Err(WsError::TooBig));
    let mut fragments = client_frame(OPCODE_TEXT, false, &vec![b'a'; MAX / 2 + 1]);
    fragments.extend(client_frame(0x0, true, &vec![b'a'; MAX / 2]));
    assert_eq!(first_error(&fragments), WsError::TooBig);
}

#[test]
fn server_frames_have_the_shortest_header() {
    for len in [0usize, 1, 125, 126, 65535, 65536, 70000] {
        let payload = vec![b'z'; len];
        let mut out = b"before".to_vec();
        write_frame(&mut out, OPCODE_TEXT, &payload);
        let mut cursor = Cursor::new(&out[6..]);
        let (header, parsed_len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert_eq!(parsed_len as usize, len);
        assert!(header.is_final && header.mask.is_none());
        assert_eq!(header.opcode, OpCode::Data(Data::Text));
        let header_len = cursor.position() as usize;
        assert_eq!(header_len, header.len(len as u64), "shortest header for {len}");
        assert_eq!(&out[6 + header_len..], &payload[..]);
        assert_eq!(&out[..6], b"before");
    }
}

#[test]
fn unmask_matches_the_byte_by_byte_definition() {
    let mask = [0x12, 0x34, 0x56, 0x78];
    for len in 0..40 {
        let original: Vec<u8> = (0..len as u8).map(|byte| byte.wrapping_mul(29)).collect();
        let mut fast = original.clone();
        unmask(&mut fast, mask);
        let slow: Vec<u8> =
            original.iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]).collect();
        assert_eq!(fast, slow, "length {len}");
    }
}
