//! What `/proc` says about a process (`"self"` or a pid): resident memory, CPU time, open
//! files. Soak and bench read it; nothing on the request path does.

/// A `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:` …), 0 when unreadable.
pub fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

pub fn open_fds(pid: &str) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// User + system CPU seconds the process (all its threads) has used.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

/// Write-family system calls (`write`, `writev`, `sendto` …) the process has made: `syscw`
/// of `/proc/<pid>/io`.
pub fn write_syscalls(pid: &str) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("syscw:"))?
        .trim()
        .parse()
        .ok()
}

/// The kernel's clock ticks per second for `/proc` times (USER_HZ: 100 on every Linux ABI
/// this runs on; `getconf CLK_TCK` says otherwise if ever needed).
fn clock_ticks() -> f64 {
    100.0
}

/// Resets the process's peak resident set (`VmHWM`), so a later peak is that of a phase;
/// false when the kernel refuses.
pub fn reset_peak_rss(pid: &str) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(status_kib("self", "VmRSS:") > 0);
        assert!(open_fds("self") > 0);
        let before = cpu_seconds("self").unwrap();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        let spent = cpu_seconds("self").unwrap() - before;
        assert!(spent > 0.1, "{spent}");
        assert!(cpu_seconds("999999999").is_none());

        let writes = write_syscalls("self").unwrap();
        use std::io::Write;
        let mut sink = std::fs::File::create("/dev/null").unwrap();
        for _ in 0..10 {
            sink.write_all(b"x").unwrap();
        }
        assert!(write_syscalls("self").unwrap() >= writes + 10);
    }
}
