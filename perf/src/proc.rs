//! What the kernel says about processes and UDP: CPU time from `/proc/<pid>/stat`, the UDP
//! counters of `/proc/net/snmp`.

use std::collections::HashMap;
use std::path::Path;

/// Clock ticks per second of the times in `/proc/*/stat` (USER_HZ: 100 on Linux, whatever
/// the kernel's HZ).
const USER_HZ: f64 = 100.0;

/// utime + stime in seconds from a `stat` file (a process's or a thread's).
pub fn stat_cpu_s(path: &Path) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    parse_stat(&s).map(|st| st.cpu_s)
}

/// What this module reads from a `stat` line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    ppid: u32,
    state: char,
    /// utime + stime
    cpu_s: f64,
    /// cutime + cstime: children waited for
    children_cpu_s: f64,
}

/// Parses a `stat` line. The command name may hold spaces and parentheses: fields are
/// counted after the last ')'.
fn parse_stat(s: &str) -> Option<Stat> {
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17
    let num = |i: usize| -> Option<u64> { f.get(i)?.parse().ok() };
    Some(Stat {
        ppid: f.get(1)?.parse().ok()?,
        state: f.first()?.chars().next()?,
        cpu_s: (num(11)? + num(12)?) as f64 / USER_HZ,
        children_cpu_s: (num(13)? + num(14)?) as f64 / USER_HZ,
    })
}

/// The state letter of a process (R, S, D, Z...), None when it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&s).map(|st| st.state)
}

/// CPU seconds of a process including the children it has waited for (for a zombie: all
/// it ever used, its reaped children included).
pub fn zombie_cpu_s(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&s).map(|st| st.cpu_s + st.children_cpu_s)
}

/// CPU seconds of one process (all its threads).
pub fn pid_cpu_s(pid: u32) -> Option<f64> {
    stat_cpu_s(Path::new(&format!("/proc/{pid}/stat")))
}

/// CPU seconds of a process (with the children it has waited for) and all its live
/// descendants (pmacct's plugins are child processes of the daemon).
pub fn tree_cpu_s(pid: u32) -> Option<f64> {
    let mut parent: HashMap<u32, (u32, f64)> = HashMap::new();
    let dir = std::fs::read_dir("/proc").ok()?;
    for e in dir.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(s) = std::fs::read_to_string(e.path().join("stat")) {
            if let Some(st) = parse_stat(&s) {
                let cpu = if p == pid {
                    st.cpu_s + st.children_cpu_s
                } else {
                    st.cpu_s
                };
                parent.insert(p, (st.ppid, cpu));
            }
        }
    }
    let own = parent.get(&pid)?.1;
    let mut total = own;
    for (&p, &(_, cpu)) in &parent {
        if p == pid {
            continue;
        }
        // walk up (bounded: process trees are shallow)
        let mut q = p;
        for _ in 0..64 {
            match parent.get(&q) {
                Some(&(pp, _)) if pp == pid => {
                    total += cpu;
                    break;
                }
                Some(&(pp, _)) if pp > 1 => q = pp,
                _ => break,
            }
        }
    }
    Some(total)
}

/// The kernel's UDP counters (IPv4, `/proc/net/snmp`), all since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UdpCounters {
    pub in_datagrams: u64,
    pub no_ports: u64,
    pub in_errors: u64,
    pub rcvbuf_errors: u64,
}

impl UdpCounters {
    pub fn read() -> UdpCounters {
        std::fs::read_to_string("/proc/net/snmp")
            .map(|s| Self::parse(&s))
            .unwrap_or_default()
    }

    pub fn parse(snmp: &str) -> UdpCounters {
        let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
        let (Some(h), Some(v)) = (lines.next(), lines.next()) else {
            return UdpCounters::default();
        };
        let get = |name: &str| -> u64 {
            h.split_whitespace()
                .position(|x| x == name)
                .and_then(|i| v.split_whitespace().nth(i))
                .and_then(|x| x.parse().ok())
                .unwrap_or(0)
        };
        UdpCounters {
            in_datagrams: get("InDatagrams"),
            no_ports: get("NoPorts"),
            in_errors: get("InErrors"),
            rcvbuf_errors: get("RcvbufErrors"),
        }
    }

    /// `self - before`, counter by counter.
    pub fn since(&self, before: &UdpCounters) -> UdpCounters {
        UdpCounters {
            in_datagrams: self.in_datagrams.saturating_sub(before.in_datagrams),
            no_ports: self.no_ports.saturating_sub(before.no_ports),
            in_errors: self.in_errors.saturating_sub(before.in_errors),
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(before.rcvbuf_errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_the_name() {
        let s =
            "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        assert_eq!(
            parse_stat(s),
            Some(Stat {
                ppid: 1,
                state: 'S',
                cpu_s: 3.0,
                children_cpu_s: 0.0
            })
        );
        assert!(process_state(std::process::id()).is_some_and(|c| "RSD".contains(c)));
    }

    #[test]
    fn own_process_and_thread() {
        assert!(pid_cpu_s(std::process::id()).is_some());
        assert!(stat_cpu_s(Path::new("/proc/thread-self/stat")).is_some());
        // the process's own time first: the tree (read after) includes it and can only be more
        let own = pid_cpu_s(std::process::id()).unwrap();
        assert!(tree_cpu_s(std::process::id()).unwrap() >= own);
    }

    #[test]
    fn snmp_udp_lines() {
        let s = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                 Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n\
                 Udp: 100 2 7 90 5 0 0 0 0\n\
                 UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n\
                 UdpLite: 0 0 0 0 0 0 0 0 0\n";
        let c = UdpCounters::parse(s);
        assert_eq!(
            c,
            UdpCounters {
                in_datagrams: 100,
                no_ports: 2,
                in_errors: 7,
                rcvbuf_errors: 5
            }
        );
        assert_eq!(c.since(&c), UdpCounters::default());
    }
}
