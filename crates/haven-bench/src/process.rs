//! The operator process's memory and CPU, from /proc.

use anyhow::{Context, anyhow};

/// One reading of a process's counters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time so far, in seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size (VmHWM), in KiB.
    pub peak_rss_kib: u64,
    /// Resident set size now (VmRSS), in KiB.
    pub rss_kib: u64,
}

pub fn read(pid: u32) -> anyhow::Result<ProcessStats> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid}"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse(&stat, &status, clock_ticks())
}

fn parse(stat: &str, status: &str, ticks_per_second: f64) -> anyhow::Result<ProcessStats> {
    // Fields after the command name, which is in parentheses and may itself contain spaces:
    // the 1st is field 3 (state), so utime (14) and stime (15) are the 12th and 13th.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| anyhow!("odd /proc stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).ok_or_else(|| anyhow!("short /proc stat"))?.parse::<f64>()?)
    };
    let cpu_seconds = (ticks(11)? + ticks(12)?) / ticks_per_second;
    let kib = |key: &str| -> anyhow::Result<u64> {
        let line =
            status.lines().find(|l| l.starts_with(key)).ok_or_else(|| anyhow!("no {key} in status"))?;
        Ok(line.trim_start_matches(key).trim().trim_end_matches("kB").trim().parse()?)
    };
    Ok(ProcessStats { cpu_seconds, peak_rss_kib: kib("VmHWM:")?, rss_kib: kib("VmRSS:")? })
}

/// `getconf CLK_TCK` (100 on every Linux this runs on, but asked rather than assumed).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_peak_memory_come_from_stat_and_status() {
        let stat = "4242 (haven run) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        let status = "Name:\thaven\nVmHWM:\t   81920 kB\nVmRSS:\t   40960 kB\n";
        let stats = parse(stat, status, 100.0).expect("parses");
        assert_eq!(stats, ProcessStats { cpu_seconds: 3.0, peak_rss_kib: 81_920, rss_kib: 40_960 });
    }
}
