//! Bearer-token authentication, shared by both receivers: the
//! `Authorization` header (gRPC metadata `authorization`) must be
//! `Bearer <token>` with the configured token.

/// Whether a request with this `Authorization` value may pass. With no token
/// configured every request passes. The scheme is matched without regard to
/// case (RFC 9110); the token is compared in constant time, so the time a
/// refusal takes tells nothing about how much of a guess was right.
pub(crate) fn authorized(expected: Option<&str>, header: Option<&[u8]>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let Some(header) = header else {
        return false;
    };
    let Some((scheme, token)) = split_once(header, b' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case(b"bearer") && constant_time_eq(token.trim_ascii(), expected.as_bytes())
}

fn split_once(bytes: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == separator)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

/// Equal bytes, in time that depends only on the lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_configured_token_everything_passes() {
        assert!(authorized(None, None));
        assert!(authorized(None, Some(b"Bearer whatever")));
    }

    #[test]
    fn only_the_right_bearer_token_passes() {
        let token = Some("s3cret");
        assert!(authorized(token, Some(b"Bearer s3cret")));
        assert!(authorized(token, Some(b"bearer  s3cret ")));
        assert!(!authorized(token, None));
        assert!(!authorized(token, Some(b"Bearer s3cre")));
        assert!(!authorized(token, Some(b"Bearer s3cret2")));
        assert!(!authorized(token, Some(b"Basic s3cret")));
        assert!(!authorized(token, Some(b"s3cret")));
    }
}
