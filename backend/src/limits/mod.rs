//! Bounds on what one client, one account or the whole process may use: password hashing
//! slots, request-rate throttles and the client address they are keyed on.
pub mod client_ip;
pub mod hashing;
pub mod throttle;
/// The container's memory limit in bytes, from cgroup v2 (`/sys/fs/cgroup/memory.max`) or v1
/// (`/sys/fs/cgroup/memory/memory.limit_in_bytes`); `None` without a limit (`max`, or v1's
/// "unlimited" value near 2^63) or outside a container.
pub fn cgroup_memory_limit() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let parse = |raw: String| -> Option<u64> {
        let n = raw.trim().parse::<u64>().ok()?;
        // v1 reports "no limit" as a page-rounded i64::MAX.
        (n > 0 && n < (1 << 60)).then_some(n)
    };
    read("/sys/fs/cgroup/memory.max")
        .and_then(parse)
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes").and_then(parse))
}
