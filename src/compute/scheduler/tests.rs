//! The scheduler with fake engines: routing, spilling, failures, cross-checks.

use super::*;
use crate::compute::Ticket;
use crate::compute::cpu::CpuBackend;
use crate::stages::features::{Feature, FeatureSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A fake accelerator: the CPU's results, optionally perturbed, optionally failing with
/// `fail`.
struct Fake {
    calls: Arc<AtomicU32>,
    fail: Option<ComputeError>,
    nudge: f64,
}

impl ComputeBackend for Fake {
    fn name(&self) -> &str {
        "fake:0"
    }
    fn features(
        &mut self,
        f: &FeatureSet,
        ms: i64,
        b: &WindowBatch,
        out: &mut FeatureBatch,
    ) -> Result<(), ComputeError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        CpuBackend.features(f, ms, b, out)?;
        out.data.iter_mut().for_each(|v| *v *= 1.0 + self.nudge);
        Ok(())
    }
}

/// The scheduler over the CPU and `fake`, cross-checking `cross_check` of its batches.
fn over(fake: impl ComputeBackend + 'static, policy: Policy, cross_check: f64) -> Hybrid {
    Hybrid::new(
        Box::new(CpuBackend),
        vec![Box::new(fake)],
        policy,
        cross_check,
        1e-9,
    )
}

fn setup() -> (FeatureSet, WindowBatch) {
    let mut f = FeatureSet::default();
    f.push("mean", Feature::Mean);
    f.push("max", Feature::Max);
    let mut b = WindowBatch::default();
    for w in 0..10 {
        b.push_window(w, Arc::from("s"), 0, 1000);
        for i in 0..50 {
            b.times.push(i * 20);
            b.values.push(f64::from(w) + i as f64);
        }
        b.finish_window(0);
    }
    (f, b)
}

/// `batches` batches through the scheduler over a fake that fails every one with `fail`:
/// every result is the CPU's. Returns how often the fake was called, and the reports.
fn through_failing(fail: ComputeError, batches: usize) -> (u32, Vec<EngineReport>) {
    let (f, b) = setup();
    let calls = Arc::new(AtomicU32::new(0));
    let fake = Fake {
        calls: calls.clone(),
        fail: Some(fail),
        nudge: 0.0,
    };
    let mut h = over(fake, Policy::Accelerator, 0.0);
    let mut want = FeatureBatch::default();
    CpuBackend.features(&f, 1000, &b, &mut want).expect("cpu");
    for _ in 0..batches {
        let mut got = FeatureBatch::default();
        h.features(&f, 1000, &b, &mut got)
            .expect("no batch is lost");
        assert_eq!(got, want);
    }
    (calls.load(Ordering::SeqCst), h.engine_reports())
}

#[test]
fn failed_batches_are_recomputed_on_the_cpu_and_the_engine_is_dropped() {
    let (calls, r) = through_failing(ComputeError::Device("out of memory".into()), 5);
    assert_eq!(calls, 3, "dropped after 3 failures in a row");
    assert_eq!((r[0].batches, r[1].errors, r[1].batches), (5, 3, 0));
}

#[test]
fn a_lost_device_is_dropped_at_its_first_failure() {
    let (calls, r) = through_failing(ComputeError::Lost("illegal address".into()), 4);
    assert_eq!(calls, 1, "never tried again");
    assert_eq!((r[0].batches, r[1].errors), (4, 1));
}

#[test]
fn cross_check_reports_the_difference() {
    let (f, b) = setup();
    let fake = Fake {
        calls: Arc::new(AtomicU32::new(0)),
        fail: None,
        nudge: 1e-7,
    };
    let mut h = over(fake, Policy::Accelerator, 0.5);
    let mut out = FeatureBatch::default();
    for _ in 0..4 {
        h.features(&f, 1000, &b, &mut out).expect("ok");
    }
    let r = &h.engine_reports()[1];
    assert_eq!((r.batches, r.cross_checked), (4, 2));
    assert!((r.max_rel_diff - 1e-7).abs() < 1e-9, "{}", r.max_rel_diff);
}

#[test]
fn cheapest_policy_measures_then_prefers_the_faster_engine() {
    let (f, b) = setup();
    let calls = Arc::new(AtomicU32::new(0));
    let fake = Fake {
        calls: calls.clone(),
        fail: None,
        nudge: 0.0,
    };
    let mut h = over(fake, Policy::Cheapest, 0.0);
    // Pretend the fake engine is 100× cheaper than measured for the CPU.
    let book = CostBook::default();
    for _ in 0..3 {
        book.get("cpu").observe(500.0, 1.0);
        book.get("fake:0").observe(500.0, 0.01);
    }
    h.share_costs(&book);
    let mut out = FeatureBatch::default();
    for _ in 0..10 {
        h.features(&f, 1000, &b, &mut out).expect("ok");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 10);
}

