//! Detector scoring on a device: the cell detectors (`ewma-z`, `level-z`, `cusum`, `stuck`,
//! `seasonal-z`; [`crate::stages::detect::cell`]) of one worker's sensors, run by cuda/score.cu with
//! their state kept on the device, a block of cells per sensor slot, updated in place.
//!
//! The host keeps a mirror of every cell: each device batch copies back, per window and watched
//! feature, the cell its score left behind (a cell per score), so the mirror is always current. That makes
//! every batch free to go to either side, as feature batches are, where the same
//! [`Router`] says: a batch scored on the CPU
//! (routed there by cost, after a device error, or when the device is dropped) steps the mirror,
//! and marks those sensors stale on the device; the next device batch with one of them sends
//! its cells along (a patch the kernel loads first). No state is lost on a device failure, and
//! the scores equal the CPU's bit for bit (no FMA contraction; tests/it/kernel_emulation.rs), so
//! a fraction of device batches (`cross-check`) is recomputed on the CPU and compared exactly
//! ([`Check::Exact`]: a difference means the device is wrong; the CPU's scores are used).
//!
//! Learn policies (`gated`, `reference`) are applied by the kernel and by [`run_cpu`] alike:
//! each batch starts from the counts the scorer keeps ([`Counters`]: windows seen, gated
//! windows in a row), and each score comes back with its [`Fate`], so that the mirror zeroes a
//! re-baselined detector's cells as the kernel did. The scorer then decides again from the
//! same raw scores and counts, and so agrees with the device window by window.
//!
//! Scoring is synchronous: a batch is copied, scored and copied back before the worker goes on
//! (the score stage must have a window's detector scores before its rules and episodes).

pub mod cuda;
#[cfg(feature = "kernel-emulation")]
pub mod emulated;

use super::ComputeError;
use super::cost::{CostBook, EngineReport};
use super::cuda::available as cuda_present;
use super::router::{Check, Difference, Policy, Router};
use super::segments;
use crate::events::Stage;
use crate::plan::Device;
use crate::stages::detect::cell::{Cell, Fate, Watch, block, learn_code, step, watches};
use crate::stages::detect::{DetectorSpec, Learn};
use std::time::Instant;

/// One batch for `hyflow_detect` (see cuda/score.cu for the layout).
pub struct Job<'a> {
    /// Watched pairs per window.
    pub n_watch: usize,
    /// Kind code per watch.
    pub kinds: &'a [i32],
    /// 4 parameters per watch.
    pub params: &'a [f64],
    /// Where each watch's cells start in a sensor's block.
    pub cell_at: &'a [i32],
    /// Cells per sensor.
    pub block: usize,
    /// The watched feature values, `n_watch` per window, windows in batch order.
    pub x: &'a [f64],
    /// Per window and watch, which of the watch's cells it scores against (season bucket).
    pub bucket: &'a [i32],
    /// Windows grouped by slot ([`segments`]).
    pub order: &'a [i32],
    /// Segment boundaries in `order`.
    pub seg_offsets: &'a [u32],
    /// Slot of each segment.
    pub seg_slot: &'a [u32],
    /// Per segment, its index in `patch`, or -1 when the device's cells are current.
    pub seg_patch: &'a [i32],
    /// Blocks to load before scoring, one per patched segment.
    pub patch: &'a [Cell],
    /// Slots the device state must hold (largest slot + 1).
    pub slots: usize,
    /// The host's current blocks of every slot up to `slots` (for a device that has to
    /// (re)build its state).
    pub mirror: &'a [Cell],
    /// Per watch, its detector's learn policy: code, count (relearn or reference windows, a
    /// u32 in the i32's bits) and the detector's index ([`learn_code`]).
    pub learn: &'a [i32],
    /// Per watch, its detector's gate (`learn = "gated"`).
    pub gate: &'a [f64],
    /// Per segment, the sensor's windows scored before this batch (for `reference`).
    pub seen: &'a [u32],
    /// Per segment and watch, its detector's gated windows in a row before this batch (for
    /// `gated`; the same for every watch of a detector).
    pub gated: &'a [u32],
}

/// How many windows each sensor has scored and how many its detectors gated in a row, as the
/// scorer that keeps those counts has them before a batch: the learn policies' inputs that a
/// batch starts from ([`crate::stages::detect::Scorer`] counts on as it takes the batch's
/// scores, window by window, deciding as the kernel did).
pub trait Counters {
    /// Windows of sensor `slot` scored so far.
    fn seen(&self, slot: u32) -> u32;
    /// Windows in a row that detector `detector` of sensor `slot` did not learn (gated).
    fn gated(&self, slot: u32, detector: usize) -> u32;
}

