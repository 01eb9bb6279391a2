//! Sync filters: uploaded once, then named by id in `/sync?filter=`.

pub(crate) mod create_filter;
pub(crate) mod get_filter;

/// Longest filter pattern looked at: event types are at most 255 bytes, so a longer pattern
/// could only match through a long run of `*`.
const MAX_PATTERN: usize = 1024;

/// An event type filter entry: `*` matches any run of characters. Matched without recursion
/// and in at most pattern x type steps, whatever a (stored, hostile) filter holds.
pub(crate) fn type_matches(pattern: &str, kind: &str) -> bool {
    if pattern.len() > MAX_PATTERN {
        return false;
    }
    // Byte-wise is exact for UTF-8: `*` never occurs inside a multi-byte character.
    let (pattern, kind) = (pattern.as_bytes(), kind.as_bytes());
    let (mut p, mut k) = (0, 0);
    // The last `*` seen and the position in `kind` it is currently taken to match up to.
    let mut star: Option<(usize, usize)> = None;
    while k < kind.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, k));
                p += 1;
            }
            Some(&c) if c == kind[k] => {
                p += 1;
                k += 1;
            }
            _ => match star {
                // Let the `*` swallow one more character and try again after it.
                Some((at, upto)) => {
                    star = Some((at, upto + 1));
                    p = at + 1;
                    k = upto + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_patterns() {
        for (pattern, matches) in [
            ("m.presence", true),
            ("*", true),
            ("m.*", true),
            ("*.presence", true),
            ("m.*ence", true),
            ("m.room.*", false),
            ("m.presenc", false),
            ("*x*", false),
            ("**m.presence**", true),
            ("m.*.*", false),
            ("*.*e", true),
        ] {
            assert_eq!(type_matches(pattern, "m.presence"), matches, "{pattern}");
        }
        // A hostile pattern neither recurses nor takes long.
        let hostile = format!("{}x", "*".repeat(100_000));
        assert!(!type_matches(&hostile, "m.presence"));
        let hostile = format!("{}x", "*a".repeat(500));
        assert!(!type_matches(&hostile, &"a".repeat(255)));
    }
}
