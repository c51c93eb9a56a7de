//! Any bytes as an HTTP request head: parsing never panics and never
//! accepts a head longer than the limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard::config::Limits;
use switchboard::http::head::parse;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { header_bytes_max: 1024, header_count_max: 16, ..Limits::default() };
    if let Ok(Some((_, len))) = parse(data, &limits) {
        assert!(len <= limits.header_bytes_max && len <= data.len());
    }
});
