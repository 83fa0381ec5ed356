//! Input files: pattern expansion with pruned walks, parallel streamed digests, stat cache.

/// The leading components of `pattern` that contain no wildcard (`a/b/*.rs` → `a/b`).
pub fn literal_prefix(pattern: &str) -> String {
    let mut parts = Vec::new();
    for part in pattern.split('/') {
        if part.contains(['*', '?', '[']) {
            break;
        }
        parts.push(part);
    }
    parts.join("/")
}
