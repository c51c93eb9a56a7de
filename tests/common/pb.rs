//! A protobuf client for the tests that shares nothing with the server's
//! codec (`switchboard::protocol::proto`): varints, keys and
//! length-delimited fields written and read by hand from the field numbers
//! of `proto/*.proto`, and a WebSocket client speaking Signal's binary
//! framing over tungstenite.
//!
//! Decoding is strict where the server's output must be well formed (a
//! truncated field or an unknown wire type is an error) and records every
//! field number an `Envelope` carried, so a test can check that retired
//! numbers are never written.
#![allow(dead_code)]

/// `WebSocketMessage.Type`.
pub const TYPE_UNKNOWN: u64 = 0;
pub const TYPE_REQUEST: u64 = 1;
pub const TYPE_RESPONSE: u64 = 2;

/// `Envelope.Type` in Signal's numbering.
pub const CIPHERTEXT: u64 = 1;
pub const PREKEY_BUNDLE: u64 = 3;
pub const SERVER_DELIVERY_RECEIPT: u64 = 5;
pub const UNIDENTIFIED_SENDER: u64 = 6;
pub const PLAINTEXT_CONTENT: u64 = 8;

// ---------------------------------------------------------------------------
// The wire format

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

/// A varint field (uint32, uint64, bool, enum).
pub fn put_uint(out: &mut Vec<u8>, field: u32, value: u64) {
    put_key(out, field, 0);
    put_varint(out, value);
}

/// A length-delimited field (string, bytes, embedded message).
pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One field's value as it was on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Varint(u64),
    Fixed64(u64),
    Bytes(Vec<u8>),
    Fixed32(u32),
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, len: u64) -> Result<&'a [u8], String> {
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| pos.checked_add(len))
        .filter(|&end| end <= bytes.len())
        .ok_or("truncated field")?;
    let slice = &bytes[*pos..end];
    *pos = end;
    Ok(slice)
}

/// Every field of one message in wire order: (field number, value).
pub fn fields(bytes: &[u8]) -> Result<Vec<(u32, Value)>, String> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let key = get_varint(bytes, &mut pos)?;
        let field = u32::try_from(key >> 3).map_err(|_| "field number too large")?;
        if field == 0 {
            return Err("field number 0".into());
        }
        let value = match key & 7 {
            0 => Value::Varint(get_varint(bytes, &mut pos)?),
            1 => Value::Fixed64(u64::from_le_bytes(take(bytes, &mut pos, 8)?.try_into().unwrap())),
            2 => {
                let len = get_varint(bytes, &mut pos)?;
                Value::Bytes(take(bytes, &mut pos, len)?.to_vec())
            }
            5 => Value::Fixed32(u32::from_le_bytes(take(bytes, &mut pos, 4)?.try_into().unwrap())),
            wire_type => return Err(format!("wire type {wire_type}")),
        };
        out.push((field, value));
    }
    Ok(out)
}

fn uint(field: u32, value: Value) -> Result<u64, String> {
    match value {
        Value::Varint(value) => Ok(value),
        other => Err(format!("field {field}: expected a varint, got {other:?}")),
    }
}

fn bytes(field: u32, value: Value) -> Result<Vec<u8>, String> {
    match value {
        Value::Bytes(bytes) => Ok(bytes),
        other => Err(format!("field {field}: expected bytes, got {other:?}")),
    }
}

fn string(field: u32, value: Value) -> Result<String, String> {
    String::from_utf8(bytes(field, value)?).map_err(|_| format!("field {field}: not UTF-8"))
}

// ---------------------------------------------------------------------------
// WebSocketResources.proto

/// `WebSocketRequestMessage`; `None` is an absent field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub verb: Option<String>,
    pub path: Option<String>,
    pub body: Option<Vec<u8>>,
    pub id: Option<u64>,
    pub headers: Vec<String>,
}

impl Request {
    pub fn new(id: u64, verb: &str, path: &str, body: Option<&[u8]>) -> Self {
        Self {
            verb: Some(verb.into()),
            path: Some(path.into()),
            body: body.map(<[u8]>::to_vec),
            id: Some(id),
            headers: vec![],
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.verb.iter().for_each(|verb| put_bytes(&mut out, 1, verb.as_bytes()));
        self.path.iter().for_each(|path| put_bytes(&mut out, 2, path.as_bytes()));
        self.body.iter().for_each(|body| put_bytes(&mut out, 3, body));
        self.id.iter().for_each(|&id| put_uint(&mut out, 4, id));
        self.headers.iter().for_each(|header| put_bytes(&mut out, 5, header.as_bytes()));
        out
    }

    pub fn decode(wire: &[u8]) -> Result<Self, String> {
        let mut request = Self::default();
        for (field, value) in fields(wire)? {
            match field {
                1 => request.verb = Some(string(field, value)?),
                2 => request.path = Some(string(field, value)?),
                3 => request.body = Some(bytes(field, value)?),
                4 => request.id = Some(uint(field, value)?),
                5 => request.headers.push(string(field, value)?),
                _ => return Err(format!("WebSocketRequestMessage has no field {field}")),
            }
        }
        Ok(request)
    }

    /// The value of header `name` (case-insensitive), written `Name:value`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|header| {
            let (field, value) = header.split_once(':')?;
            field.eq_ignore_ascii_case(name).then_some(value)
        })
    }
}