/// No window seen yet: the counters of a run whose detectors all learn `always`, and of tests.
pub struct Fresh;

impl Counters for Fresh {
    fn seen(&self, _: u32) -> u32 {
        0
    }
    fn gated(&self, _: u32, _: usize) -> u32 {
        0
    }
}

/// A batch's watched feature values and season buckets ([`DetectEngine::gather`]).
#[derive(Debug, Default)]
pub struct Inputs {
    /// `n_watch` values per window.
    pub x: Vec<f64>,
    /// `n_watch` cell indices per window (0 but for seasonal-z).
    pub bucket: Vec<i32>,
}

/// A device that runs `hyflow_detect` and keeps the cells between batches.
pub trait DetectDevice: Send {
    /// Name in logs and reports (`cuda:0`).
    fn name(&self) -> &str;
    /// Scores `job` and waits for it: `raw` gets `n_watch` raw scores per window, `after` the
    /// cell each of them stepped, as it was after that window, and `fate` what the window did
    /// to its detector's cells ([`Fate`]). Blocks of slots never seen start at zero.
    fn run(
        &mut self,
        job: &Job<'_>,
        raw: &mut [f64],
        after: &mut [Cell],
        fate: &mut [i32],
    ) -> Result<(), ComputeError>;
}

/// Scores the cell detectors on the CPU as the kernel walks them: `blocks` holds the block of
/// each segment and is stepped in place; `after` (when given) gets the cell each score left
/// and the [`Fate`] of its window.
pub fn run_cpu(
    ws: &[Watch],
    job: &Job<'_>,
    blocks: &mut [Cell],
    raw: &mut [f64],
    mut after: Option<(&mut [Cell], &mut [i32])>,
) {
    let (n, b) = (ws.len(), job.block);
    let mut counts = vec![0u32; n];
    for s in 0..job.seg_slot.len() {
        let cells = &mut blocks[s * b..(s + 1) * b];
        counts.copy_from_slice(&job.gated[s * n..(s + 1) * n]);
        let first = job.seg_offsets[s] as usize;
        let windows = &job.order[first..job.seg_offsets[s + 1] as usize];
        for (k, &w) in windows.iter().enumerate() {
            let w = w as usize * n;
            let seen = u32::try_from(u64::from(job.seen[s]) + k as u64).unwrap_or(u32::MAX);
            let mut j = 0;
            while j < n {
                // Watches j .. e are one detector's.
                let e = (j + 1..n)
                    .find(|&i| ws[i].detector != ws[j].detector)
                    .unwrap_or(n);
                let fate = if ws[j].learn == Learn::Always {
                    for i in j..e {
                        raw[w + i] = step(
                            &ws[i],
                            &mut cells[ws[i].at + job.bucket[w + i] as usize],
                            job.x[w + i],
                        );
                    }
                    Fate::Learned
                } else {
                    let mut r = 0.0f64;
                    for i in j..e {
                        let mut copy = cells[ws[i].at + job.bucket[w + i] as usize];
                        raw[w + i] = step(&ws[i], &mut copy, job.x[w + i]);
                        r = r.max(raw[w + i]);
                    }
                    let (learned, rebase) = ws[j].learn.decide(r, seen, counts[j]);
                    let fate = Fate::of(learned, rebase);
                    let next = match fate {
                        Fate::Kept => counts[j].saturating_add(1),
                        _ => 0,
                    };
                    for i in j..e {
                        if fate == Fate::Rebased {
                            cells[ws[i].at..ws[i].at + ws[i].cells].fill(Cell::default());
                        }
                        if fate != Fate::Kept {
                            step(
                                &ws[i],
                                &mut cells[ws[i].at + job.bucket[w + i] as usize],
                                job.x[w + i],
                            );
                        }
                        counts[i] = next;
                    }
                    fate
                };
                if let Some((after, fates)) = after.as_mut() {
                    for i in j..e {
                        after[w + i] = cells[ws[i].at + job.bucket[w + i] as usize];
                        fates[w + i] = fate as i32;
                    }
                }
                j = e;
            }
        }
    }
}

