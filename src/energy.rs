//! Energy counters for the cost report: the CPU package's RAPL counter under
//! /sys/class/powercap, when it is readable. Absent counters are reported as absent, never as 0.
//! (The GPU's NVML energy counter is not read yet: issue #4.)

/// A reading of the RAPL package counter.
#[derive(Clone, Copy, Debug)]
pub struct RaplReading {
    uj: u64,
    range_uj: u64,
}

const RAPL: &str = "/sys/class/powercap/intel-rapl:0";

/// The package energy counter now, if readable.
pub fn rapl_now() -> Option<RaplReading> {
    let read = |f: &str| {
        std::fs::read_to_string(format!("{RAPL}/{f}"))
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    };
    Some(RaplReading {
        uj: read("energy_uj")?,
        range_uj: read("max_energy_range_uj").unwrap_or(u64::MAX),
    })
}

/// Joules since `start` (handles one wrap of the counter).
pub fn rapl_joules_since(start: RaplReading) -> Option<f64> {
    let now = rapl_now()?;
    let uj = if now.uj >= start.uj {
        now.uj - start.uj
    } else {
        start.range_uj - start.uj + now.uj
    };
    Some(uj as f64 / 1e6)
}
