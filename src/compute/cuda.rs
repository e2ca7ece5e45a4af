//! The CUDA engine: cuda/features.cu compiled by NVRTC at start-up and run through cudarc's
//! driver API (loaded at run time, so hyflow runs where CUDA is absent).
//!
//! State of this engine (issue #4): synchronous per batch (upload, launch, download on one
//! stream). Not yet done: pinned host buffers, two batches in flight, the device-side detector
//! state of cuda/score.cu. It has not run on a GPU yet: no device was lent while it was written;
//! scripts/gpu-check.sh is the check to run when one is.

use super::{ComputeBackend, ComputeError, FeatureBatch, WindowBatch, kernel_codes};
use crate::features::FeatureSet;
use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use std::sync::Arc;

/// Source of the feature kernel.
pub const FEATURES_CU: &str = include_str!("../../cuda/features.cu");
/// Source of the detector kernel.
pub const SCORE_CU: &str = include_str!("../../cuda/score.cu");

/// Threads per block of the feature kernel (a multiple of 32).
const THREADS: u32 = 128;

/// True when both the CUDA driver and NVRTC can be loaded.
pub fn available() -> bool {
    // SAFETY: only probe whether the shared libraries load.
    unsafe { cudarc::driver::sys::is_culib_present() && cudarc::nvrtc::sys::is_culib_present() }
}

/// The CUDA engine on one device.
pub struct CudaBackend {
    name: String,
    stream: Arc<CudaStream>,
    features_fn: CudaFunction,
}

fn err(what: &str, e: impl std::fmt::Debug) -> ComputeError {
    ComputeError::Device(format!("{what}: {e:?}"))
}

impl CudaBackend {
    /// Opens device `ordinal` and compiles the kernels for it.
    pub fn new(ordinal: usize) -> Result<Self, ComputeError> {
        if !available() {
            return Err(ComputeError::Unavailable(
                "no CUDA driver (libcuda) or NVRTC (libnvrtc) could be loaded".into(),
            ));
        }
        let ctx =
            CudaContext::new(ordinal).map_err(|e| err(&format!("opening cuda:{ordinal}"), e))?;
        // FMA contraction off: the same roundings as the CPU reference, so cross-checks compare
        // like with like.
        let opts = CompileOptions {
            fmad: Some(false),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(FEATURES_CU, opts)
            .map_err(|e| err("compiling cuda/features.cu", e))?;
        let module = ctx
            .load_module(ptx)
            .map_err(|e| err("loading cuda/features.cu", e))?;
        let features_fn = module
            .load_function("hyflow_features")
            .map_err(|e| err("hyflow_features", e))?;
        let stream = ctx.new_stream().map_err(|e| err("creating a stream", e))?;
        Ok(Self {
            name: format!("cuda:{ordinal}"),
            stream,
            features_fn,
        })
    }
}

impl ComputeBackend for CudaBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn features(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: &mut FeatureBatch,
    ) -> Result<(), ComputeError> {
        out.width = features.len();
        out.data.clear();
        if batch.is_empty() {
            return Ok(());
        }
        let (kinds, lo, hi) = kernel_codes(features);
        let s = &self.stream;
        let up = |e| err("copy to device", e);
        let values = s.clone_htod(&batch.values).map_err(up)?;
        let times = s.clone_htod(&batch.times).map_err(up)?;
        let offsets = s.clone_htod(&batch.offsets).map_err(up)?;
        let starts = s.clone_htod(&batch.start).map_err(up)?;
        let kinds = s.clone_htod(&kinds).map_err(up)?;
        let lo = s.clone_htod(&lo).map_err(up)?;
        let hi = s.clone_htod(&hi).map_err(up)?;
        let mut dev_out = s
            .alloc_zeros::<f64>(batch.len() * features.len())
            .map_err(|e| err("allocating output", e))?;
        let (n_windows, n_feat) = (batch.len() as i32, features.len() as i32);
        let secs = window_ms as f64 / 1000.0;
        let cfg = LaunchConfig {
            grid_dim: (batch.len() as u32, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = s.launch_builder(&self.features_fn);
        launch
            .arg(&values)
            .arg(&times)
            .arg(&offsets)
            .arg(&starts)
            .arg(&n_windows)
            .arg(&secs);
        launch
            .arg(&kinds)
            .arg(&lo)
            .arg(&hi)
            .arg(&n_feat)
            .arg(&mut dev_out);
        // SAFETY: the arguments match hyflow_features' signature in cuda/features.cu, and every
        // buffer covers what the kernel indexes (offsets has windows + 1 entries).
        unsafe { launch.launch(cfg) }.map_err(|e| err("launching hyflow_features", e))?;
        out.data = s
            .clone_dtoh(&dev_out)
            .map_err(|e| err("copy from device", e))?;
        Ok(())
    }
}
