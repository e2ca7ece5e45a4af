//! Energy counters for the cost report: the CPU package's RAPL counter under
//! /sys/class/powercap, and the GPU's total-energy counter through NVML (libnvidia-ml, loaded
//! at run time like CUDA itself, so hyflow runs where it is absent). Absent counters are
//! reported as absent, never as 0.
//!
//! Both counters are whole-device: they include whatever else ran on the CPU package or the GPU
//! during the run. NVML device N is taken to be CUDA device N (true with one GPU; on several,
//! set `CUDA_DEVICE_ORDER=PCI_BUS_ID` so that CUDA numbers devices as NVML does).

use std::ffi::{c_int, c_uint, c_ulonglong, c_void};

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

type NvmlInit = unsafe extern "C" fn() -> c_int;
type NvmlHandle = unsafe extern "C" fn(c_uint, *mut *mut c_void) -> c_int;
type NvmlEnergy = unsafe extern "C" fn(*mut c_void, *mut c_ulonglong) -> c_int;

/// A GPU's NVML energy counter, read at the start of a run.
pub struct GpuMeter {
    lib: libloading::Library,
    device: *mut c_void,
    start_mj: u64,
    /// The CUDA ordinal it measures.
    pub ordinal: u32,
}

// SAFETY: an NVML device handle is a process-wide identifier; NVML is thread-safe.
unsafe impl Send for GpuMeter {}
unsafe impl Sync for GpuMeter {}

impl GpuMeter {
    /// Opens NVML and reads GPU `ordinal`'s counter; `Err` says why it is absent.
    pub fn start(ordinal: u32) -> Result<Self, String> {
        // SAFETY: loading NVML runs its initialisers, which have no preconditions.
        let lib = unsafe { libloading::Library::new("libnvidia-ml.so.1") }
            .map_err(|_| "NVML (libnvidia-ml.so.1) not found".to_string())?;
        // SAFETY: the symbols have these C signatures in nvml.h (NVML 11 and later).
        let device = unsafe {
            let init: libloading::Symbol<NvmlInit> =
                lib.get(b"nvmlInit_v2\0").map_err(|e| e.to_string())?;
            let handle: libloading::Symbol<NvmlHandle> = lib
                .get(b"nvmlDeviceGetHandleByIndex_v2\0")
                .map_err(|e| e.to_string())?;
            let rc = init();
            if rc != 0 {
                return Err(format!("nvmlInit failed ({rc})"));
            }
            let mut device = std::ptr::null_mut();
            let rc = handle(ordinal, &mut device);
            if rc != 0 {
                return Err(format!("NVML has no device {ordinal} ({rc})"));
            }
            device
        };
        let mut meter = Self {
            lib,
            device,
            start_mj: 0,
            ordinal,
        };
        meter.start_mj = meter.read_mj()?;
        Ok(meter)
    }

    /// The counter now, in millijoules since the driver loaded.
    fn read_mj(&self) -> Result<u64, String> {
        // SAFETY: as in `start`; `device` came from NVML.
        unsafe {
            let energy: libloading::Symbol<NvmlEnergy> = self
                .lib
                .get(b"nvmlDeviceGetTotalEnergyConsumption\0")
                .map_err(|e| e.to_string())?;
            let mut mj: c_ulonglong = 0;
            match energy(self.device, &mut mj) {
                0 => Ok(mj),
                3 => Err("this GPU has no energy counter (NVML: not supported)".into()),
                rc => Err(format!("reading the GPU energy counter failed ({rc})")),
            }
        }
    }

    /// Joules since [`Self::start`].
    pub fn joules(&self) -> Result<f64, String> {
        Ok(self.read_mj()?.saturating_sub(self.start_mj) as f64 / 1e3)
    }
}

impl Drop for GpuMeter {
    fn drop(&mut self) {
        // SAFETY: pairs the nvmlInit of `start` (NVML counts them).
        unsafe {
            if let Ok(shutdown) = self.lib.get::<NvmlInit>(b"nvmlShutdown\0") {
                shutdown();
            }
        }
    }
}

/// The GPU energy of a run, for the cost report.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum GpuEnergy {
    /// The run used no GPU.
    #[default]
    NotUsed,
    /// It did, but its counter could not be read: why.
    Absent(String),
    /// Joules GPU `ordinal` used during the run (the whole device).
    Measured {
        /// CUDA ordinal.
        ordinal: u32,
        /// Joules.
        joules: f64,
    },
}

/// Starts measuring the GPU `device` uses (`None`: no GPU is used).
pub fn gpu_start(device: &str) -> Option<Result<GpuMeter, String>> {
    gpu_of(device).map(GpuMeter::start)
}

/// What a measurement begun by [`gpu_start`] gives at the end of a run.
pub fn gpu_finish(meter: &Option<Result<GpuMeter, String>>) -> GpuEnergy {
    match meter {
        None => GpuEnergy::NotUsed,
        Some(Err(why)) => GpuEnergy::Absent(why.clone()),
        Some(Ok(m)) => match m.joules() {
            Ok(joules) => GpuEnergy::Measured {
                ordinal: m.ordinal,
                joules,
            },
            Err(why) => GpuEnergy::Absent(why),
        },
    }
}

/// The GPU a `[compute] device` setting uses, if any: `cuda:N` → N, `auto` → 0 when CUDA
/// loads.
pub fn gpu_of(device: &str) -> Option<u32> {
    match device {
        "auto" => crate::compute::cuda::available().then_some(0),
        d => d.strip_prefix("cuda:")?.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_absent_gpu_counter_says_why() {
        assert_eq!(super::gpu_of("cpu"), None);
        assert_eq!(super::gpu_of("emu:0"), None);
        assert_eq!(super::gpu_of("cuda:3"), Some(3));
        // Where NVML is missing (CI), the reason is given instead of a 0.
        if let Err(why) = super::GpuMeter::start(0) {
            assert!(!why.is_empty());
        }
    }
}