/// Emulated device `n` for the setting `device`, in builds with `kernel-emulation`.
fn emulated_device(device: Device, n: usize) -> Result<Box<dyn DetectDevice>, ComputeError> {
    #[cfg(feature = "kernel-emulation")]
    {
        let _ = device; // named only in the error of builds without the feature
        Ok(Box::new(emulated::EmulatedDetect::new(n)))
    }
    #[cfg(not(feature = "kernel-emulation"))]
    Err(ComputeError::Unavailable(format!(
        "device \"{device}\" (emulated device {n}) needs a build with the kernel-emulation feature"
    )))
}

/// The detector engine of one worker (see the module doc).
pub struct DetectEngine {
    watches: Vec<Watch>,
    kinds: Vec<i32>,
    params: Vec<f64>,
    cell_at: Vec<i32>,
    /// Per watch: learn policy code, count and detector ([`Job::learn`]); its gate.
    learn: Vec<i32>,
    gate: Vec<f64>,
    /// Cells per slot.
    block: usize,
    /// The zone of the season buckets.
    zone: crate::timefmt::Zone,
    /// The current cells, a block per slot.
    mirror: Vec<Cell>,
    /// Per slot: the device's cells are older than the mirror's.
    stale: Vec<bool>,
    device: Option<Box<dyn DetectDevice>>,
    /// Engine 0 the CPU, 1 the device (when there is one).
    router: Router,
}

impl DetectEngine {
    /// The engine for a `[compute] device` setting, or None when the detectors are scored on
    /// the CPU by [`crate::stages::detect::Scorer`] itself (`cpu`, `auto` without CUDA, or no cell
    /// detector). `cuda:N` scores every batch on the device (the CPU on errors); `auto`, with
    /// CUDA, routes by cost between the CPU and cuda:0; `emu:N` and `auto-emu` (builds with
    /// `kernel-emulation`) use the emulated device likewise.
    pub fn for_device(
        device: Device,
        detectors: &[DetectorSpec],
        zone: crate::timefmt::Zone,
        cross_check: f64,
    ) -> Result<Option<Self>, ComputeError> {
        let setting = device;
        let ws = watches(detectors);
        if ws.is_empty() || setting == Device::Cpu {
            return Ok(None);
        }
        let (dev, policy): (Box<dyn DetectDevice>, Policy) = match setting {
            Device::Cpu => return Ok(None),
            Device::Cuda(n) => (Box::new(cuda::CudaDetect::new(n)?), Policy::Accelerator),
            Device::Auto => match cuda::CudaDetect::new(0) {
                Ok(d) => (Box::new(d), Policy::Cheapest),
                Err(e) => {
                    // Without CUDA the features stage says so; say it here only when CUDA is
                    // there and the detector kernel is what failed.
                    static ONCE: std::sync::Once = std::sync::Once::new();
                    if cuda_present() {
                        ONCE.call_once(|| {
                            tracing::warn!("device = \"auto\": detectors on the CPU ({e})")
                        });
                    }
                    return Ok(None);
                }
            },
            Device::Emu(n) => (emulated_device(device, n)?, Policy::Accelerator),
            Device::AutoEmu => (emulated_device(device, 0)?, Policy::Cheapest),
        };
        Ok(Some(Self::new(ws, Some(dev), policy, cross_check, zone)))
    }

    /// An engine over `device` (None: the CPU only), routed by `policy`; `zone` turns UTC into
    /// the local time of the season buckets.
    pub fn new(
        watches: Vec<Watch>,
        device: Option<Box<dyn DetectDevice>>,
        policy: Policy,
        cross_check: f64,
        zone: crate::timefmt::Zone,
    ) -> Self {
        let names = std::iter::once("cpu")
            .chain(device.as_ref().map(|d| d.name()))
            .map(|s| format!("{s} detectors"))
            .collect::<Vec<_>>();
        Self {
            kinds: watches.iter().map(|w| w.kind as i32).collect(),
            params: watches.iter().flat_map(|w| w.params).collect(),
            cell_at: watches.iter().map(|w| w.at as i32).collect(),
            learn: watches
                .iter()
                .flat_map(|w| {
                    let (code, count, _) = learn_code(w.learn);
                    [code, count, w.detector as i32]
                })
                .collect(),
            gate: watches.iter().map(|w| learn_code(w.learn).2).collect(),
            block: block(&watches),
            zone,
            watches,
            mirror: Vec::new(),
            stale: Vec::new(),
            device,
            router: Router::new(Stage::Detect, names, policy, cross_check, Check::Exact),
        }
    }

