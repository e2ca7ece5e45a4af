//! The CUDA detector device: cuda/score.cu (`hyflow_detect`) compiled by NVRTC, its cells kept
//! in device memory between batches. A batch's inputs are copied in, the kernel runs (a thread
//! per sensor of the batch) and the scores and the sensors' cells are copied back, then the
//! stream is synchronised. The state grows by doubling; a grown buffer starts from the host's
//! mirror. Device errors that leave the context unusable are shared with the feature engine
//! (one process-wide "lost" flag per device).

use super::{DetectDevice, Job};
use crate::compute::ComputeError;
use crate::compute::cuda::{SCORE_CU, available, err, lost, note_lost};
use crate::detect::cell::Cell;
use cudarc::driver::{
    CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use std::sync::Arc;

// SAFETY: `Cell` is `repr(C)`, plain old data (four f64 and two u32, no padding), the same
// layout as `HfCell` in cuda/score.cu; all zero bits is a valid (the initial) cell.
unsafe impl DeviceRepr for Cell {}
// SAFETY: see above.
unsafe impl ValidAsZeroBits for Cell {}

/// Threads per block of `hyflow_detect` (a thread per sensor of the batch).
const THREADS: u32 = 64;

/// `hyflow_detect` on one device, with the cells it keeps there.
pub struct CudaDetect {
    name: String,
    ordinal: usize,
    stream: Arc<CudaStream>,
    function: CudaFunction,
    /// Kind codes and parameters, uploaded once (they do not change during a run).
    watch: Option<(CudaSlice<i32>, CudaSlice<f64>)>,
    /// The cells, `n_watch` per slot, for `capacity` cells.
    state: Option<CudaSlice<Cell>>,
}

impl CudaDetect {
    /// Opens device `ordinal` and compiles cuda/score.cu for it.
    pub fn new(ordinal: usize) -> Result<Self, ComputeError> {
        if !available() {
            return Err(ComputeError::Unavailable(
                "no CUDA driver (libcuda) or NVRTC (libnvrtc) could be loaded".into(),
            ));
        }
        let ctx = cudarc::driver::CudaContext::new(ordinal)
            .map_err(|e| err(&format!("opening cuda:{ordinal}"), e))?;
        // No FMA contraction: the scores must equal the CPU's bit for bit.
        let opts = CompileOptions {
            fmad: Some(false),
            arch: crate::compute::cuda::arch(&ctx),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(SCORE_CU, opts)
            .map_err(|e| ComputeError::Device(format!("compiling cuda/score.cu: {e:?}")))?;
        let module = ctx
            .load_module(ptx)
            .map_err(|e| err("loading cuda/score.cu", e))?;
        let function = module
            .load_function("hyflow_detect")
            .map_err(|e| err("hyflow_detect", e))?;
        let stream = ctx.new_stream().map_err(|e| err("creating a stream", e))?;
        Ok(Self {
            name: format!("cuda:{ordinal}"),
            ordinal,
            stream,
            function,
            watch: None,
            state: None,
        })
    }

    fn queue_and_wait(
        &mut self,
        job: &Job<'_>,
        raw: &mut [f64],
        cells_out: &mut [Cell],
    ) -> Result<(), ComputeError> {
        let s = self.stream.clone();
        let up = |e| err("copy to device", e);
        if self.watch.is_none() {
            self.watch = Some((
                s.clone_htod(job.kinds).map_err(up)?,
                s.clone_htod(job.params).map_err(up)?,
            ));
        }
        let need = job.slots * job.n_watch;
        if self.state.as_ref().is_none_or(|st| st.len() < need) {
            // Grown: start from the host's mirror (current for every slot), zeros beyond.
            let mut init = job.mirror.to_vec();
            init.resize(need.max(1).next_power_of_two(), Cell::default());
            self.state = None;
            self.state = Some(s.clone_htod(&init).map_err(up)?);
        }
        // Empty inputs still get a buffer: the kernel then never reads it.
        let dummy = [Cell::default()];
        let patch = if job.patch.is_empty() {
            &dummy[..]
        } else {
            job.patch
        };
        let x = s.clone_htod(job.x).map_err(up)?;
        let order = s.clone_htod(job.order).map_err(up)?;
        let seg_offsets = s.clone_htod(job.seg_offsets).map_err(up)?;
        let seg_slot = s.clone_htod(job.seg_slot).map_err(up)?;
        let seg_patch = s.clone_htod(job.seg_patch).map_err(up)?;
        let patch = s.clone_htod(patch).map_err(up)?;
        let alloc = |e| err("allocating device memory", e);
        // SAFETY: the kernel writes every element of both before they are copied back.
        let mut raw_d = unsafe { s.alloc::<f64>(raw.len()) }.map_err(alloc)?;
        // SAFETY: as above.
        let mut cells_d = unsafe { s.alloc::<Cell>(cells_out.len()) }.map_err(alloc)?;
        let (kinds, params) = self.watch.as_ref().expect("uploaded above");
        let state = self.state.as_mut().expect("allocated above");
        let (n_watch, n_segments) = (job.n_watch as i32, job.seg_slot.len() as i32);
        let cfg = LaunchConfig {
            grid_dim: ((job.seg_slot.len() as u32).div_ceil(THREADS), 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = s.launch_builder(&self.function);
        launch.arg(&x).arg(&n_watch).arg(kinds).arg(params);
        launch.arg(&order).arg(&seg_offsets).arg(&seg_slot);
        launch.arg(&seg_patch).arg(&patch).arg(&n_segments);
        launch.arg(&mut *state).arg(&mut raw_d).arg(&mut cells_d);
        // SAFETY: the arguments match hyflow_detect's signature; x and raw hold n_watch values
        // per window of `order`, cells_out n_watch cells per segment, state n_watch cells for
        // every slot of the batch, patch n_watch cells per index in seg_patch.
        unsafe { launch.launch(cfg) }.map_err(|e| err("launching the detector kernel", e))?;
        let down = |e| err("copy from device", e);
        s.memcpy_dtoh(&raw_d, raw).map_err(down)?;
        s.memcpy_dtoh(&cells_d, cells_out).map_err(down)?;
        s.synchronize()
            .map_err(|e| err("running the detector kernel", e))
    }
}

impl DetectDevice for CudaDetect {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(
        &mut self,
        job: &Job<'_>,
        raw: &mut [f64],
        cells_out: &mut [Cell],
    ) -> Result<(), ComputeError> {
        if lost(self.ordinal) {
            return Err(ComputeError::Lost(format!(
                "{} was lost earlier in this run",
                self.name
            )));
        }
        let r = self.queue_and_wait(job, raw, cells_out);
        note_lost(self.ordinal, r)
    }
}
