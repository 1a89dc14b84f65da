//! The agent's request routing and query parsing: the input is a request target
//! (`/path?query`) and then header lines. The path goes through `Route::parse` and, for a
//! secret, `secret_name`; the query through `parse_wait` and the AWS-compatible `parse`; the
//! headers through the token extraction. Also checks each function's contract.
#![no_main]

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sidekey_agent::server::routes::{parse_wait, secret_name, Route, MAX_WAIT};
use sidekey_agent::server::{aws_compat, token};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let target = lines.next().unwrap_or_default();
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    route(path);
    // As the server sees it: only what hyper accepts as a request target reaches routing.
    if let Ok(uri) = target.parse::<hyper::Uri>() {
        route(uri.path());
        let _ = parse_wait(uri.query());
    }

    if let Ok((_, timeout)) = parse_wait(query) {
        assert!(timeout <= MAX_WAIT);
    }
    if let Ok(q) = aws_compat::parse(query) {
        assert!(!q.secret_id.is_empty());
    }

    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.trim()), HeaderValue::try_from(value.trim())) {
            headers.append(name, value);
        }
    }
    for aws in [false, true] {
        if let Some(t) = token::presented(&headers, aws) {
            assert_eq!(t, t.trim());
        }
    }
});

fn route(path: &str) {
    let Some(route) = Route::parse(path) else {
        return;
    };
    let _ = (route.label(), route.method());
    let raw = match route {
        Route::Secret(raw) => {
            assert_eq!(path.strip_prefix("/v1/secrets/"), Some(raw));
            raw
        }
        Route::AwsCredentials(raw) => {
            assert_eq!(path.strip_prefix("/v1/aws-credentials/"), Some(raw));
            raw
        }
        _ => return,
    };
    if let Some(name) = secret_name(raw) {
        assert!(!name.is_empty() && !name.contains('/'));
        // Every `%` starts an escape of two hex digits.
        let bytes = raw.as_bytes();
        for (i, _) in raw.match_indices('%') {
            assert!(
                bytes
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
                "malformed escape accepted in {raw:?}"
            );
        }
        if !raw.contains('%') {
            assert_eq!(name, raw);
        }
    }
}