    /// Makes both sides learn their costs in `book` (shared by the workers of a run).
    pub fn share_costs(&mut self, book: &CostBook) {
        self.router.share_costs(book);
    }

    /// The watched pairs, in the order of the scores [`Self::score`] gives.
    pub fn watches(&self) -> &[Watch] {
        &self.watches
    }

    /// The block of cells of `slot` as it stands (for tests).
    pub fn cells(&self, slot: u32) -> &[Cell] {
        let s = slot as usize * self.block;
        self.mirror.get(s..s + self.block).unwrap_or(&[])
    }

    /// Slots the engine holds cells for (every slot below it).
    pub fn slots(&self) -> u32 {
        (self.mirror.len() / self.block.max(1)) as u32
    }

    /// Writes every slot's cells into `saved` (a scorer's state for a checkpoint, which holds
    /// the cell detectors' state only as stale copies while the engine keeps it).
    pub fn save_into(&self, saved: &mut crate::stages::detect::ScorerState) {
        for slot in 0..self.slots() {
            saved.put_cells(&self.watches, slot, self.cells(slot));
        }
    }

    /// Takes the cell detectors' state of every sensor of `saved` (a checkpoint's scorer state)
    /// as its own: the mirror holds it, and the device gets it as a patch with each sensor's
    /// next batch.
    pub fn restore_from(&mut self, saved: &crate::stages::detect::ScorerState) {
        let (slots, b) = (saved.len(), self.block);
        self.mirror = vec![Cell::default(); slots * b];
        self.stale = vec![true; slots];
        for slot in 0..slots {
            let cells = saved.cells(&self.watches, slot as u32, b);
            self.mirror[slot * b..(slot + 1) * b].copy_from_slice(&cells);
        }
    }

    /// The watched feature values and season buckets of windows given as (start, feature row).
    pub fn gather<'a>(&self, rows: impl Iterator<Item = (i64, &'a [f64])>) -> Inputs {
        let mut inputs = Inputs::default();
        for (start, row) in rows {
            for w in &self.watches {
                inputs.x.push(row[w.feature]);
                inputs
                    .bucket
                    .push(w.bucket(self.zone.utc_to_local(start)) as i32);
            }
        }
        inputs
    }

    /// Scores one batch: `slots` has each window's sensor slot (a sensor's windows in time
    /// order), `inputs` their watched values ([`Self::gather`]), `counters` the learn
    /// policies' counts before the batch. Gives `n_watch` raw scores per window.
    pub fn score(&mut self, slots: &[u32], inputs: &Inputs, counters: &dyn Counters) -> Vec<f64> {
        let (n, b) = (self.watches.len(), self.block);
        let max_slot = slots.iter().max().map_or(0, |&s| s as usize + 1);
        if self.stale.len() < max_slot {
            self.stale.resize(max_slot, false);
            self.mirror.resize(max_slot * b, Cell::default());
        }
        let (order, seg_offsets, seg_slot) = segments(slots);
        let policies = self.watches.iter().any(|w| w.learn != Learn::Always);
        let seen: Vec<u32> = seg_slot
            .iter()
            .map(|&slot| if policies { counters.seen(slot) } else { 0 })
            .collect();
        let gated: Vec<u32> = seg_slot
            .iter()
            .flat_map(|&slot| {
                self.watches.iter().map(move |w| match w.learn {
                    Learn::Gated { .. } => counters.gated(slot, w.detector),
                    _ => 0,
                })
            })
            .collect();
        let mut raw = vec![0.0; slots.len() * n];
        let work = (slots.len() * n) as f64;
        let on_device = !slots.is_empty() && self.router.route(work, slots.len()) == 1;
        let (mut seg_patch, mut patch) = (Vec::new(), Vec::new());
        if on_device {
            for &slot in &seg_slot {
                if self.stale[slot as usize] {
                    seg_patch.push((patch.len() / b) as i32);
                    patch.extend_from_slice(self.cells(slot));
                } else {
                    seg_patch.push(-1);
                }
            }
        }
        let job = Job {
            n_watch: n,
            kinds: &self.kinds,
            params: &self.params,
            cell_at: &self.cell_at,
            block: b,
            x: &inputs.x,
            bucket: &inputs.bucket,
            order: &order,
            seg_offsets: &seg_offsets,
            seg_slot: &seg_slot,
            seg_patch: &seg_patch,
            patch: &patch,
            slots: max_slot,
            mirror: &self.mirror,
            learn: &self.learn,
            gate: &self.gate,
            seen: &seen,
            gated: &gated,
        };
        if on_device {
            let mut after = vec![Cell::default(); raw.len()];
            let mut fate = vec![0i32; raw.len()];
            let (device, router) = (&mut self.device, &mut self.router);
            let out = (&mut raw[..], &mut after[..], &mut fate[..]);
            if run_on_device(device, router, &self.watches, &job, out) {
                // The mirror takes every cell a score left, in batch order (a sensor's
                // windows are in time order, so its last one wins); a re-baselined watch's
                // cells are all zeroed first, as the kernel zeroed them.
                for (w, &slot) in slots.iter().enumerate() {
                    let base = slot as usize * b;
                    for (j, watch) in self.watches.iter().enumerate() {
                        if fate[w * n + j] == Fate::Rebased as i32 {
                            let at = base + watch.at;
                            self.mirror[at..at + watch.cells].fill(Cell::default());
                        }
                        let c = watch.at + inputs.bucket[w * n + j] as usize;
                        self.mirror[base + c] = after[w * n + j];
                    }
                }
                for &slot in &seg_slot {
                    self.stale[slot as usize] = false;
                }
                return raw;
            }
        }
        let mut blocks: Vec<Cell> = seg_slot
            .iter()
            .flat_map(|&s| self.cells(s).iter().copied())
            .collect();
        let t = Instant::now();
        run_cpu(&self.watches, &job, &mut blocks, &mut raw, None);
        self.router
            .computed(0, slots.len(), work, t.elapsed().as_secs_f64());
        // The device lags whatever the CPU scored.
        let device_stale = self.device.is_some();
        for (s, &slot) in seg_slot.iter().enumerate() {
            let i = slot as usize;
            self.mirror[i * b..(i + 1) * b].copy_from_slice(&blocks[s * b..(s + 1) * b]);
            self.stale[i] = device_stale;
        }
        raw
    }

    /// What each side scored (for the cost report): the CPU, then the device when there is one.
    pub fn reports(&self) -> Vec<EngineReport> {
        self.router
            .reports()
            .into_iter()
            .filter(|r| r.batches > 0 || r.errors > 0)
            .collect()
    }
}

