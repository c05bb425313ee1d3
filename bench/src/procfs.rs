//! What the bench reads about processes from `/proc` (Linux only): CPU time, resident memory,
//! open descriptors, and the machine's load; plus raising the descriptor limit.

use std::io;
use std::time::Duration;

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&stat)
        .ok_or_else(|| io::Error::other(format!("unreadable /proc/{pid}/stat")))?;
    Ok(ticks_to_duration(ticks))
}

/// CPU time of this process (the load generator itself).
pub fn own_cpu_time() -> io::Result<Duration> {
    cpu_time(std::process::id())
}

/// `utime + stime` in clock ticks. The command name (field 2) may hold spaces and parentheses,
/// so fields are counted after the last `)`: there field 3 (`state`) comes first, which puts
/// `utime` (field 14) at index 11 and `stime` (field 15) at index 12.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second)
        .ok()
        .filter(|&t| t > 0)
        .unwrap_or(100);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second)
}

/// The machine's CPU time so far, summed over all cores, from one read of `/proc/stat`'s
/// `cpu` line: busy (everything but idle and I/O wait: the server, the bench, PostgreSQL and
/// anything else), and, part of it, stolen (time the hypervisor gave to other guests while
/// this machine wanted it).
pub fn machine_cpu() -> io::Result<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let unreadable = || io::Error::other("unreadable /proc/stat");
    let busy = parse_machine_busy(&stat).ok_or_else(unreadable)?;
    let steal = parse_field(&stat, 7).ok_or_else(unreadable)?;
    Ok((ticks_to_duration(busy), ticks_to_duration(steal)))
}

/// The numbers of the `cpu` line.
fn cpu_fields(stat: &str) -> Option<Vec<u64>> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    line.split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect()
}

/// Field `index` (from 0) of the `cpu` line; steal is index 7.
fn parse_field(stat: &str, index: usize) -> Option<u64> {
    cpu_fields(stat)?.get(index).copied()
}

/// Sum of the `cpu` line's fields except idle (4th) and iowait (5th); guest time is already
/// inside user time, so the two guest fields are left out too.
fn parse_machine_busy(stat: &str) -> Option<u64> {
    let fields = cpu_fields(stat)?;
    let busy = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i, 3 | 4 | 8 | 9))
        .map(|(_, v)| v)
        .sum();
    Some(busy)
}

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// Peak resident set size so far (`VmHWM`), in KiB.
    pub peak_kib: u64,
}

/// Reads a process's current and peak resident memory.
pub fn memory(pid: u32) -> io::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status(&status).ok_or_else(|| io::Error::other(format!("unreadable /proc/{pid}/status")))
}

fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// Number of open file descriptors of a process.
pub fn open_fds(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// Raises the soft limit on open files to the hard limit and returns the new soft limit.
/// Child processes (the server) inherit it.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// A short description of the machine: cores, memory, kernel.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            line["MemTotal:".len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    format!(
        "{cores} cores, {:.1} GiB memory, Linux {kernel}",
        mem_kib as f64 / (1024.0 * 1024.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (tap (line) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 9 0 \
                    12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn machine_busy_leaves_out_idle_iowait_and_guest() {
        let stat = "cpu  100 5 50 1000 40 3 2 1 7 0\ncpu0 50 2 25 500 20 1 1 0 0 0\n";
        assert_eq!(parse_machine_busy(stat), Some(161));
        assert_eq!(parse_field(stat, 7), Some(1), "steal is the 8th field");
    }

    #[test]
    fn status_gives_rss_and_peak() {
        let status = "Name:\ttapline-server\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 40960,
                peak_kib: 51200
            })
        );
    }

    #[test]
    fn this_process_can_be_read() {
        let me = std::process::id();
        assert!(memory(me).unwrap().rss_kib > 0);
        cpu_time(me).unwrap();
        assert!(open_fds(me).unwrap() > 0);
    }
}