/// `WebSocketResponseMessage`; `None` is an absent field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub id: Option<u64>,
    pub status: Option<u32>,
    pub message: Option<String>,
    pub body: Option<Vec<u8>>,
    pub headers: Vec<String>,
}

impl Response {
    pub fn new(id: u64, status: u32) -> Self {
        Self { id: Some(id), status: Some(status), message: Some("OK".into()), ..Self::default() }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.id.iter().for_each(|&id| put_uint(&mut out, 1, id));
        self.status.iter().for_each(|&status| put_uint(&mut out, 2, u64::from(status)));
        self.message.iter().for_each(|message| put_bytes(&mut out, 3, message.as_bytes()));
        self.body.iter().for_each(|body| put_bytes(&mut out, 4, body));
        self.headers.iter().for_each(|header| put_bytes(&mut out, 5, header.as_bytes()));
        out
    }

    pub fn decode(wire: &[u8]) -> Result<Self, String> {
        let mut response = Self::default();
        for (field, value) in fields(wire)? {
            match field {
                1 => response.id = Some(uint(field, value)?),
                2 => {
                    let status = uint(field, value)?;
                    response.status = Some(u32::try_from(status).map_err(|_| "status > u32")?);
                }
                3 => response.message = Some(string(field, value)?),
                4 => response.body = Some(bytes(field, value)?),
                5 => response.headers.push(string(field, value)?),
                _ => return Err(format!("WebSocketResponseMessage has no field {field}")),
            }
        }
        Ok(response)
    }

    /// The body parsed as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        let body = self.body.as_deref().unwrap_or_default();
        serde_json::from_slice(body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(body)))
    }
}

/// `WebSocketMessage`; `None` is an absent field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WsMessage {
    pub kind: Option<u64>,
    pub request: Option<Request>,
    pub response: Option<Response>,
}

impl WsMessage {
    pub fn request(request: Request) -> Self {
        Self { kind: Some(TYPE_REQUEST), request: Some(request), response: None }
    }

    pub fn response(response: Response) -> Self {
        Self { kind: Some(TYPE_RESPONSE), request: None, response: Some(response) }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.kind.iter().for_each(|&kind| put_uint(&mut out, 1, kind));
        self.request.iter().for_each(|request| put_bytes(&mut out, 2, &request.encode()));
        self.response.iter().for_each(|response| put_bytes(&mut out, 3, &response.encode()));
        out
    }

    pub fn decode(wire: &[u8]) -> Result<Self, String> {
        let mut message = Self::default();
        for (field, value) in fields(wire)? {
            match field {
                1 => message.kind = Some(uint(field, value)?),
                2 => message.request = Some(Request::decode(&bytes(field, value)?)?),
                3 => message.response = Some(Response::decode(&bytes(field, value)?)?),
                _ => return Err(format!("WebSocketMessage has no field {field}")),
            }
        }
        Ok(message)
    }
}

// ---------------------------------------------------------------------------
// SignalService.proto and Provisioning.proto

/// `Envelope` as received; `None` is an absent field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    pub kind: Option<u64>,
    pub client_timestamp: Option<u64>,
    pub source_device: Option<u64>,
    pub content: Option<Vec<u8>>,
    pub server_timestamp: Option<u64>,
    pub ephemeral: Option<bool>,
    pub urgent: Option<bool>,
    pub story: Option<bool>,
    pub source_service_id: Option<Vec<u8>>,
    pub destination_service_id: Option<Vec<u8>>,
    pub server_guid: Option<Vec<u8>>,
    /// Every field number on the wire, in order (unknown ones included).
    pub field_numbers: Vec<u32>,
}

impl Envelope {
    pub fn decode(wire: &[u8]) -> Result<Self, String> {
        let mut envelope = Self::default();
        for (field, value) in fields(wire)? {
            envelope.field_numbers.push(field);
            let flag = |value| uint(field, value).map(|v| v != 0);
            match field {
                1 => envelope.kind = Some(uint(field, value)?),
                5 => envelope.client_timestamp = Some(uint(field, value)?),
                7 => envelope.source_device = Some(uint(field, value)?),
                8 => envelope.content = Some(bytes(field, value)?),
                10 => envelope.server_timestamp = Some(uint(field, value)?),
                12 => envelope.ephemeral = Some(flag(value)?),
                14 => envelope.urgent = Some(flag(value)?),
                16 => envelope.story = Some(flag(value)?),
                19 => envelope.source_service_id = Some(bytes(field, value)?),
                20 => envelope.destination_service_id = Some(bytes(field, value)?),
                21 => envelope.server_guid = Some(bytes(field, value)?),
                _ => {}
            }
        }
        Ok(envelope)
    }

    /// `urgent` with proto2's declared default (true).
    pub fn is_urgent(&self) -> bool {
        self.urgent.unwrap_or(true)
    }
}

/// The `address` of a `ProvisioningAddress`.
pub fn provisioning_address(wire: &[u8]) -> Result<String, String> {
    let mut address = None;
    for (field, value) in fields(wire)? {
        match field {
            1 => address = Some(string(field, value)?),
            _ => return Err(format!("ProvisioningAddress has no field {field}")),
        }
    }
    address.ok_or_else(|| "no address".into())
}
