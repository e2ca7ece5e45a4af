//! The emulated detector device (`emu:N`, builds with the `kernel-emulation` feature):
//! cuda/score.cu compiled as host C++ (build.rs) and run on the worker's thread, its cells in
//! host memory standing for device memory. For tests of the detector engine without a GPU.

use super::{DetectDevice, Job};
use crate::compute::ComputeError;
use crate::detect::cell::Cell;

unsafe extern "C" {
    fn hyflow_emu_detect(
        x: *const f64,
        n_watch: i32,
        kinds: *const i32,
        params: *const f64,
        order: *const i32,
        seg_offsets: *const u32,
        seg_slot: *const u32,
        seg_patch: *const i32,
        patch: *const Cell,
        n_segments: i32,
        state: *mut Cell,
        raw: *mut f64,
        cells_out: *mut Cell,
    );
}

/// The emulated device's cells.
pub struct EmulatedDetect {
    name: String,
    state: Vec<Cell>,
}

impl EmulatedDetect {
    /// Emulated device `ordinal`.
    pub fn new(ordinal: usize) -> Self {
        Self {
            name: format!("emu:{ordinal}"),
            state: Vec::new(),
        }
    }

    /// The device's cells, `n_watch` per slot (for tests).
    pub fn state(&self) -> &[Cell] {
        &self.state
    }
}

impl DetectDevice for EmulatedDetect {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(
        &mut self,
        job: &Job<'_>,
        raw: &mut [f64],
        cells_out: &mut [Cell],
    ) -> Result<(), ComputeError> {
        let need = job.slots * job.n_watch;
        if self.state.len() < need {
            // Grown, as the CUDA device does: from the host's mirror.
            self.state = job.mirror.to_vec();
            self.state.resize(need.next_power_of_two(), Cell::default());
        }
        let ok = job.x.len() == job.order.len() * job.n_watch
            && raw.len() == job.x.len()
            && cells_out.len() == job.seg_slot.len() * job.n_watch
            && job.seg_patch.len() == job.seg_slot.len()
            && job.seg_offsets.len() == job.seg_slot.len() + 1;
        if !ok {
            return Err(ComputeError::Device(format!(
                "{}: inconsistent batch layout",
                self.name
            )));
        }
        // SAFETY: checked above: x and raw hold n_watch values per window of `order`,
        // cells_out n_watch per segment, state n_watch per slot up to `slots` (every slot of
        // the batch is below it), patch n_watch per index the engine put in seg_patch.
        unsafe {
            hyflow_emu_detect(
                job.x.as_ptr(),
                job.n_watch as i32,
                job.kinds.as_ptr(),
                job.params.as_ptr(),
                job.order.as_ptr(),
                job.seg_offsets.as_ptr(),
                job.seg_slot.as_ptr(),
                job.seg_patch.as_ptr(),
                job.patch.as_ptr(),
                job.seg_slot.len() as i32,
                self.state.as_mut_ptr(),
                raw.as_mut_ptr(),
                cells_out.as_mut_ptr(),
            );
        }
        Ok(())
    }
}