#[test]
fn workers_sharing_a_cost_book_probe_each_engine_once_per_run() {
    // Two workers' schedulers over one book: the first worker's three batches measure the
    // CPU, so the second worker's first batches measure the accelerator instead of the CPU
    // again (with costs of their own, a worker with 3 batches never tried the accelerator).
    let (f, b) = setup();
    let book = crate::compute::cost::CostBook::default();
    let calls = Arc::new(AtomicU32::new(0));
    let worker = || {
        let fake = Fake {
            calls: calls.clone(),
            fail: None,
            nudge: 0.0,
        };
        let mut h = over(fake, Policy::Cheapest, 0.0);
        h.share_costs(&book);
        h
    };
    let (mut first, mut second) = (worker(), worker());
    let mut out = FeatureBatch::default();
    for _ in 0..3 {
        first.features(&f, 1000, &b, &mut out).expect("ok");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the CPU is measured first");
    for _ in 0..3 {
        second.features(&f, 1000, &b, &mut out).expect("ok");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "then the accelerator, by the other worker"
    );
    assert_eq!(
        (book.get("cpu").samples(), book.get("fake:0").samples()),
        (3, 3)
    );
}

/// A fake asynchronous accelerator with two slots: computes at `begin` (the CPU's results,
/// optionally failed), but says a batch is finished only once the test has `released` it, or
/// when waited for; `lose` makes it forget its batches.
struct AsyncFake {
    begun: Arc<AtomicU32>,
    released: Arc<AtomicU32>,
    finished: u32,
    fail: bool,
    lose: bool,
    queue: std::collections::VecDeque<(Ticket, FeatureBatch)>,
}

impl AsyncFake {
    fn new(fail: bool, lose: bool) -> (Self, Arc<AtomicU32>, Arc<AtomicU32>) {
        let (begun, released) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let fake = Self {
            begun: begun.clone(),
            released: released.clone(),
            finished: 0,
            fail,
            lose,
            queue: Default::default(),
        };
        (fake, begun, released)
    }
}

impl ComputeBackend for AsyncFake {
    fn name(&self) -> &str {
        "async:0"
    }
    fn features(
        &mut self,
        _: &FeatureSet,
        _: i64,
        _: &WindowBatch,
        _: &mut FeatureBatch,
    ) -> Result<(), ComputeError> {
        panic!("the scheduler uses begin/finish on an engine with a depth")
    }
    fn depth(&self) -> usize {
        2
    }
    fn begin(
        &mut self,
        ticket: Ticket,
        f: &FeatureSet,
        ms: i64,
        b: &WindowBatch,
    ) -> Result<(), ComputeError> {
        assert!(self.queue.len() < 2, "begun with both slots in flight");
        self.begun.fetch_add(1, Ordering::SeqCst);
        let mut out = FeatureBatch::default();
        CpuBackend.features(f, ms, b, &mut out)?;
        self.queue.push_back((ticket, out));
        Ok(())
    }
    fn finish(&mut self, wait: bool) -> Option<super::super::Finished> {
        if self.lose {
            self.queue.clear();
            return None;
        }
        if !wait && self.finished >= self.released.load(Ordering::SeqCst) {
            return None;
        }
        let (ticket, out) = self.queue.pop_front()?;
        self.finished += 1;
        let result = if self.fail {
            Err(ComputeError::Device("device lost".into()))
        } else {
            Ok(out)
        };
        Some(super::super::Finished {
            ticket,
            result,
            busy_secs: 1e-6,
        })
    }
}

/// Batches `i` of [`setup`]'s windows shifted by `i`, and their CPU features.
fn batches(n: usize) -> (FeatureSet, Vec<WindowBatch>, Vec<FeatureBatch>) {
    let (f, b) = setup();
    let mut bs = Vec::new();
    let mut want = Vec::new();
    for i in 0..n {
        let mut b = b.clone();
        b.values.iter_mut().for_each(|v| *v += i as f64);
        let mut w = FeatureBatch::default();
        CpuBackend.features(&f, 1000, &b, &mut w).expect("cpu");
        bs.push(b);
        want.push(w);
    }
    (f, bs, want)
}

/// Submits every batch (1 s windows), in order.
fn submit_all(h: &mut Hybrid, f: &FeatureSet, bs: &[WindowBatch]) -> Vec<Ticket> {
    bs.iter().map(|b| h.submit(f, 1000, b.clone())).collect()
}

/// Everything outstanding, waiting for it.
fn drain(h: &mut Hybrid, f: &FeatureSet) -> Vec<Completed> {
    let mut done = Vec::new();
    while h.outstanding() > 0 {
        done.extend(h.poll(f, 1000, true));
    }
    done
}

/// Checks that every ticket came back once with the CPU's features of its batch.
fn check_all(done: Vec<Completed>, tickets: &[Ticket], want: &[FeatureBatch]) {
    let mut seen = vec![false; tickets.len()];
    for c in done {
        let i = tickets
            .iter()
            .position(|&t| t == c.ticket)
            .expect("known ticket");
        assert!(!seen[i], "ticket {} came back twice", c.ticket);
        seen[i] = true;
        assert_eq!(c.result.expect("features"), want[i], "batch {i}");
    }
    assert!(seen.iter().all(|&s| s), "every batch came back: {seen:?}");
}

/// A scheduler under `auto` over the CPU and an [`AsyncFake`], with costs learnt: the CPU
/// `cpu_secs` per batch, the accelerator 0.01 s.
fn auto_over_async_fake(cpu_secs: f64) -> (Hybrid, Arc<AtomicU32>, Arc<AtomicU32>) {
    let (fake, begun, released) = AsyncFake::new(false, false);
    let mut h = over(fake, Policy::Cheapest, 0.0);
    let book = CostBook::default();
    for _ in 0..3 {
        book.get("cpu").observe(500.0, cpu_secs);
        book.get("async:0").observe(500.0, 0.01);
    }
    h.share_costs(&book);
    (h, begun, released)
}

#[test]
fn auto_spills_to_the_cpu_when_the_accelerator_is_full_and_returns_every_batch() {
    let (f, bs, want) = batches(5);
    // The CPU (0.015 s) is slower than the accelerator (0.01 s) but sooner than waiting for
    // two batches ahead (0.03 s): batches 3-5 spill.
    let (mut h, begun, released) = auto_over_async_fake(0.015);
    let tickets = submit_all(&mut h, &f, &bs);
    assert_eq!(begun.load(Ordering::SeqCst), 2, "two slots");
    assert_eq!(h.outstanding(), 5);
    let mut done = h.poll(&f, 1000, false);
    assert_eq!(
        done.len(),
        3,
        "the spilled batches are done, the accelerator's are not"
    );
    released.store(2, Ordering::SeqCst);
    done.extend(h.poll(&f, 1000, false));
    assert_eq!(h.outstanding(), 0);
    check_all(done, &tickets, &want);
    let r = h.engine_reports();
    assert_eq!((r[0].batches, r[1].batches), (3, 2));
    // Once the CPU has run a spilled batch its real (far lower) cost is learnt, and later
    // batches may go to it as the cheapest rather than as spills.
    assert!(r[1].spilled >= 1, "{}", r[1].spilled);
}

#[test]
fn auto_waits_for_a_full_accelerator_when_the_cpu_would_be_later() {
    let (f, bs, want) = batches(5);
    let (mut h, begun, _) = auto_over_async_fake(1.0);
    let tickets = submit_all(&mut h, &f, &bs);
    assert_eq!(begun.load(Ordering::SeqCst), 5);
    check_all(drain(&mut h, &f), &tickets, &want);
    let r = h.engine_reports();
    assert_eq!((r[0].batches, r[1].batches, r[1].spilled), (0, 5, 0));
}

#[test]
fn a_dedicated_accelerator_is_waited_for_when_full() {
    let (f, bs, want) = batches(5);
    let (fake, begun, _) = AsyncFake::new(false, false);
    let mut h = over(fake, Policy::Accelerator, 0.0);
    let tickets = submit_all(&mut h, &f, &bs);
    assert_eq!(begun.load(Ordering::SeqCst), 5);
    check_all(drain(&mut h, &f), &tickets, &want);
    let r = h.engine_reports();
    assert_eq!((r[0].batches, r[1].batches, r[1].spilled), (0, 5, 0));
}

#[test]
fn batches_failed_or_lost_in_flight_are_recomputed_on_the_cpu() {
    for (fail, lose) in [(true, false), (false, true)] {
        let (f, bs, want) = batches(4);
        let (fake, _, released) = AsyncFake::new(fail, lose);
        released.store(u32::MAX, Ordering::SeqCst);
        let mut h = over(fake, Policy::Accelerator, 0.0);
        let tickets = submit_all(&mut h, &f, &bs);
        check_all(drain(&mut h, &f), &tickets, &want);
        let r = h.engine_reports();
        assert_eq!(
            (r[0].batches, r[1].batches),
            (4, 0),
            "fail {fail} lose {lose}"
        );
        assert!(r[1].errors >= 3, "{}", r[1].errors);
    }
}