/// Runs `job` on the device; true when `raw` and `after` hold its results, false when it
/// failed or its cross-check disagreed with the CPU (the caller then scores the batch on
/// the CPU, from the mirror).
fn run_on_device(
    device: &mut Option<Box<dyn DetectDevice>>,
    router: &mut Router,
    ws: &[Watch],
    job: &Job<'_>,
    (raw, after, fate): (&mut [f64], &mut [Cell], &mut [i32]),
) -> bool {
    let Some(dev) = device.as_mut() else {
        return false;
    };
    let windows = job.order.len();
    let t = Instant::now();
    if let Err(e) = dev.run(job, raw, after, fate) {
        router.failed(1, &e, windows);
        if !router.live(1) {
            *device = None;
        }
        return false;
    }
    let secs = t.elapsed().as_secs_f64();
    if !router.computed(1, windows, job.x.len() as f64, secs) {
        return true;
    }
    let mut blocks: Vec<Cell> = job
        .seg_slot
        .iter()
        .flat_map(|&s| {
            let at = s as usize * job.block;
            job.mirror[at..at + job.block].iter().copied()
        })
        .collect();
    let (mut want_raw, mut want_after) = (vec![0.0; raw.len()], after.to_vec());
    let mut want_fate = vec![0i32; fate.len()];
    run_cpu(
        ws,
        job,
        &mut blocks,
        &mut want_raw,
        Some((&mut want_after, &mut want_fate)),
    );
    let same = want_raw
        .iter()
        .zip(raw.iter())
        .all(|(a, b)| a.to_bits() == b.to_bits())
        && want_after
            .iter()
            .zip(after.iter())
            .all(|(a, b)| a.same_bits(b))
        && want_fate == *fate;
    let max_abs = want_raw
        .iter()
        .zip(raw.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let d = Difference {
        max_abs: if same { 0.0 } else { max_abs },
        max_rel: None,
        differs: !same,
    };
    let stands = router.checked(1, windows, d);
    if !router.live(1) {
        *device = None;
    }
    stands
}

#[cfg(test)]
mod tests;
